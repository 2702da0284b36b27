package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/orderledger/orderledger/internal/bench"
)

func init() {
	register(command{
		name:    "bench rebuild",
		summary: "benchmark the projection rebuild (events folded into views per second)",
		run:     runBenchRebuild,
	})
}

func runBenchRebuild(ctx context.Context, e *env, args []string) error {
	fs := newFlags("bench rebuild", e)
	events := fs.Int("events", 1_000_000, "events in the log to rebuild from (written first, not timed)")
	workers := fs.Int("workers", 0, "goroutines decoding events (default GOMAXPROCS)")
	dir := fs.String("dir", "", "directory on the disk to measure (default the OS temporary directory)")
	runs := fs.Int("runs", 1, "rebuilds timed on the same log (the report gives the median)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the timed rebuild to this file")
	asJSON := fs.Bool("json", false, "print the figures as one JSON object on the last line")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *events < 1 {
		return usagef("--events must be at least 1")
	}
	if *runs < 1 {
		return usagef("--runs must be at least 1")
	}
	if *workers < 0 {
		return usagef("--workers must not be negative")
	}
	var prof io.Writer
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return fmt.Errorf("bench rebuild: %w", err)
		}
		defer f.Close()
		prof = f
	}
	show := newRebuildProgress(e.stderr, "rebuild")
	r, err := bench.Rebuild(ctx, bench.RebuildOptions{Events: *events, Workers: *workers, Dir: *dir, Progress: e.stderr, OnRebuild: show.update, CPUProfile: prof, Runs: *runs})
	show.finish()
	if err != nil {
		return err
	}
	return printBench(e, &r, *asJSON)
}
