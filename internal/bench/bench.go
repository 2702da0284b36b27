// Package bench holds orderledger's benchmarks: one file per area (the event
// store, projection rebuilds, end to end), each a function that runs a fixed
// workload and returns a Report. The ledger CLI runs them as
// "ledger bench <area>" and prints the report with WriteTable and, with
// --json, WriteJSON as the last line of output.
//
// Benchmarks measure; they never assert a speed. The figures and the command
// that produced them are recorded in BENCHMARKS.md.
//
// This file holds what every benchmark shares:
//
//	r := bench.Report{Title: "event store", Params: map[string]any{"orders": n}}
//	p := bench.NewProgress(stderr, "append 1 writer", total)
//	start := time.Now()
//	... p.Add(k) as work completes ...
//	p.Done()
//	r.Add("append_1w_events_per_s", "append, 1 writer", total, time.Since(start))
//	r.WriteTable(stdout)
//	r.WriteJSON(stdout) // with --json
package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Figure is one measured rate: Count items (events, orders, requests) done in
// Elapsed.
type Figure struct {
	// Key is the figure's name in the JSON output, e.g. "load_events_per_s".
	Key string
	// Label is its name in the human table, e.g. "load every order".
	Label string
	// Count is how many items were done.
	Count int
	// Elapsed is how long they took.
	Elapsed time.Duration
}

// PerSecond is Count / Elapsed.
func (f Figure) PerSecond() float64 {
	if f.Elapsed <= 0 {
		return 0
	}
	return float64(f.Count) / f.Elapsed.Seconds()
}

// Report is the result of one benchmark run.
type Report struct {
	// Title names the benchmark in the table's heading.
	Title string
	// Params are the workload's parameters; they are printed under the table
	// and included in the JSON object.
	Params map[string]any
	// Figures are the measured rates, in the order measured.
	Figures []Figure
}

// Add appends a figure.
func (r *Report) Add(key, label string, count int, elapsed time.Duration) {
	r.Figures = append(r.Figures, Figure{Key: key, Label: label, Count: count, Elapsed: elapsed})
}

// Figure returns the figure with key, if any.
func (r *Report) Figure(key string) (Figure, bool) {
	for _, f := range r.Figures {
		if f.Key == key {
			return f, true
		}
	}
	return Figure{}, false
}

// WriteTable prints a human-readable table of the figures.
func (r *Report) WriteTable(w io.Writer) error {
	width := len("measure")
	for _, f := range r.Figures {
		width = max(width, len(f.Label))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", r.Title)
	fmt.Fprintf(&b, "%-*s  %10s  %9s  %12s\n", width, "measure", "count", "seconds", "per second")
	for _, f := range r.Figures {
		fmt.Fprintf(&b, "%-*s  %10d  %9.3f  %12s\n", width, f.Label, f.Count, f.Elapsed.Seconds(), thousands(f.PerSecond()))
	}
	for _, k := range slices.Sorted(maps.Keys(r.Params)) {
		fmt.Fprintf(&b, "%s: %v\n", k, r.Params[k])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// JSON returns the report as one flat object: each figure's key with its
// rate rounded to an integer, and the parameters.
func (r *Report) JSON() map[string]any {
	out := make(map[string]any, len(r.Figures)+len(r.Params))
	for k, v := range r.Params {
		out[k] = v
	}
	for _, f := range r.Figures {
		out[f.Key] = int64(math.Round(f.PerSecond()))
	}
	return out
}

// WriteJSON prints the JSON object on one line.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r.JSON())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// thousands formats a rate as an integer with comma separators.
func thousands(v float64) string {
	n := int64(math.Round(v))
	s := fmt.Sprint(n)
	out := make([]byte, 0, len(s)+len(s)/3)
	for i, c := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			out = append(out, ',')
		}
		out = append(out, c)
	}
	return string(out)
}

// Progress keeps one self-overwriting line ("label  1234/80000") on w,
// typically stderr, redrawn at most five times a second. Add is safe for
// concurrent use. A nil *Progress or nil writer does nothing.
type Progress struct {
	w     io.Writer
	label string
	total int64
	done  atomic.Int64
	mu    sync.Mutex
	last  time.Time
}

// NewProgress starts a progress line for total items; w may be nil.
func NewProgress(w io.Writer, label string, total int) *Progress {
	if w == nil {
		return nil
	}
	p := &Progress{w: w, label: label, total: int64(total)}
	p.draw()
	return p
}

// Add records n more items done.
func (p *Progress) Add(n int) {
	if p == nil {
		return
	}
	p.done.Add(int64(n))
	if p.mu.TryLock() {
		if time.Since(p.last) >= 200*time.Millisecond {
			p.draw()
		}
		p.mu.Unlock()
	}
}

func (p *Progress) draw() {
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r%-28s %d/%d", p.label, p.done.Load(), p.total)
}

// Done draws the final count and ends the line.
func (p *Progress) Done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw()
	fmt.Fprintln(p.w)
}
