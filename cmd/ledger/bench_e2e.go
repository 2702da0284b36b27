package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"

	"golang.org/x/term"

	"github.com/orderledger/orderledger/internal/bench"
)

func init() {
	register(command{
		name:    "bench e2e",
		summary: "benchmark orders end to end through the HTTP API (orders/s, POST and completion latency, peak RSS)",
		run:     runBenchE2E,
	})
	register(command{
		name:    "bench memory",
		summary: "measure the RSS of a process serving reads from event stores of growing size",
		run:     runBenchMemory,
	})
}

func runBenchE2E(ctx context.Context, e *env, args []string) error {
	fs := newFlags("bench e2e", e)
	orders := fs.Int("orders", 5000, "measured orders per run")
	clients := fs.Int("clients", 16, "concurrent closed-loop clients")
	sweep := fs.Bool("sweep", false, "run at 1, 4, 16 and 64 clients (each on a fresh server) and report the best rate")
	clientList := fs.String("sweep-clients", "1,4,16,64", "client counts of --sweep, comma-separated")
	warmup := fs.Int("warmup", 200, "orders placed and finished before each measured run (0: none)")
	url := fs.String("url", "", "base URL of a running ledger to measure instead of starting one in this process")
	pid := fs.Int("pid", 0, "with --url: process ID of the server, for its peak RSS (same machine)")
	dir := fs.String("dir", "", "directory on the disk to measure, for the in-process server's data (default the OS temporary directory)")
	workers := fs.Int("workers", 32, "in-process server: order processing workers (as ledger serve --workers)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the measured runs (server and clients) to this file")
	asJSON := fs.Bool("json", false, "print the figures as one JSON object on the last line")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case *orders < 1:
		return usagef("--orders must be at least 1")
	case *clients < 1:
		return usagef("--clients must be at least 1")
	case *warmup < 0:
		return usagef("--warmup must not be negative")
	case *workers < 1:
		return usagef("--workers must be at least 1")
	case *pid < 0:
		return usagef("--pid must not be negative")
	case *url != "" && !strings.HasPrefix(*url, "http://") && !strings.HasPrefix(*url, "https://"):
		return usagef("--url must be an http:// or https:// URL")
	case *pid > 0 && *url == "":
		return usagef("--pid needs --url (in process, the peak RSS is this process's)")
	}
	opts := bench.E2EOptions{Orders: *orders, Clients: *clients, Warmup: *warmup, URL: *url, PID: *pid,
		Dir: *dir, Workers: *workers, Progress: terminalWriter(e.stderr)}
	if opts.Warmup == 0 {
		opts.Warmup = -1
	}
	if *sweep {
		for _, f := range strings.Split(*clientList, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return usagef("--sweep-clients must be positive integers separated by commas, not %q", *clientList)
			}
			opts.Sweep = append(opts.Sweep, n)
		}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	r, err := bench.E2E(ctx, opts)
	if err != nil {
		return err
	}
	return printBench(e, &r, *asJSON)
}

// terminalWriter returns w when it is a terminal, for progress lines, and
// nil otherwise (logs and pipes get only the results).
func terminalWriter(w io.Writer) io.Writer {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return w
	}
	return nil
}

func runBenchMemory(ctx context.Context, e *env, args []string) error {
	fs := newFlags("bench memory", e)
	sizes := fs.String("events", "100000,1000000", "store sizes in events, comma-separated (each a fresh store)")
	reads := fs.Int("reads", 100_000, "order loads served from each store after a full feed replay")
	dir := fs.String("dir", "", "directory for the stores (default the OS temporary directory)")
	asJSON := fs.Bool("json", false, "print the figures as one JSON object on the last line")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *reads < 1 {
		return usagef("--reads must be at least 1")
	}
	var events []int
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return usagef("--events must be positive integers separated by commas, not %q", *sizes)
		}
		events = append(events, n)
	}
	r, err := bench.Memory(ctx, bench.MemoryOptions{Events: events, Reads: *reads, Dir: *dir, Progress: terminalWriter(e.stderr)})
	if err != nil {
		return err
	}
	return printBench(e, &r, *asJSON)
}
