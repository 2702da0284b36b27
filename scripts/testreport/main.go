// Command testreport reads `go test -json` on stdin, prints the tests'
// output as `go test` would, and ends with a summary: per package the
// tests passed, failed and skipped, then every skipped test with the reason
// it gave (its last t.Skip line). scripts/test.sh pipes the Go tests
// through it. It exits 1 when a test or package failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type counts struct{ pass, fail, skip int }

func main() {
	os.Exit(run(os.Stdin, os.Stdout))
}

func run(in io.Reader, out io.Writer) int {
	pkgs := map[string]*counts{}
	failedPkgs := map[string]bool{}
	lastLine := map[string]string{} // package/test -> last output line
	type skipped struct{ name, reason string }
	var skips []skipped
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Fprintln(out, sc.Text()) // not JSON: a build error line
			continue
		}
		c := pkgs[e.Package]
		if c == nil && e.Package != "" {
			c = &counts{}
			pkgs[e.Package] = c
		}
		key := e.Package + "/" + e.Test
		switch e.Action {
		case "output":
			fmt.Fprint(out, e.Output)
			if line := strings.TrimSpace(e.Output); line != "" && !strings.HasPrefix(line, "---") && !strings.HasPrefix(line, "===") {
				lastLine[key] = line
			}
		case "pass", "fail", "skip":
			if e.Test == "" {
				if e.Action == "fail" {
					failedPkgs[e.Package] = true
				}
				continue
			}
			switch e.Action {
			case "pass":
				c.pass++
			case "fail":
				c.fail++
			case "skip":
				c.skip++
				skips = append(skips, skipped{e.Package + " " + e.Test, lastLine[key]})
			}
		}
	}
	names := make([]string, 0, len(pkgs))
	for n := range pkgs {
		names = append(names, n)
	}
	sort.Strings(names)
	var total counts
	fmt.Fprintln(out, "\ntest counts by package:")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "passed\tfailed\tskipped\t\tpackage")
	for _, n := range names {
		c := pkgs[n]
		if c.pass+c.fail+c.skip == 0 && !failedPkgs[n] {
			continue // no tests
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t\t%s\n", c.pass, c.fail, c.skip, n)
		total.pass, total.fail, total.skip = total.pass+c.pass, total.fail+c.fail, total.skip+c.skip
	}
	fmt.Fprintf(tw, "%d\t%d\t%d\t\ttotal\n", total.pass, total.fail, total.skip)
	tw.Flush()
	if len(skips) > 0 {
		fmt.Fprintf(out, "\n%d skipped, with their reasons:\n", len(skips))
		for _, s := range skips {
			fmt.Fprintf(out, "  %s: %s\n", s.name, s.reason)
		}
	}
	if total.fail > 0 || len(failedPkgs) > 0 {
		return 1
	}
	return 0
}
