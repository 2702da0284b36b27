package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/app"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/projections"
)

// E2EOptions configures the end-to-end benchmark.
type E2EOptions struct {
	// Orders is the number of measured orders per run (default 5,000).
	Orders int
	// Clients is the number of concurrent closed-loop clients (default 16).
	Clients int
	// Sweep, when not empty, runs once per client count listed (each on a
	// fresh server) instead of once with Clients; the best rate is reported.
	Sweep []int
	// Warmup is the number of orders placed and finished before each
	// measured run, not measured (default 200; negative: none).
	Warmup int
	// URL, when set, targets a running ledger instead of starting one.
	URL string
	// PID is the process ID of the server at URL, for its peak RSS (0: none).
	PID int
	// Dir is where the in-process server's data directory is created, in a
	// fresh sub-directory removed afterwards (default the OS temporary
	// directory). Put it on the disk to be measured.
	Dir string
	// Workers is the in-process server's order processing workers (0: the
	// pipeline default).
	Workers int
	// Progress, when set, receives a progress line (stderr on a terminal).
	Progress io.Writer
}

// E2ERun is the result of one run at one concurrency.
type E2ERun struct {
	Clients int `json:"clients"`
	Orders  int `json:"orders"`
	// Elapsed runs from the first POST sent to the last order observed in a
	// terminal status.
	Elapsed time.Duration `json:"-"`
	// OrdersPerS is Orders / Elapsed.
	OrdersPerS float64 `json:"orders_per_s"`
	// PostsPerS is Orders / (first POST sent to last POST answered).
	PostsPerS float64 `json:"posts_per_s"`
	// POST latency (request sent to 201 read) and completion latency (POST
	// sent to terminal status observed), in milliseconds.
	PostP50Ms     float64 `json:"post_p50_ms"`
	PostP95Ms     float64 `json:"post_p95_ms"`
	PostP99Ms     float64 `json:"post_p99_ms"`
	CompleteP50Ms float64 `json:"complete_p50_ms"`
	CompleteP95Ms float64 `json:"complete_p95_ms"`
	CompleteP99Ms float64 `json:"complete_p99_ms"`
	// PeakRSSMiB is the server's peak resident set size during the run
	// (in-process: this process, clients included); 0 when unknown.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// Statuses counts the measured orders' terminal statuses.
	Statuses map[string]int `json:"statuses"`
}

// E2EReport is the result of the end-to-end benchmark.
type E2EReport struct {
	// Target is "in-process" or the URL.
	Target string
	// Method says how completion was detected.
	Method string
	// Params are the workload's parameters.
	Params map[string]any
	// Runs are the runs in the order made; Best is the one with the highest
	// orders/s.
	Runs []E2ERun
	Best E2ERun
}

// E2E benchmarks the whole system through its HTTP API: it starts the
// embedded runtime in this process on a fresh data directory and a loopback
// port (or targets opts.URL), and for each concurrency C places
// opts.Orders orders with C closed-loop clients (each sends its next POST
// /orders as soon as the previous one is answered) while a single watcher
// notes when each order reaches a terminal status.
//
// Completion is detected without per-order polling where possible:
//   - in-process, the watcher follows the event store's change feed (woken
//     by each commit, as the projector is) and notes the time each order's
//     terminal event (OrderCompleted, OrderFailed, OrderCancelled) is
//     committed; the run then ends when the read model also lists no
//     Pending order, so orders/s counts until every status is visible
//     through the API;
//   - with a URL, one watcher polls GET /orders/{id} for the oldest order
//     not yet seen terminal (the pipeline finishes orders roughly in
//     order), so it costs about one GET per order.
func E2E(ctx context.Context, opts E2EOptions) (E2EReport, error) {
	if opts.Orders <= 0 {
		opts.Orders = 5000
	}
	if opts.Clients <= 0 {
		opts.Clients = 16
	}
	if opts.Warmup == 0 {
		opts.Warmup = 200
	}
	opts.Warmup = max(opts.Warmup, 0)
	if opts.Dir == "" {
		opts.Dir = os.TempDir()
	}
	clients := opts.Sweep
	if len(clients) == 0 {
		clients = []int{opts.Clients}
	}
	rep := E2EReport{Target: "in-process (embedded runtime, loopback HTTP)", Method: methodFeed,
		Params: map[string]any{"orders": opts.Orders, "warmup_orders": opts.Warmup}}
	if opts.URL != "" {
		rep.Target, rep.Method = opts.URL, methodPoll
	} else {
		rep.Params["dir"] = opts.Dir
		rep.Params["workers"] = opts.Workers
	}
	for _, c := range clients {
		var run E2ERun
		var err error
		if opts.URL != "" {
			run, err = e2eRemote(ctx, opts, c)
		} else {
			run, err = e2eInProcess(ctx, opts, c)
		}
		if err != nil {
			return rep, err
		}
		rep.Runs = append(rep.Runs, run)
		if run.OrdersPerS > rep.Best.OrdersPerS {
			rep.Best = run
		}
	}
	return rep, nil
}

const (
	methodFeed = "terminal event seen by one change-feed follower, then the read model lists no Pending order"
	methodPoll = "one watcher polling GET /orders/{id} for the oldest order not yet terminal"
)

// e2eInProcess starts the runtime on a fresh data directory and runs once.
func e2eInProcess(ctx context.Context, opts E2EOptions, clients int) (E2ERun, error) {
	dir, err := os.MkdirTemp(opts.Dir, "bench-e2e-")
	if err != nil {
		return E2ERun{}, fmt.Errorf("bench: e2e: %w", err)
	}
	defer os.RemoveAll(dir)
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return E2ERun{}, fmt.Errorf("bench: e2e: %w", err)
	}
	defer logf.Close()
	// The server logs as `ledger serve` does: JSON lines, here to a file.
	logger := slog.New(slog.NewJSONHandler(logf, nil))
	addrc := make(chan string, 1)
	a, err := app.Open(ctx, app.Config{Dir: filepath.Join(dir, "ledger"), Addr: "127.0.0.1:0",
		Workers: opts.Workers, Logger: logger, Started: func(addr string) { addrc <- addr }})
	if err != nil {
		return E2ERun{}, fmt.Errorf("bench: e2e: %w", err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- a.Serve(sctx) }()
	defer func() {
		stop()
		<-served
		a.Close()
	}()
	var base string
	select {
	case addr := <-addrc:
		base = "http://" + addr
	case err := <-served:
		return E2ERun{}, fmt.Errorf("bench: e2e: %w", err)
	}
	w := newFeedWatcher(a.Feed())
	wctx, wstop := context.WithCancel(ctx)
	defer wstop()
	go w.run(wctx)
	d, err := newDriver(base, clients)
	if err != nil {
		return E2ERun{}, err
	}
	defer d.http.CloseIdleConnections()
	run, err := d.run(ctx, opts, clients, w, true)
	if err != nil {
		return run, err
	}
	if w.err != nil {
		return run, w.err
	}
	run.PeakRSSMiB = math.Round(10*peakRSSMiB(os.Getpid())) / 10
	if n := errorLines(logf.Name()); n > 0 {
		return run, fmt.Errorf("bench: e2e: the server logged %d errors (see its log)", n)
	}
	return run, nil
}

// e2eRemote runs once against opts.URL.
func e2eRemote(ctx context.Context, opts E2EOptions, clients int) (E2ERun, error) {
	base := strings.TrimSuffix(opts.URL, "/")
	d, err := newDriver(base, clients)
	if err != nil {
		return E2ERun{}, err
	}
	defer d.http.CloseIdleConnections()
	w := &pollWatcher{d: d}
	resetPeakRSS(opts.PID)
	run, err := d.run(ctx, opts, clients, w, false)
	if err != nil {
		return run, err
	}
	run.PeakRSSMiB = math.Round(10*peakRSSMiB(opts.PID)) / 10
	return run, nil
}

// watcher reports when orders reach a terminal status.
type watcher interface {
	// wait blocks until every order of ids is terminal and returns, for
	// each, when that was observed and its status; p counts them.
	wait(ctx context.Context, ids []string, p *Progress) ([]time.Time, []string, error)
}

// driver places orders through the API's client.
type driver struct {
	base string
	api  *api.Client
	http *http.Client
}

func newDriver(base string, clients int) (*driver, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 2 * clients
	t.MaxIdleConnsPerHost = 2 * clients
	hc := &http.Client{Timeout: time.Minute, Transport: t}
	c, err := api.NewClient(base, api.WithHTTPClient(hc))
	if err != nil {
		return nil, fmt.Errorf("bench: e2e: %w", err)
	}
	return &driver{base: base, api: c, http: hc}, nil
}

// run places the warm-up orders and waits for them, then places
// opts.Orders orders with clients closed-loop clients and waits for them.
func (d *driver) run(ctx context.Context, opts E2EOptions, clients int, w watcher, inProcess bool) (E2ERun, error) {
	if err := d.waitHealthy(ctx); err != nil {
		return E2ERun{}, err
	}
	if opts.Warmup > 0 {
		p := NewProgress(opts.Progress, fmt.Sprintf("warm-up, %d clients", clients), opts.Warmup)
		ids, _, _, err := d.place(ctx, opts.Warmup, clients, p)
		if err != nil {
			return E2ERun{}, err
		}
		if _, _, err := w.wait(ctx, ids, nil); err != nil {
			return E2ERun{}, err
		}
		p.Done()
	}
	if inProcess {
		if err := d.waitNoPending(ctx); err != nil {
			return E2ERun{}, err
		}
		resetPeakRSS(os.Getpid())
	}
	p := NewProgress(opts.Progress, fmt.Sprintf("place, %d clients", clients), opts.Orders)
	start := time.Now()
	ids, sent, lat, err := d.place(ctx, opts.Orders, clients, p)
	if err != nil {
		return E2ERun{}, err
	}
	posted := time.Since(start)
	p.Done()
	p = NewProgress(opts.Progress, "orders finished", len(ids))
	done, statuses, err := w.wait(ctx, ids, p)
	if err != nil {
		return E2ERun{}, err
	}
	end := slices.MaxFunc(done, func(a, b time.Time) int { return a.Compare(b) })
	if inProcess {
		// Every status must also be visible in the read model.
		if err := d.waitNoPending(ctx); err != nil {
			return E2ERun{}, err
		}
		end = time.Now()
	}
	p.Done()
	elapsed := end.Sub(start)
	complete := make([]time.Duration, len(ids))
	for i := range ids {
		complete[i] = done[i].Sub(sent[i])
	}
	run := E2ERun{
		Clients: clients, Orders: len(ids), Elapsed: elapsed,
		OrdersPerS: math.Round(10*float64(len(ids))/elapsed.Seconds()) / 10,
		PostsPerS:  math.Round(10*float64(len(ids))/posted.Seconds()) / 10,
		Statuses:   map[string]int{},
	}
	run.PostP50Ms, run.PostP95Ms, run.PostP99Ms = percentiles(lat)
	run.CompleteP50Ms, run.CompleteP95Ms, run.CompleteP99Ms = percentiles(complete)
	for _, s := range statuses {
		run.Statuses[s]++
	}
	return run, nil
}

// place places n orders with clients closed-loop clients and returns their
// IDs, when each POST was sent and how long each took to be answered.
func (d *driver) place(ctx context.Context, n, clients int, p *Progress) (ids []string, sent []time.Time, lat []time.Duration, err error) {
	ids, sent, lat = make([]string, n), make([]time.Time, n), make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || cctx.Err() != nil {
					return
				}
				req := api.PlaceRequest{CustomerName: fmt.Sprintf("Bench Customer %d", i%1000), ProductName: "Mechanical keyboard, UK layout", Quantity: 1 + i%5}
				t0 := time.Now()
				id, err := d.post(cctx, req)
				if err != nil {
					errs <- err
					cancel()
					return
				}
				ids[i], sent[i], lat[i] = id, t0, time.Since(t0)
				p.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, nil, nil, err
	}
	return ids, sent, lat, ctx.Err()
}

func (d *driver) post(ctx context.Context, req api.PlaceRequest) (string, error) {
	o, err := d.api.Place(ctx, req)
	if err != nil {
		return "", fmt.Errorf("bench: e2e: %w", err)
	}
	if o.OrderID == "" {
		return "", fmt.Errorf("bench: e2e: POST /orders: an answer without an order ID")
	}
	return o.OrderID, nil
}

func (d *driver) waitHealthy(ctx context.Context) error {
	var last error
	for range 100 {
		if last = d.api.Health(ctx); last == nil {
			return nil
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("bench: e2e: %s/healthz never answered 200: %w", d.base, last)
}

// waitNoPending waits until GET /orders?status=Pending lists nothing.
func (d *driver) waitNoPending(ctx context.Context) error {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		page, err := d.api.List(ctx, projections.ListQuery{Status: order.StatusPending, Limit: 1})
		if err != nil {
			return fmt.Errorf("bench: e2e: %w", err)
		}
		if len(page.Items) == 0 {
			return nil
		}
		if err := sleepCtx(ctx, 2*time.Millisecond); err != nil {
			return err
		}
	}
	return errors.New("bench: e2e: orders still Pending in the read model after 5 minutes")
}

// terminalStatus maps terminal event types to the status they set.
var terminalStatus = map[string]string{
	order.TypeCompleted: string(order.StatusCompleted),
	order.TypeFailed:    string(order.StatusFailed),
	order.TypeCancelled: string(order.StatusCancelled),
}

// feedWatcher follows a change feed and notes when each order's terminal
// event is committed (observed).
type feedWatcher struct {
	feed eventstore.Feed

	mu     sync.Mutex
	done   map[string]terminal
	notify chan struct{} // closed and replaced after each batch
	err    error
}

type terminal struct {
	at     time.Time
	status string
}

func newFeedWatcher(feed eventstore.Feed) *feedWatcher {
	return &feedWatcher{feed: feed, done: map[string]terminal{}, notify: make(chan struct{})}
}

func (w *feedWatcher) run(ctx context.Context) {
	var pos uint64
	if head, err := w.feed.Head(ctx); err == nil {
		pos = head
	}
	for ctx.Err() == nil {
		if err := w.feed.WaitFeed(ctx, pos); err != nil {
			w.fail(ctx, err)
			return
		}
		for {
			envs, err := w.feed.ReadFeed(ctx, pos, 1000)
			if err != nil {
				w.fail(ctx, err)
				return
			}
			if len(envs) == 0 {
				break
			}
			now := time.Now()
			w.mu.Lock()
			for _, e := range envs {
				if st, ok := terminalStatus[e.Type]; ok {
					w.done[e.StreamID] = terminal{at: now, status: st}
				}
			}
			close(w.notify)
			w.notify = make(chan struct{})
			w.mu.Unlock()
			pos = envs[len(envs)-1].Position
		}
	}
}

func (w *feedWatcher) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	w.mu.Lock()
	w.err = fmt.Errorf("bench: e2e: follow the feed: %w", err)
	close(w.notify)
	w.notify = make(chan struct{})
	w.mu.Unlock()
}

func (w *feedWatcher) wait(ctx context.Context, ids []string, p *Progress) ([]time.Time, []string, error) {
	at, statuses := make([]time.Time, len(ids)), make([]string, len(ids))
	timeout := time.NewTimer(5 * time.Minute)
	defer timeout.Stop()
	i := 0
	for {
		w.mu.Lock()
		from := i
		for ; i < len(ids); i++ {
			t, ok := w.done[ids[i]]
			if !ok {
				break
			}
			at[i], statuses[i] = t.at, t.status
			delete(w.done, ids[i])
		}
		notify, err := w.notify, w.err
		w.mu.Unlock()
		p.Add(i - from)
		if err != nil {
			return nil, nil, err
		}
		if i == len(ids) {
			return at, statuses, nil
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-timeout.C:
			return nil, nil, fmt.Errorf("bench: e2e: %d of %d orders not terminal after 5 minutes", len(ids)-i, len(ids))
		}
	}
}

// pollWatcher polls GET /orders/{id} for the oldest order not yet terminal.
type pollWatcher struct{ d *driver }

func (w *pollWatcher) wait(ctx context.Context, ids []string, p *Progress) ([]time.Time, []string, error) {
	at, statuses := make([]time.Time, len(ids)), make([]string, len(ids))
	deadline := time.Now().Add(5 * time.Minute)
	for i := 0; i < len(ids); {
		v, err := w.d.api.Get(ctx, ids[i], api.GetQuery{})
		if err == nil && v.Status != order.StatusPending {
			at[i], statuses[i] = time.Now(), string(v.Status)
			i++
			p.Add(1)
			continue
		}
		if err != nil && api.StatusOf(err) != http.StatusNotFound {
			// Not yet projected is a 404; anything else ends the run.
			return nil, nil, fmt.Errorf("bench: e2e: %w", err)
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("bench: e2e: %d of %d orders not terminal after 5 minutes", len(ids)-i, len(ids))
		}
		if err := sleepCtx(ctx, time.Millisecond); err != nil {
			return nil, nil, err
		}
	}
	return at, statuses, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// percentiles returns the 50th, 95th and 99th percentiles of ds in
// milliseconds (nearest rank).
func percentiles(ds []time.Duration) (p50, p95, p99 float64) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return float64(s[min(max(i, 0), len(s)-1)].Microseconds()) / 1000
	}
	return at(0.50), at(0.95), at(0.99)
}

// errorLines counts the ERROR lines of a JSON log file.
func errorLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte(`"level":"ERROR"`))
}

// WriteTable prints one row per run, the best marked, and the parameters.
func (r *E2EReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "end to end: %s\n", r.Target)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "clients\torders\torders/s\tPOST/s\tPOST p50 ms\tp95\tp99\tcomplete p50 ms\tp95\tp99\tpeak RSS MiB\t\n")
	for _, run := range r.Runs {
		mark := ""
		if len(r.Runs) > 1 && run.Clients == r.Best.Clients {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s%d\t%d\t%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", mark, run.Clients, run.Orders,
			thousands(run.OrdersPerS), thousands(run.PostsPerS), run.PostP50Ms, run.PostP95Ms, run.PostP99Ms,
			run.CompleteP50Ms, run.CompleteP95Ms, run.CompleteP99Ms, run.PeakRSSMiB)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Runs) > 1 {
		fmt.Fprintf(w, "* best rate at %d clients\n", r.Best.Clients)
	}
	fmt.Fprintf(w, "statuses: %v\n", r.Best.Statuses)
	fmt.Fprintf(w, "completion: %s\n", r.Method)
	for _, k := range slices.Sorted(maps.Keys(r.Params)) {
		if _, err := fmt.Fprintf(w, "%s: %v\n", k, r.Params[k]); err != nil {
			return err
		}
	}
	return nil
}

// JSON returns the best run's figures, the parameters and every run under
// "runs".
func (r *E2EReport) JSON() map[string]any {
	out := map[string]any{}
	for k, v := range r.Params {
		out[k] = v
	}
	b := r.Best
	round := func(v float64) float64 { return math.Round(v*100) / 100 }
	out["clients"] = b.Clients
	out["orders_per_s"] = math.Round(b.OrdersPerS)
	out["posts_per_s"] = math.Round(b.PostsPerS)
	out["post_p50_ms"] = round(b.PostP50Ms)
	out["post_p95_ms"] = round(b.PostP95Ms)
	out["post_p99_ms"] = round(b.PostP99Ms)
	out["complete_p50_ms"] = round(b.CompleteP50Ms)
	out["complete_p95_ms"] = round(b.CompleteP95Ms)
	out["complete_p99_ms"] = round(b.CompleteP99Ms)
	out["peak_rss_mib"] = round(b.PeakRSSMiB)
	out["statuses"] = b.Statuses
	out["target"] = r.Target
	out["runs"] = r.Runs
	return out
}

// WriteJSON prints the JSON object on one line.
func (r *E2EReport) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r.JSON())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
