package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/orderledger/orderledger/app"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/internal/ordergen"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/pebbleviews"
)

// RebuildOptions configures the rebuild benchmark.
type RebuildOptions struct {
	// Events is how many events the log holds, at least (default 1,000,000).
	Events int
	// Workers is how many goroutines decode events (default GOMAXPROCS).
	Workers int
	// Dir is where the log and the read model are created, in a fresh
	// sub-directory removed afterwards (default the OS temporary directory).
	Dir string
	// Progress, when set, receives the setup's progress line (stderr).
	Progress io.Writer
	// OnRebuild, when set, is called with the rebuild's progress (the CLI
	// draws its progress bar with it).
	OnRebuild func(projections.Progress)
	// Runs is how many rebuilds are timed on the same log (default 1); the
	// report gives the median.
	Runs int
	// CPUProfile, when set, receives a CPU profile of the first timed rebuild.
	CPUProfile io.Writer
}

// Rebuild benchmarks the embedded read model's rebuild: it first writes a
// log of at least Events events (generated order histories of every outcome,
// about three events each, appended durably by 64 writers) and waits for its
// background compactions to settle, neither timed; then it times one full
// rebuild into a fresh generation, switch included:
//
//   - rebuild_events_per_s: events read from the feed, decoded, folded and
//     written as views, per second.
func Rebuild(ctx context.Context, opts RebuildOptions) (Report, error) {
	if opts.Events <= 0 {
		opts.Events = 1_000_000
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Runs <= 0 {
		opts.Runs = 1
	}
	if opts.Dir == "" {
		opts.Dir = os.TempDir()
	}
	dir, err := os.MkdirTemp(opts.Dir, "bench-rebuild-")
	if err != nil {
		return Report{}, fmt.Errorf("bench: rebuild: %w", err)
	}
	defer os.RemoveAll(dir)
	es, err := pebblestore.Open(app.Layout(dir).Events)
	if err != nil {
		return Report{}, fmt.Errorf("bench: rebuild: %w", err)
	}
	defer es.Close()
	nOrders, err := writeLog(ctx, es, opts.Events, NewProgress(opts.Progress, "write the log (not timed)", opts.Events))
	if err != nil {
		return Report{}, err
	}
	head, err := es.Head(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("bench: rebuild: %w", err)
	}
	// Let the log's background compactions finish: they are the setup's
	// debt, not the rebuild's work.
	if err := settle(ctx, 2*time.Minute); err != nil {
		return Report{}, err
	}
	rm, err := pebbleviews.Open(app.Layout(dir).Views)
	if err != nil {
		return Report{}, fmt.Errorf("bench: rebuild: %w", err)
	}
	defer rm.Close()

	r := Report{
		Title: "projection rebuild (embedded, pebble)",
		Params: map[string]any{
			"events":     head,
			"orders":     nOrders,
			"workers":    opts.Workers,
			"gomaxprocs": runtime.GOMAXPROCS(0),
			"dir":        opts.Dir,
		},
	}
	type run struct {
		elapsed, cpu time.Duration
		events       uint64
	}
	var runs []run
	for i := range opts.Runs {
		if i > 0 {
			// The previous run's reopened generation compacts: not this run's work.
			if err := settle(ctx, 2*time.Minute); err != nil {
				return r, err
			}
		}
		runtime.GC()
		if opts.CPUProfile != nil && i == 0 {
			if err := pprof.StartCPUProfile(opts.CPUProfile); err != nil {
				return r, fmt.Errorf("bench: rebuild: %w", err)
			}
		}
		cpu0 := cpuTime()
		start := time.Now()
		res, err := rm.Rebuild(ctx, es, orders.NewCodec(), pebbleviews.RebuildOptions{Workers: opts.Workers, Progress: opts.OnRebuild})
		elapsed := time.Since(start)
		// CPU time of the whole process while rebuilding (the log's own
		// background compactions included): on a shared machine it tells how
		// much of the wall time the rebuild actually ran.
		cpu := cpuTime() - cpu0
		if opts.CPUProfile != nil && i == 0 {
			pprof.StopCPUProfile()
		}
		if err != nil {
			return r, fmt.Errorf("bench: rebuild: %w", err)
		}
		if res.Events != head {
			return r, fmt.Errorf("bench: rebuild: folded %d events, the log holds %d", res.Events, head)
		}
		counts, err := rm.Counts(ctx)
		if err != nil {
			return r, fmt.Errorf("bench: rebuild: %w", err)
		}
		var views int64
		for _, n := range counts {
			views += n
		}
		if views != int64(nOrders) {
			return r, fmt.Errorf("bench: rebuild: %d views for %d orders", views, nOrders)
		}
		runs = append(runs, run{elapsed: elapsed, cpu: cpu, events: res.Events})
	}
	// The median run by wall time, and the median CPU time.
	slices.SortFunc(runs, func(a, b run) int { return cmp.Compare(a.elapsed, b.elapsed) })
	med := runs[len(runs)/2]
	cpus := make([]time.Duration, len(runs))
	for i, x := range runs {
		cpus[i] = x.cpu
	}
	slices.Sort(cpus)
	if cpu := cpus[len(cpus)/2]; cpu > 0 {
		r.Params["cpu_seconds"] = fmt.Sprintf("%.2f", cpu.Seconds())
		r.Params["events_per_cpu_second"] = int64(float64(med.events) / cpu.Seconds())
	}
	if len(runs) > 1 {
		r.Params["runs"] = len(runs)
		var walls, cpuSecs []string
		for _, x := range runs {
			walls = append(walls, fmt.Sprintf("%.3f", x.elapsed.Seconds()))
		}
		for _, c := range cpus {
			cpuSecs = append(cpuSecs, fmt.Sprintf("%.2f", c.Seconds()))
		}
		r.Params["runs_seconds"] = strings.Join(walls, " ")
		r.Params["runs_cpu_seconds"] = strings.Join(cpuSecs, " ")
	}
	res, elapsed := med, med.elapsed
	r.Add("rebuild_events_per_s", "rebuild the read model", int(res.events), elapsed)
	return r, nil
}

// writeLog appends generated orders until the log holds at least events
// events, one append per order from 64 writers, and returns how many orders.
func writeLog(ctx context.Context, es eventstore.Store, events int, p *Progress) (int, error) {
	const writers, chunk = 64, 2000
	codec := orders.NewCodec()
	rng := rand.New(rand.NewPCG(2026, 11))
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	nOrders, written := 0, 0
	for written < events {
		streams := ordergen.Orders(rng, codec, chunk, at)
		last := streams[len(streams)-1]
		at = last[len(last)-1].OccurredAt
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(streams); i += writers {
					if _, err := es.Append(ctx, streams[i][0].StreamID, 0, streams[i]...); err != nil {
						errs <- fmt.Errorf("bench: rebuild: write the log: %w", err)
						return
					}
					p.Add(len(streams[i]))
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return 0, err
		}
		for _, s := range streams {
			written += len(s)
		}
		nOrders += len(streams)
	}
	p.Done()
	return nOrders, nil
}

// settle waits until the process has been nearly idle (under 5% of one
// core) for half a second, or max has passed.
func settle(ctx context.Context, max time.Duration) error {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		c0 := cpuTime()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if cpuTime()-c0 < 25*time.Millisecond {
			return nil
		}
	}
	return nil
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
