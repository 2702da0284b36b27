package main

import "io"

// benchReport is what every bench returns: a human table and a JSON form.
type benchReport interface {
	WriteTable(w io.Writer) error
	WriteJSON(w io.Writer) error
}

// printBench writes r as a table and, with asJSON, as one JSON object on the
// last line, as every `ledger bench` command does.
func printBench(e *env, r benchReport, asJSON bool) error {
	if err := r.WriteTable(e.stdout); err != nil {
		return err
	}
	if asJSON {
		return r.WriteJSON(e.stdout)
	}
	return nil
}
