package main

import (
	"context"

	"github.com/orderledger/orderledger/internal/bench"
)

func init() {
	register(command{
		name:    "bench store",
		summary: "benchmark the embedded event store (durable appends, load, feed replay)",
		run:     runBenchStore,
	})
}

func runBenchStore(ctx context.Context, e *env, args []string) error {
	fs := newFlags("bench store", e)
	orders := fs.Int("orders", 20_000, "orders per append phase (4 events each)")
	writers := fs.Int("writers", 8, "concurrent writers of the second append phase")
	dir := fs.String("dir", "", "directory on the disk to measure (default the OS temporary directory)")
	asJSON := fs.Bool("json", false, "print the figures as one JSON object on the last line")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *orders < 1 {
		return usagef("--orders must be at least 1")
	}
	if *writers < 1 {
		return usagef("--writers must be at least 1")
	}
	r, err := bench.Store(ctx, bench.StoreOptions{Orders: *orders, Writers: *writers, Dir: *dir, Progress: e.stderr})
	if err != nil {
		return err
	}
	return printBench(e, &r, *asJSON)
}
