// Command soak drives a running `ledger serve` over HTTP for a long time at a
// fixed rate and reports whether it held up: request errors, latency, the
// server's resident memory over time, and whether every accepted order
// reached a terminal state once the load stopped.
//
// It runs in two phases. Calibration (unless --rate is given) places orders
// as fast as --conc closed-loop clients can for --calibrate, then waits for
// the pipeline to finish them: the maximum rate is orders finished per
// second end to end. The soak then places orders open-loop at --fraction of
// that rate for --duration, sampling the RSS of --pid every --sample.
//
// scripts/soak.sh starts the server and runs this; it prints a table and,
// as its last line, one JSON object with the figures.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/projections"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

type options struct {
	url       string
	pid       int
	rate      float64
	fraction  float64
	conc      int
	calibrate time.Duration
	duration  time.Duration
	sample    time.Duration
	drain     time.Duration
}

// sample is one RSS reading.
type sample struct {
	At     float64 `json:"at_s"`
	RSSKiB int64   `json:"rss_kib"`
	Placed int64   `json:"placed"`
}

// report is the JSON summary.
type report struct {
	MaxRate      float64  `json:"max_rate_orders_per_s"`
	TargetRate   float64  `json:"target_rate_orders_per_s"`
	AchievedRate float64  `json:"achieved_rate_orders_per_s"`
	DurationS    float64  `json:"duration_s"`
	Placed       int64    `json:"placed"`
	Errors       int64    `json:"errors"`
	Late         int64    `json:"late_dispatches"`
	P50Ms        float64  `json:"p50_ms"`
	P99Ms        float64  `json:"p99_ms"`
	RSSStartKiB  int64    `json:"rss_start_kib"`
	RSSMidKiB    int64    `json:"rss_middle_kib"`
	RSSEndKiB    int64    `json:"rss_end_kib"`
	RSSMaxKiB    int64    `json:"rss_max_kib"`
	Drained      bool     `json:"drained"`
	DrainS       float64  `json:"drain_s"`
	Pending      int64    `json:"pending_after_drain"`
	Statuses     counts   `json:"statuses"`
	Samples      []sample `json:"samples"`
}

type counts map[string]int64

func run() error {
	var o options
	flag.StringVar(&o.url, "url", "http://127.0.0.1:8000", "base URL of the ledger API")
	flag.IntVar(&o.pid, "pid", 0, "process ID of the server, for RSS samples (0: none)")
	flag.Float64Var(&o.rate, "rate", 0, "orders per second to soak at (0: calibrate and use --fraction of the maximum)")
	flag.Float64Var(&o.fraction, "fraction", 0.5, "share of the calibrated maximum rate to soak at")
	flag.IntVar(&o.conc, "conc", 16, "concurrent clients (calibration) and the cap on requests in flight (soak)")
	flag.DurationVar(&o.calibrate, "calibrate", 5*time.Second, "length of the calibration burst")
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "length of the soak")
	flag.DurationVar(&o.sample, "sample", 10*time.Second, "RSS sampling interval")
	flag.DurationVar(&o.drain, "drain", 5*time.Minute, "how long to wait for the pipeline to finish after the load")
	flag.Parse()
	o.url = strings.TrimSuffix(o.url, "/")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	ac, err := api.NewClient(o.url, api.WithHTTPClient(&http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4 * o.conc}}))
	if err != nil {
		return err
	}
	c := &client{base: o.url, api: ac}
	if err := c.waitHealthy(ctx); err != nil {
		return err
	}
	var rep report
	if o.rate <= 0 {
		maxRate, err := calibrate(ctx, c, o)
		if err != nil {
			return err
		}
		rep.MaxRate = maxRate
		o.rate = maxRate * o.fraction
	}
	rep.TargetRate = o.rate
	fmt.Printf("soak: %.1f orders/s for %s (max %.1f/s)\n", o.rate, o.duration, rep.MaxRate)
	if err := soak(ctx, c, o, &rep); err != nil {
		return err
	}
	printReport(rep)
	js, _ := json.Marshal(rep)
	fmt.Println(string(js))
	if rep.Errors > 0 || !rep.Drained || rep.Pending > 0 {
		return errors.New("the soak saw errors or orders left unfinished")
	}
	return nil
}

// calibrate finds the end-to-end maximum: orders placed by closed-loop
// clients over o.calibrate, divided by the time until all are terminal.
func calibrate(ctx context.Context, c *client, o options) (float64, error) {
	before, err := c.terminalCount(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	var placed, errs atomic.Int64
	var wg sync.WaitGroup
	cctx, cancel := context.WithTimeout(ctx, o.calibrate)
	defer cancel()
	for i := range o.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; cctx.Err() == nil; n++ {
				if _, err := c.place(ctx, fmt.Sprintf("calibrate-%d-%d", i, n)); err != nil {
					errs.Add(1)
					continue
				}
				placed.Add(1)
			}
		}()
	}
	wg.Wait()
	acceptRate := float64(placed.Load()) / time.Since(start).Seconds()
	if err := c.waitDrained(ctx, o.drain); err != nil {
		return 0, fmt.Errorf("calibration: %w", err)
	}
	after, err := c.terminalCount(ctx)
	if err != nil {
		return 0, err
	}
	elapsed := time.Since(start).Seconds()
	done := after - before
	fmt.Printf("calibration: %d placed in %s (%.1f accepted/s, %d errors); %d finished in %.1fs: %.1f orders/s end to end\n",
		placed.Load(), o.calibrate, acceptRate, errs.Load(), done, elapsed, float64(done)/elapsed)
	if errs.Load() > 0 {
		return 0, fmt.Errorf("calibration: %d requests failed", errs.Load())
	}
	return float64(done) / elapsed, nil
}

// soak places orders open-loop at o.rate for o.duration.
func soak(ctx context.Context, c *client, o options, rep *report) error {
	before, err := c.statusCounts(ctx)
	if err != nil {
		return err
	}
	interval := time.Duration(float64(time.Second) / o.rate)
	slots := make(chan struct{}, o.conc)
	var placed, errs, late atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	takeSample := func() {
		s := sample{At: time.Since(start).Round(time.Second).Seconds(), Placed: placed.Load(), RSSKiB: rss(o.pid)}
		rep.Samples = append(rep.Samples, s)
		fmt.Printf("  t=%5.0fs placed=%7d errors=%d rss=%d KiB\n", s.At, s.Placed, errs.Load(), s.RSSKiB)
	}
	takeSample()
	sampler := time.NewTicker(o.sample)
	defer sampler.Stop()
	next := start
	deadline := start.Add(o.duration)
	for n := 0; ; n++ {
		next = next.Add(interval)
		if next.After(deadline) || ctx.Err() != nil {
			break
		}
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		select {
		case <-sampler.C:
			takeSample()
		default:
		}
		select {
		case slots <- struct{}{}:
		default:
			late.Add(1) // every slot busy: the server is not keeping up
			slots <- struct{}{}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			t0 := time.Now()
			if _, err := c.place(ctx, fmt.Sprintf("soak-%d", n)); err != nil {
				if errs.Add(1) <= 10 {
					fmt.Fprintln(os.Stderr, "soak: request failed:", err)
				}
				return
			}
			d := time.Since(t0)
			placed.Add(1)
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	takeSample()
	drainStart := time.Now()
	derr := c.waitDrained(ctx, o.drain)
	rep.DrainS = time.Since(drainStart).Seconds()
	rep.Drained = derr == nil
	after, err := c.statusCounts(ctx)
	if err != nil {
		return err
	}
	takeSample()
	rep.Statuses = counts{}
	for k, v := range after {
		rep.Statuses[k] = v - before[k]
	}
	rep.Pending = after["Pending"]
	rep.DurationS = elapsed.Seconds()
	rep.Placed, rep.Errors, rep.Late = placed.Load(), errs.Load(), late.Load()
	rep.AchievedRate = float64(rep.Placed) / elapsed.Seconds()
	slices.Sort(lat)
	if len(lat) > 0 {
		rep.P50Ms = ms(lat[len(lat)/2])
		rep.P99Ms = ms(lat[len(lat)*99/100])
	}
	if n := len(rep.Samples); n > 0 {
		rep.RSSStartKiB = rep.Samples[0].RSSKiB
		rep.RSSMidKiB = rep.Samples[n/2].RSSKiB
		rep.RSSEndKiB = rep.Samples[n-1].RSSKiB
		for _, s := range rep.Samples {
			rep.RSSMaxKiB = max(rep.RSSMaxKiB, s.RSSKiB)
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func printReport(r report) {
	fmt.Println()
	fmt.Printf("%-28s %12s\n", "figure", "value")
	row := func(k string, v any) { fmt.Printf("%-28s %12v\n", k, v) }
	row("max rate (orders/s)", fmt.Sprintf("%.1f", r.MaxRate))
	row("target rate (orders/s)", fmt.Sprintf("%.1f", r.TargetRate))
	row("achieved rate (orders/s)", fmt.Sprintf("%.1f", r.AchievedRate))
	row("duration (s)", fmt.Sprintf("%.0f", r.DurationS))
	row("orders placed", r.Placed)
	row("errors", r.Errors)
	row("late dispatches", r.Late)
	row("latency p50 (ms)", fmt.Sprintf("%.1f", r.P50Ms))
	row("latency p99 (ms)", fmt.Sprintf("%.1f", r.P99Ms))
	row("RSS start (MiB)", fmt.Sprintf("%.1f", float64(r.RSSStartKiB)/1024))
	row("RSS middle (MiB)", fmt.Sprintf("%.1f", float64(r.RSSMidKiB)/1024))
	row("RSS end (MiB)", fmt.Sprintf("%.1f", float64(r.RSSEndKiB)/1024))
	row("RSS max (MiB)", fmt.Sprintf("%.1f", float64(r.RSSMaxKiB)/1024))
	row("drained", r.Drained)
	row("drain time (s)", fmt.Sprintf("%.1f", r.DrainS))
	row("pending after drain", r.Pending)
	for _, k := range []string{"Completed", "Failed", "Cancelled"} {
		row(strings.ToLower(k), r.Statuses[k])
	}
}

// rss returns the resident set size of pid in KiB (0 when unknown).
func rss(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// client drives the ledger API through api.Client.
type client struct {
	base string
	api  *api.Client
}

func (c *client) waitHealthy(ctx context.Context) error {
	for range 200 {
		if c.api.Health(ctx) == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s/healthz never answered 200", c.base)
}

// place places one order and returns its ID.
func (c *client) place(ctx context.Context, customer string) (string, error) {
	o, err := c.api.Place(ctx, api.PlaceRequest{CustomerName: customer, ProductName: "soak widget", Quantity: 1})
	if err != nil {
		return "", err
	}
	if o.OrderID == "" {
		return "", errors.New("POST /orders: an answer without an order ID")
	}
	return o.OrderID, nil
}

// statusCounts counts orders per status by paging GET /orders.
func (c *client) statusCounts(ctx context.Context) (counts, error) {
	out := counts{}
	for _, st := range []order.Status{order.StatusPending, order.StatusCompleted, order.StatusFailed, order.StatusCancelled} {
		n, err := c.countStatus(ctx, st)
		if err != nil {
			return nil, err
		}
		out[string(st)] = n
	}
	return out, nil
}

func (c *client) terminalCount(ctx context.Context) (int64, error) {
	cs, err := c.statusCounts(ctx)
	if err != nil {
		return 0, err
	}
	return cs["Completed"] + cs["Failed"] + cs["Cancelled"], nil
}

func (c *client) countStatus(ctx context.Context, status order.Status) (int64, error) {
	var n int64
	for _, err := range c.api.ListAll(ctx, projections.ListQuery{Status: status, Limit: projections.MaxLimit}) {
		if err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// waitDrained waits until no order is pending, the projector and the
// publisher have caught up with the log and the processing queue is empty
// (as /readyz details them).
func (c *client) waitDrained(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	quiet := 0
	for time.Now().Before(deadline) {
		var page projections.Page
		ready, err := c.api.Ready(ctx)
		if err == nil {
			page, err = c.api.List(ctx, projections.ListQuery{Status: order.StatusPending, Limit: 1})
		}
		if err == nil && len(page.Items) == 0 {
			idle := len(ready.Checks) > 0
			for _, ch := range ready.Checks {
				switch ch.Name {
				case "projector":
					idle = idle && strings.HasPrefix(ch.Detail, "0 events behind")
				case "pipeline":
					idle = idle && strings.HasPrefix(ch.Detail, "publisher 0 events behind; processing 0 queued, 0 in flight")
				}
			}
			if idle {
				quiet++
			} else {
				quiet = 0
			}
			if quiet >= 2 { // twice in a row: nothing was in between
				return nil
			}
		} else {
			quiet = 0
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("orders still pending after %s", limit)
}
