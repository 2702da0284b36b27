package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/orderledger/orderledger/app"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/pebbleviews"
)

func init() {
	register(command{
		name:    "projections rebuild",
		summary: "rebuild the read model from the event log (--backend aws: the read table, in place or --into a new one; a running server: POST /admin/projections/rebuild)",
		run:     runProjectionsRebuild,
	})
}

// runProjectionsRebuild rebuilds DIR/views from DIR/events into a fresh
// generation and switches to it atomically. The data directory must not be
// in use: a running ledger holds its databases, and is asked to rebuild with
// POST /admin/projections/rebuild instead (its read model keeps serving
// meanwhile).
//
// With --backend aws it rebuilds the read table of environment LEDGER_ENV
// from its events table instead (see rebuildAWS); the servers may run.
func runProjectionsRebuild(ctx context.Context, e *env, args []string) error {
	fs := newFlags("projections rebuild", e)
	data := fs.String("data", "./data", "data directory of a stopped embedded ledger")
	backend := fs.String("backend", "embedded", "embedded (--data) or aws (the read table of environment LEDGER_ENV, through the standard AWS configuration; the servers may run)")
	var o awsRebuildFlags
	fs.IntVar(&o.segments, "segments", 0, "aws: segments of the parallel scans (default: sized to the events table; a resumed run keeps its own)")
	fs.Float64Var(&o.maxWriteUnits, "max-write-units-per-second", 0, "aws: bound on the write units the rebuild spends per second (default: no bound)")
	fs.BoolVar(&o.prune, "prune", false, "aws: delete the read table's items whose order has no events (default: report them)")
	fs.BoolVar(&o.asJSON, "json", false, "aws: print the result as JSON")
	fs.StringVar(&o.into, "into", "", "aws: blue/green: create table NAME with the read table's keys and indexes (or resume filling it) and rebuild into it; the old table stays")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	switch *backend {
	case "aws":
		return rebuildAWS(ctx, e, o)
	case "embedded":
		awsOnly := ""
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "segments" || f.Name == "max-write-units-per-second" || f.Name == "prune" || f.Name == "json" || f.Name == "into" {
				awsOnly = f.Name
			}
		})
		if awsOnly != "" {
			return usagef("--%s is for --backend aws", awsOnly)
		}
	default:
		return usagef("--backend must be embedded or aws, not %q", *backend)
	}
	eventsDir := app.Layout(*data).Events
	if _, err := os.Stat(eventsDir); err != nil {
		return fmt.Errorf("no event store in %s (use --data DIR)", *data)
	}
	es, err := pebblestore.Open(eventsDir)
	if err != nil {
		return fmt.Errorf("open the event store (if a ledger is running on %s, ask it: POST /admin/projections/rebuild): %w", *data, err)
	}
	defer es.Close()
	rm, err := pebbleviews.Open(app.Layout(*data).Views)
	if err != nil {
		return fmt.Errorf("open the read model: %w", err)
	}
	defer rm.Close()
	show := newRebuildProgress(e.stderr, "rebuild")
	res, err := rm.Rebuild(ctx, es, orders.NewCodec(), pebbleviews.RebuildOptions{Progress: show.update})
	// The display ends on the figures the summary prints.
	show.cur.Done, show.cur.Elapsed = res.Events, res.Elapsed
	show.finish()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted")
		}
		return fmt.Errorf("rebuild stopped at position %d; the previous read model is still live; rerun to resume: %w", res.From+res.Events, err)
	}
	rate := 0.0
	if res.Elapsed > 0 {
		rate = float64(res.Events) / res.Elapsed.Seconds()
	}
	from := ""
	if res.From > 0 {
		from = fmt.Sprintf(" (resumed at position %d)", res.From)
	}
	fmt.Fprintf(e.stdout, "rebuilt the read model: generation %d at position %d, %d events in %.2fs (%.0f events/s)%s\n",
		res.Generation, res.Position, res.Events, res.Elapsed.Seconds(), rate, from)
	return nil
}

// rebuildProgress shows a rebuild's progress: a progress bar (events done,
// events/s, ETA) when w is a terminal, else a plain line every two seconds.
type rebuildProgress struct {
	w     io.Writer
	label string
	tty   bool
	// log, when set, receives the plain lines as JSON log lines instead.
	log  *slog.Logger
	bar  *progressbar.ProgressBar
	last time.Time
	cur  projections.Progress
}

func newRebuildProgress(w io.Writer, label string) *rebuildProgress {
	p := &rebuildProgress{w: w, label: label}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

// update is a rebuild's progress callback.
func (p *rebuildProgress) update(pr projections.Progress) {
	p.cur = pr
	if p.tty {
		if p.bar == nil {
			p.bar = progressbar.NewOptions64(int64(pr.Total),
				progressbar.OptionSetWriter(p.w),
				progressbar.OptionSetDescription(p.label),
				progressbar.OptionShowCount(),
				// The rate and ETA are the rebuild's own (Progress.Rate,
				// from its start), the figures the summary line prints:
				// the bar's would count from its first update.
				progressbar.OptionSetPredictTime(false),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionSetWidth(30),
			)
		}
		if int64(pr.Total) > p.bar.GetMax64() {
			p.bar.ChangeMax64(int64(pr.Total))
		}
		p.bar.Describe(p.describe())
		_ = p.bar.Set64(int64(pr.Done))
		return
	}
	if time.Since(p.last) >= 2*time.Second {
		p.last = time.Now()
		p.line()
	}
}

// describe is the bar's label: the rate and ETA of the rebuild so far.
func (p *rebuildProgress) describe() string {
	return fmt.Sprintf("%s %.0f events/s, ETA %s", p.label, p.cur.Rate(), p.cur.ETA().Round(time.Second))
}

func (p *rebuildProgress) line() {
	if p.log != nil {
		p.log.Info("rebuild progress", "events_done", p.cur.Done, "events_total", p.cur.Total, "orders_done", p.cur.Orders,
			"views_repaired", p.cur.Repaired, "orphans", p.cur.Orphans,
			"events_per_second", math.Round(p.cur.Rate()), "eta_seconds", math.Round(p.cur.ETA().Seconds()))
		return
	}
	pct := 100.0
	if p.cur.Total > 0 {
		pct = 100 * float64(p.cur.Done) / float64(p.cur.Total)
	}
	fmt.Fprintf(p.w, "%s: %d/%d events (%.0f%%), %.0f events/s, ETA %s\n",
		p.label, p.cur.Done, p.cur.Total, pct, p.cur.Rate(), p.cur.ETA().Round(time.Second))
}

// finish ends the display with the final figures.
func (p *rebuildProgress) finish() {
	if p.bar != nil {
		p.bar.Describe(p.describe())
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
		return
	}
	if !p.tty && !p.last.IsZero() {
		p.line()
	}
}
