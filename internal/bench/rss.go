package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/orderledger/orderledger/eventstore/pebblestore"
)

// peakRSSMiB returns the peak resident set size (VmHWM) of process pid in
// MiB, or 0 when it cannot be read (pid 0, another machine, not Linux).
func peakRSSMiB(pid int) float64 {
	return procStatusMiB(pid, "VmHWM:")
}

// rssMiB returns the current resident set size (VmRSS) of process pid in
// MiB, or 0 when it cannot be read.
func rssMiB(pid int) float64 {
	return procStatusMiB(pid, "VmRSS:")
}

func procStatusMiB(pid int, field string) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return float64(kib) / 1024
		}
	}
	return 0
}

// resetPeakRSS resets the peak RSS of process pid to its current RSS
// (Linux: writing 5 to /proc/PID/clear_refs), so that a run's peak is its
// own. It does nothing when that is not possible.
func resetPeakRSS(pid int) {
	if pid <= 0 {
		return
	}
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// MemoryOptions configures the memory benchmark.
type MemoryOptions struct {
	// Events are the store sizes to measure, in events (default 100,000 and
	// 1,000,000), each in its own fresh store.
	Events []int
	// Reads is how many order loads are served from each store after a
	// full replay of its feed (default 100,000).
	Reads int
	// Dir is where the stores are created, in fresh sub-directories removed
	// afterwards (default the OS temporary directory).
	Dir string
	// Progress, when set, receives progress lines.
	Progress io.Writer
}

// MemoryRun is the resident memory of one store size.
type MemoryRun struct {
	Events int `json:"events"`
	Orders int `json:"orders"`
	// DiskMiB is the store's size on disk.
	DiskMiB float64 `json:"disk_mib"`
	// BaseMiB is the process's RSS before the store is opened (written,
	// closed and the Go heap returned to the OS first).
	BaseMiB float64 `json:"base_rss_mib"`
	// OpenMiB is the RSS right after opening the store.
	OpenMiB float64 `json:"open_rss_mib"`
	// ServedMiB is the RSS after the reads; PeakMiB the peak since BaseMiB.
	ServedMiB float64 `json:"served_rss_mib"`
	PeakMiB   float64 `json:"peak_rss_mib"`
	// Reads is how many events were read (feed replay and loads).
	Reads int `json:"events_read"`
}

// MemoryReport is the result of the memory benchmark.
type MemoryReport struct {
	Runs []MemoryRun
}

// Memory measures how the resident memory of a process serving reads from
// the embedded event store grows with the store's size. For each size it
// writes a fresh store (generated orders of every outcome, not measured),
// closes it, returns the Go heap to the OS and resets the peak RSS; then it
// opens the store, replays the whole change feed in pages of 1,000 and
// serves opts.Reads loads of orders spread over the whole log, and samples
// the RSS: before opening, after opening, after the reads, and the peak.
//
// Linux only for the RSS figures (they are 0 elsewhere).
func Memory(ctx context.Context, opts MemoryOptions) (MemoryReport, error) {
	if len(opts.Events) == 0 {
		opts.Events = []int{100_000, 1_000_000}
	}
	if opts.Reads <= 0 {
		opts.Reads = 100_000
	}
	if opts.Dir == "" {
		opts.Dir = os.TempDir()
	}
	var rep MemoryReport
	for _, n := range opts.Events {
		run, err := memoryRun(ctx, opts, n)
		if err != nil {
			return rep, err
		}
		rep.Runs = append(rep.Runs, run)
	}
	return rep, nil
}

func memoryRun(ctx context.Context, opts MemoryOptions, events int) (MemoryRun, error) {
	dir, err := os.MkdirTemp(opts.Dir, "bench-memory-")
	if err != nil {
		return MemoryRun{}, fmt.Errorf("bench: memory: %w", err)
	}
	defer os.RemoveAll(dir)
	s, err := pebblestore.Open(dir)
	if err != nil {
		return MemoryRun{}, fmt.Errorf("bench: memory: %w", err)
	}
	orders, err := writeLog(ctx, s, events, NewProgress(opts.Progress, fmt.Sprintf("write %d events", events), events))
	if cerr := s.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return MemoryRun{}, fmt.Errorf("bench: memory: %w", err)
	}
	run := MemoryRun{Orders: orders, DiskMiB: dirMiB(dir)}
	pid := os.Getpid()
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS(pid)
	run.BaseMiB = rssMiB(pid)

	s, err = pebblestore.Open(dir)
	if err != nil {
		return run, fmt.Errorf("bench: memory: %w", err)
	}
	defer s.Close()
	run.OpenMiB = rssMiB(pid)
	head, err := s.Head(ctx)
	if err != nil {
		return run, fmt.Errorf("bench: memory: %w", err)
	}
	run.Events = int(head)
	// Replay the feed, keeping a sample of order IDs spread over the log.
	const sample = 4096
	every := max(orders/sample, 1)
	var ids []string
	p := NewProgress(opts.Progress, "replay the feed", int(head))
	for after := uint64(0); after < head; {
		page, err := s.ReadFeed(ctx, after, 1000)
		if err != nil {
			return run, fmt.Errorf("bench: memory: read feed: %w", err)
		}
		if len(page) == 0 {
			return run, fmt.Errorf("bench: memory: feed ends at %d, head %d", after, head)
		}
		for _, e := range page {
			if e.Version == 1 && int(e.Position)%every == 0 {
				ids = append(ids, strings.Clone(e.StreamID)) // not a view into the page
			}
		}
		after = page[len(page)-1].Position
		run.Reads += len(page)
		p.Add(len(page))
	}
	p.Done()
	if len(ids) == 0 {
		return run, errors.New("bench: memory: no orders in the log")
	}
	p = NewProgress(opts.Progress, "load orders", opts.Reads)
	for i := range opts.Reads {
		evs, err := s.Load(ctx, ids[(i*7919)%len(ids)], 0)
		if err != nil {
			return run, fmt.Errorf("bench: memory: load: %w", err)
		}
		if len(evs) == 0 {
			return run, fmt.Errorf("bench: memory: order %s has no events", ids[(i*7919)%len(ids)])
		}
		run.Reads += len(evs)
		if i%1000 == 999 {
			p.Add(1000)
		}
	}
	p.Done()
	run.ServedMiB = rssMiB(pid)
	run.PeakMiB = peakRSSMiB(pid)
	return run, nil
}

// dirMiB is the total size of the files under dir.
func dirMiB(dir string) float64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return float64(n) / (1 << 20)
}

// WriteTable prints one row per store size.
func (r *MemoryReport) WriteTable(w io.Writer) error {
	fmt.Fprintln(w, "memory: embedded event store serving reads (RSS of this process)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "events\torders\ton disk MiB\tRSS before open\topened\tafter reads\tpeak\tevents read\t\n")
	for _, run := range r.Runs {
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t\n", thousands(float64(run.Events)), thousands(float64(run.Orders)),
			run.DiskMiB, run.BaseMiB, run.OpenMiB, run.ServedMiB, run.PeakMiB, thousands(float64(run.Reads)))
	}
	return tw.Flush()
}

// WriteJSON prints {"runs":[...]} on one line.
func (r *MemoryReport) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(map[string]any{"runs": r.Runs})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
