// Command ledger is orderledger's one binary: it serves the API with every
// worker in one process (`ledger serve`), and carries the operator's tools:
// audit history, projection rebuilds, dead-letter queue tooling, benchmarks,
// the payment and inventory simulators and the AWS bootstrap.
//
// Each subcommand lives in its own file and registers itself in init with
// register. Bad arguments print one line to stderr and exit 2; failures
// print one line and exit 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/orderledger/orderledger/internal/tracing"
)

// command is one subcommand. Run gets the arguments after the command's name
// (for a group such as "dlq list", after both words).
type command struct {
	name    string // "serve", or "dlq list" for a group member
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what a command may touch besides its arguments, so tests can run
// commands in-process with captured output.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("ledger: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// usageError marks a bad invocation: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// Traces are exported only when OTEL_EXPORTER_OTLP_ENDPOINT (or
	// _TRACES_ENDPOINT) is set, from any command (serve, bench e2e).
	shutdown, err := tracing.Setup(ctx, os.Getenv, "ledger")
	if err != nil {
		fmt.Fprintf(os.Stderr, "ledger: %s\n", oneLine(err.Error()))
		os.Exit(1)
	}
	code := run(ctx, &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:])
	stop()
	flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = shutdown(flushCtx) // the spans still batched; a collector that is gone costs them, not the exit status
	cancel()
	os.Exit(code)
}

// run dispatches args to a command and returns the exit status.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(e.stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, rest, ok := lookup(args)
	if !ok {
		if len(args) > 1 && len(subcommands(args[0]+" "+args[1])) > 0 {
			args = append([]string{args[0] + " " + args[1]}, args[2:]...) // a group in a group: "streams failures"
		}
		if group := subcommands(args[0]); len(group) > 0 {
			// A group such as "dlq": with -h (or nothing) list its commands.
			help := len(args) > 1 && (args[1] == "-h" || args[1] == "--help" || args[1] == "help")
			w := e.stderr
			if help {
				w = e.stdout
			} else if len(args) > 1 {
				fmt.Fprintf(e.stderr, "ledger: unknown command %q\n", strings.Join(args[:2], " "))
			}
			fmt.Fprintf(w, "usage: ledger %s <command> [flags]\n\ncommands:\n", args[0])
			for _, n := range group {
				fmt.Fprintf(w, "  %-24s %s\n", n, commands[n].summary)
			}
			fmt.Fprintf(w, "\nRun 'ledger %s <command> -h' for a command's flags.\n", args[0])
			if help {
				return 0
			}
			return 2
		}
		fmt.Fprintf(e.stderr, "ledger: unknown command %q (run 'ledger help')\n", strings.Join(args[:min(len(args), 2)], " "))
		return 2
	}
	err := c.run(ctx, e, rest)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case isUsage(err):
		fmt.Fprintf(e.stderr, "ledger %s: %s\n", c.name, oneLine(err.Error()))
		return 2
	default:
		fmt.Fprintf(e.stderr, "ledger %s: %s\n", c.name, oneLine(err.Error()))
		return 1
	}
}

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

// lookup finds the longest registered name that prefixes args.
func lookup(args []string) (command, []string, bool) {
	if len(args) >= 3 {
		if c, ok := commands[strings.Join(args[:3], " ")]; ok {
			return c, args[3:], true
		}
	}
	if len(args) >= 2 {
		if c, ok := commands[args[0]+" "+args[1]]; ok {
			return c, args[2:], true
		}
	}
	c, ok := commands[args[0]]
	return c, args[1:], ok
}

// subcommands returns the sorted names of the commands in group ("dlq":
// "dlq list", "dlq redrive").
func subcommands(group string) []string {
	var out []string
	for n := range commands {
		if strings.HasPrefix(n, group+" ") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func printUsage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: ledger <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-24s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'ledger <command> -h' for a command's flags.")
}

// newFlags returns a flag set that reports errors instead of exiting; parse
// with parseFlags.
func newFlags(name string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet("ledger "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parseFlags parses args, applying LEDGER_* environment variables to flags
// not given on the command line (flag "retry-backoff" <- LEDGER_RETRY_BACKOFF).
func parseFlags(fs *flag.FlagSet, e *env, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(e.stdout, "usage: %s [flags]\n", fs.Name())
			fs.SetOutput(e.stdout)
			fs.PrintDefaults()
			return err
		}
		return usageError{err.Error()}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		key := "LEDGER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := e.getenv(key); v != "" {
			if serr := f.Value.Set(v); serr != nil {
				err = usagef("invalid %s=%q: %v", key, v, serr)
			}
		}
	})
	return err
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.TrimSpace(s)
}
