// Package console tests the operator console in a real headless Chromium
// (Debian's chromium, driven with chromedp) against the real `ledger serve`
// binary: orders placed through the API appear in the table without a
// reload, an order's timeline shows its events, Cancel sends If-Match and
// shows the 200 (and a 412 for a stale ETag), a dead letter made on purpose
// is redriven from the page, a rebuild is watched to 100%, and axe-core finds
// no serious or critical accessibility violation on any page, at 1280 and
// 390 px wide.
//
// Without chromium the test skips, saying why; under CI=true it fails
// instead (scripts/test.sh installs chromium). LEDGER_UPDATE_SCREENSHOTS=1
// rewrites docs/console-orders.png and docs/console-timeline.png from the
// run.
package console

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/internal/ledgertest"
	"github.com/orderledger/orderledger/projections"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ledgertest.Cleanup()
	os.Exit(code)
}

// axeSource is axe-core 4.10.3 (MPL-2.0, testdata/axe-core.LICENSE).
//
//go:embed testdata/axe.min.js
var axeSource string

// stepLimit bounds every wait in the page: a guard against a hung test,
// not a performance assertion.
const stepLimit = 60 * time.Second

const apiToken = "console-test-token-7f3a9c"

// browser starts a headless Chromium for the test, or skips (fails under CI)
// when there is none.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is not installed, and CI must run the console test: %v (scripts/test.sh installs Debian's chromium)", err)
		}
		t.Skipf("chromium is not installed (apt-get install --no-install-recommends chromium; scripts/test.sh does it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true))
	if os.Geteuid() == 0 {
		// Chromium refuses to start its sandbox as root (CI runs as root).
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// freeAddr returns a loopback address with a free port, so that restarts of
// the server keep one origin (and the tab's sessionStorage).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// page wraps the tab with failing helpers.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepLimit)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\npage text:\n%s", what, err, p.bodyText())
	}
}

func (p page) bodyText() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	return s
}

// eval evaluates a JavaScript expression and decodes its value into T.
func eval[T any](p page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript predicate until it is true.
func (p page) waitFor(what, predicate string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepLimit)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](predicate, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		p.t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, predicate, err, p.bodyText())
	}
}

func (p page) text(sel string) string {
	p.t.Helper()
	return eval[string](p, fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ''`, sel))
}

// go navigates within the single page (a hash route: no reload).
func (p page) route(hash string) {
	p.t.Helper()
	eval[any](p, fmt.Sprintf(`location.hash = %q`, hash))
}

// axeCheck runs axe-core on the page and fails on serious or critical
// violations.
func (p page) axeCheck(where string) {
	p.t.Helper()
	if !eval[bool](p, `typeof window.axe !== 'undefined'`) {
		eval[any](p, axeSource+"\n;true")
	}
	type violation struct {
		ID     string   `json:"id"`
		Impact string   `json:"impact"`
		Help   string   `json:"help"`
		Nodes  []string `json:"nodes"`
	}
	raw := eval[string](p, `axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify(r.violations.map(v => ({
		id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))))`)
	var vs []violation
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		p.t.Fatalf("axe %s: %v: %s", where, err, raw)
	}
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			p.t.Errorf("axe on %s: %s violation %s: %s at %v", where, v.Impact, v.ID, v.Help, v.Nodes)
		} else {
			p.t.Logf("axe on %s: %s (minor) %s: %s at %v", where, v.Impact, v.ID, v.Help, v.Nodes)
		}
	}
}

// narrow checks the page at 390 px wide: axe again, and no horizontal
// scrolling of the page itself (wide tables scroll in their own region).
func (p page) narrow(where string) {
	p.t.Helper()
	p.do("390 px viewport", chromedp.EmulateViewport(390, 844))
	defer p.do("1280 px viewport", chromedp.EmulateViewport(1280, 900))
	// The layout settles after the resize (and any reload in flight).
	over := `document.documentElement.scrollWidth - document.documentElement.clientWidth`
	for deadline := time.Now().Add(3 * time.Second); eval[float64](p, over) > 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if w := eval[float64](p, over); w > 0 {
		wide := eval[[]string](p, `[...document.querySelectorAll('body *')].filter(e => !(e.parentElement && e.parentElement.closest('.table-wrap')) && (e.getBoundingClientRect().right > document.documentElement.clientWidth + 1 ||
			(e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX === 'visible' && e.clientWidth > 0))).slice(0, 8).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right))`)
		p.t.Errorf("%s at 390 px: the page scrolls sideways by %v px (widest: %v)", where, w, wide)
	}
	p.axeCheck(where + " at 390 px")
}

func (p page) screenshot(name string) {
	p.t.Helper()
	if os.Getenv("LEDGER_UPDATE_SCREENSHOTS") != "1" {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, stepLimit)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("body")))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	_, file, _, _ := runtime.Caller(0)
	out := filepath.Join(filepath.Dir(file), "..", "..", "docs", name)
	if err := os.WriteFile(out, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("wrote %s", out)
}

// requests records the URL and Authorization header of every request the
// page sends.
type requests struct {
	mu   sync.Mutex
	urls []string
	auth map[string]int // path -> requests with the bearer token
}

func (r *requests) listen(t *testing.T, ctx context.Context) {
	r.auth = map[string]int{}
	if err := chromedp.Listen(ctx, func(ev any) {
		e, ok := ev.(*network.EventRequestWillBeSent)
		if !ok {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.urls = append(r.urls, e.Request.URL+"#"+e.Request.URLFragment)
		for k, v := range e.Request.Headers {
			if strings.EqualFold(k, "Authorization") && fmt.Sprint(v) == "Bearer "+apiToken {
				path := e.Request.URL
				if i := strings.Index(path, "?"); i >= 0 {
					path = path[:i]
				}
				r.auth[path]++
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
}

func (r *requests) snapshot() ([]string, map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	auth := make(map[string]int, len(r.auth))
	for k, v := range r.auth {
		auth[k] = v
	}
	return append([]string(nil), r.urls...), auth
}

// waitAPI polls cond through the API until it holds.
func waitAPI(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(ledgertest.WaitLimit)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: last error %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestConsole(t *testing.T) {
	ctx := browser(t)
	p := page{t: t, ctx: ctx}
	var reqs requests
	reqs.listen(t, ctx)

	dir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	common := []string{"--addr", addr, "--api-token", apiToken, "--shutdown-timeout", "2s", "--retry-backoff", "200ms"}
	cli, err := api.NewClient(base, api.WithToken(apiToken))
	if err != nil {
		t.Fatal(err)
	}
	bg := context.Background()

	// Phase 1: one unit of stock and every refund failing, so that the
	// second order is dead-lettered on purpose (the README's recipe).
	srv := ledgertest.Serve(t, dir, append(common, "--sim-inventory-stock", "1", "--sim-refund-error-rate", "1")...)

	// The console asks for the token once.
	p.do("open the console", chromedp.Navigate(base+"/console/"))
	p.waitFor("the token form", `!document.getElementById('token-panel').hidden`)
	p.axeCheck("the token form")
	p.do("enter the token",
		chromedp.SendKeys(chromedp.CSS("#token-input"), apiToken),
		chromedp.KeyEvent("\r"))
	p.waitFor("the orders table, empty", `document.querySelector('#orders-table tbody') && document.querySelector('#orders-table tbody').textContent.includes('No orders')`)
	p.waitFor("the live feed", `document.getElementById('live-mode').dataset.mode === 'live'`)

	// An order placed through the API appears without a reload, and moves
	// to Completed in place.
	first, err := cli.Place(bg, api.PlaceRequest{CustomerName: "Ada Lovelace", ProductName: "Brass gear", Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	p.waitFor("the first order's row", fmt.Sprintf(`!!document.querySelector('tr[data-order-id=%q]')`, first.OrderID))
	p.waitFor("the first order Completed in the table", fmt.Sprintf(`(document.querySelector('tr[data-order-id=%q] [data-status]') || {}).dataset?.status === 'Completed'`, first.OrderID))
	if n := eval[int](p, `performance.getEntriesByType('navigation').length`); n != 1 {
		t.Errorf("the page navigated %d times; want 1 (no reload)", n)
	}

	// Open it with the keyboard and read its four events.
	p.do("open the order with the keyboard",
		chromedp.Focus(chromedp.CSS(fmt.Sprintf(`tr[data-order-id=%q] a`, first.OrderID))),
		chromedp.KeyEvent("\r"))
	p.waitFor("the timeline's four events", `document.querySelectorAll('#timeline li.event').length === 4`)
	types := eval[[]string](p, `[...document.querySelectorAll('#timeline li.event')].map(li => li.dataset.type)`)
	if want := []string{"OrderPlaced", "PaymentSucceeded", "InventoryReserved", "OrderCompleted"}; fmt.Sprint(types) != fmt.Sprint(want) {
		t.Errorf("timeline types = %v; want %v", types, want)
	}
	h, err := cli.History(bg, first.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	shown := p.text(`#timeline li.event[data-version="1"] dl.ids`)
	if md := h.Events[0].Metadata; !strings.Contains(shown, md.RequestID) || !strings.Contains(shown, md.CorrelationID) {
		t.Errorf("version 1's IDs on the timeline = %q; want request %s and correlation %s", shown, md.RequestID, md.CorrelationID)
	}
	if bars := eval[int](p, `document.querySelectorAll('#timeline .gap-bar').length`); bars != 3 {
		t.Errorf("%d gap bars between four events; want 3", bars)
	}
	if s := p.text(`[data-field="status"]`); s != "Completed" {
		t.Errorf("current status shown %q; want Completed", s)
	}
	// As of version 1 it was Pending.
	p.do("as of version 1",
		chromedp.SetValue(chromedp.CSS("#asof-version"), "1"),
		chromedp.Click(chromedp.CSS("#asof-show")))
	p.waitFor("the view as of version 1", `document.getElementById('view-title').textContent === 'As of version 1'`)
	if s := p.text(`[data-field="status"]`); s != "Pending" {
		t.Errorf("status as of version 1 shown %q; want Pending", s)
	}
	p.do("back to latest", chromedp.Click(chromedp.CSS("#asof-latest")))
	p.waitFor("the current view", `document.getElementById('view-title').textContent.startsWith('Current view (version 4')`)
	p.axeCheck("an order")
	p.narrow("an order")

	// The second order finds no stock and its refund keeps failing: a dead
	// letter.
	second, err := cli.Place(bg, api.PlaceRequest{CustomerName: "Charles Babbage", ProductName: "Brass gear", Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	waitAPI(t, "the second order dead-lettered", func() (bool, error) {
		l, err := cli.DeadLetters(bg, 0)
		return err == nil && l.Count == 1 && l.Items[0].OrderID == second.OrderID, err
	})

	// Phase 2: refunds work again; the same origin keeps the token.
	if err := srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("stop phase 1 server: %v", err)
	}
	srv = ledgertest.Serve(t, dir, common...)
	p.do("reload the console", chromedp.Navigate(base+"/console/#/dlq"))
	p.waitFor("the dead letter listed", fmt.Sprintf(`[...document.querySelectorAll('#dlq-table tbody tr')].some(tr => tr.textContent.includes(%q))`, second.OrderID))
	if !eval[bool](p, `document.getElementById('token-panel').hidden`) {
		t.Error("the console asked for the token again after a reload")
	}
	p.axeCheck("dead letters")
	p.do("inspect it", chromedp.Click(chromedp.CSS(`#dlq-table tbody tr button`)))
	p.waitFor("the dead letter's details", fmt.Sprintf(`!document.getElementById('dlq-detail').hidden && document.getElementById('dlq-detail').textContent.includes(%q)`, second.OrderID))
	if !eval[bool](p, `document.getElementById('dlq-redrive').disabled`) {
		t.Error("Redrive now is enabled before a dry run")
	}
	p.do("dry run", chromedp.Click(chromedp.CSS("#dlq-dry-run")))
	p.waitFor("the dry run's report", `document.getElementById('dlq-report').textContent.includes('Dry run: nothing was changed')`)
	if l, err := cli.DeadLetters(bg, 0); err != nil || l.Count != 1 {
		t.Fatalf("after the dry run the queue holds %+v, %v; want the one dead letter still", l, err)
	}
	p.do("redrive", chromedp.Click(chromedp.CSS("#dlq-redrive")))
	p.waitFor("the redrive's report", `document.getElementById('dlq-report').textContent.includes('Redrive done') && document.querySelector('#dlq-report [data-redriven]').dataset.redriven === '1'`)
	p.waitFor("the emptied list", `document.querySelector('#dlq-table tbody').textContent.includes('The dead-letter queue is empty')`)
	waitAPI(t, "the redriven order refunded and Failed", func() (bool, error) {
		o, err := cli.Get(bg, second.OrderID, api.GetQuery{Consistent: true})
		return err == nil && o.Status == order.StatusFailed, err
	})
	p.narrow("dead letters")

	// A rebuild, watched to 100%.
	p.route("#/projections")
	p.waitFor("the projections page", `!!document.getElementById('rebuild-start')`)
	p.do("start a rebuild", chromedp.Click(chromedp.CSS("#rebuild-start")))
	p.waitFor("the rebuild at 100%", `document.getElementById('rebuild-label').dataset.pct === '100' && document.getElementById('rebuild-label').textContent.startsWith('Finished')`)
	if v := eval[float64](p, `document.getElementById('rebuild-progress').value`); v != 100 {
		t.Errorf("progress bar at %v; want 100", v)
	}
	if st, err := cli.RebuildStatus(bg); err != nil || st.Running || st.Error != "" || st.Done != st.Total || st.Total == 0 {
		t.Errorf("rebuild status %+v, %v; want finished with every event done", st, err)
	}
	p.waitFor("the lag table", `[...document.querySelectorAll('#lag-table tbody tr')].some(tr => tr.textContent.includes('projector'))`)
	p.axeCheck("projections")
	p.narrow("projections")

	// Health: the readiness checks and the rates.
	p.route("#/health")
	p.waitFor("the readiness checks", `[...document.querySelectorAll('#ready-table tbody tr')].length >= 3`)
	p.waitFor("the rates", `[...document.querySelectorAll('#rates-table tbody tr')].some(tr => tr.textContent.includes('HTTP requests') && tr.textContent.includes('/s'))`)
	p.axeCheck("health")
	p.narrow("health")

	// More orders for the table, then the screenshots and the table's checks.
	for _, o := range []api.PlaceRequest{
		{CustomerName: "Grace Hopper", ProductName: "Compiler manual", Quantity: 2},
		{CustomerName: "Alan Turing", ProductName: "Paper tape", Quantity: 5},
		{CustomerName: "Ada Lovelace", ProductName: "Punched cards", Quantity: 3},
	} {
		if _, err := cli.Place(bg, o); err != nil {
			t.Fatal(err)
		}
	}
	p.route("#/orders")
	defer func() {
		if t.Failed() {
			page, err := cli.List(bg, projections.ListQuery{})
			for _, v := range page.Items {
				t.Logf("read model: %s %s v%d", v.OrderID, v.Status, v.Version)
			}
			r, rerr := cli.Ready(bg)
			t.Logf("list err %v; ready %+v %v", err, r, rerr)
			t.Logf("orders table: %s", eval[string](p, `JSON.stringify(Object.assign({}, (document.getElementById('orders-table') || {}).dataset))`))
			t.Logf("mode: %s", p.text("#live-mode"))
		}
	}()
	p.waitFor("five orders, settled", `document.querySelectorAll('#orders-table tbody tr[data-order-id]').length === 5 &&
		![...document.querySelectorAll('#orders-table [data-status]')].some(td => td.dataset.status === 'Pending')`)
	// Newest first.
	ids := eval[[]string](p, `[...document.querySelectorAll('#orders-table tbody tr[data-order-id]')].map(tr => tr.dataset.orderId)`)
	if ids[len(ids)-1] != first.OrderID {
		t.Errorf("last row is %s; want the first order %s (newest first)", ids[len(ids)-1], first.OrderID)
	}
	p.screenshot("console-orders.png")
	// Paged with the API's cursors, two to a page.
	p.route("#/orders?limit=2")
	pageIDs := func() string {
		return eval[string](p, `[...document.querySelectorAll('#orders-table tbody tr[data-order-id]')].map(tr => tr.dataset.orderId).join(',')`)
	}
	p.waitFor("the first page of two", `document.querySelectorAll('#orders-table tbody tr[data-order-id]').length === 2 && !document.getElementById('next-page').disabled`)
	if got, want := pageIDs(), strings.Join(ids[:2], ","); got != want {
		t.Errorf("page 1 = %s; want %s", got, want)
	}
	for pg, want := range [][]string{ids[2:4], ids[4:]} {
		p.do("next page", chromedp.Click(chromedp.CSS("#next-page")))
		p.waitFor(fmt.Sprintf("page %d", pg+2), fmt.Sprintf(`[...document.querySelectorAll('#orders-table tbody tr[data-order-id]')].map(tr => tr.dataset.orderId).join(',') === %q`, strings.Join(want, ",")))
	}
	if !eval[bool](p, `document.getElementById('next-page').disabled`) {
		t.Error("Next page is enabled on the last page")
	}
	p.do("previous page", chromedp.Click(chromedp.CSS("#prev-page")))
	p.waitFor("page 2 again", fmt.Sprintf(`[...document.querySelectorAll('#orders-table tbody tr[data-order-id]')].map(tr => tr.dataset.orderId).join(',') === %q`, strings.Join(ids[2:4], ",")))
	p.route("#/orders")
	p.waitFor("all five orders again", `document.querySelectorAll('#orders-table tbody tr[data-order-id]').length === 5`)
	p.axeCheck("orders")
	p.narrow("orders")
	// The filters.
	p.do("filter by status Failed",
		chromedp.SetValue(chromedp.CSS("#f-status"), "Failed"),
		chromedp.Click(chromedp.CSS(".filters button[type=submit]")))
	p.waitFor("only the failed order", fmt.Sprintf(`(() => { const rows = document.querySelectorAll('#orders-table tbody tr[data-order-id]');
		return rows.length === 1 && rows[0].dataset.orderId === %q; })()`, second.OrderID))
	p.do("filter by customer",
		chromedp.SetValue(chromedp.CSS("#f-status"), ""),
		chromedp.SetValue(chromedp.CSS("#f-customer"), "Ada Lovelace"),
		chromedp.Click(chromedp.CSS(".filters button[type=submit]")))
	p.waitFor("Ada's two orders", `(() => { const rows = document.querySelectorAll('#orders-table tbody tr[data-order-id]');
		return rows.length === 2 && [...rows].every(r => r.children[1].textContent === 'Ada Lovelace'); })()`)

	p.route("#/orders/" + first.OrderID)
	p.waitFor("the first order's timeline", `document.querySelectorAll('#timeline li.event').length === 4`)
	if os.Getenv("LEDGER_UPDATE_SCREENSHOTS") == "1" {
		p.do("720 px tall", chromedp.EmulateViewport(1280, 720))
		p.screenshot("console-timeline.png")
		p.do("900 px tall", chromedp.EmulateViewport(1280, 900))
	}

	// Phase 3: every service call takes an hour, so placed orders stay
	// Pending with a still history (no event until the call returns).
	if err := srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("stop phase 2 server: %v", err)
	}
	srv = ledgertest.Serve(t, dir, append(common, "--sim-latency", "1h")...)
	stale, err := cli.Place(bg, api.PlaceRequest{CustomerName: "Edsger Dijkstra", ProductName: "Semaphore", Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	pending, err := cli.Place(bg, api.PlaceRequest{CustomerName: "Barbara Liskov", ProductName: "Substitution kit", Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}

	// A stale ETag: the page loaded version 1, the order moved since.
	p.do("open the order to go stale", chromedp.Navigate(base+"/console/#/orders/"+stale.OrderID))
	p.waitFor("its Pending view at version 1", `document.getElementById('view-title') && document.getElementById('view-title').textContent.startsWith('Current view (version 1') && !document.getElementById('cancel-button').disabled`)
	if _, err := cli.Cancel(bg, stale.OrderID, "cancelled elsewhere", api.WithIfMatch(stale.ETag)); err != nil {
		t.Fatalf("cancel through the API: %v", err)
	}
	// The page announces the change and keeps the view (and ETag) it shows.
	p.waitFor("the notice that the order moved", `!document.getElementById('order-moved').hidden && document.getElementById('order-moved').dataset.version === '2'`)
	p.do("cancel with the stale ETag", chromedp.Click(chromedp.CSS("#cancel-button")))
	p.waitFor("the 412", `document.getElementById('cancel-result').dataset.status === '412'`)
	if s := p.text("#cancel-result"); !strings.Contains(s, "412 Precondition Failed") {
		t.Errorf("stale cancel shown as %q; want 412 Precondition Failed", s)
	}
	p.waitFor("the reloaded view after the 412", `document.getElementById('view-title').textContent.startsWith('Current view (version 2') && document.getElementById('order-moved').hidden`)

	// The pending order, cancelled from the page.
	p.route("#/orders/" + pending.OrderID)
	p.waitFor("the pending order's view", `document.getElementById('view-title') && document.getElementById('view-title').textContent.startsWith('Current view (version 1') && !document.getElementById('cancel-button').disabled`)
	p.do("cancel it", chromedp.Click(chromedp.CSS("#cancel-button")))
	p.waitFor("the 200", `document.getElementById('cancel-result').dataset.status === '200'`)
	if s := p.text("#cancel-result"); !strings.Contains(s, "200 OK: the order is Cancelled (version 2)") {
		t.Errorf("cancel shown as %q; want 200 OK ... Cancelled (version 2)", s)
	}
	p.waitFor("OrderCancelled on the timeline", `[...document.querySelectorAll('#timeline li.event')].some(li => li.dataset.type === 'OrderCancelled')`)
	o, err := cli.Get(bg, pending.OrderID, api.GetQuery{Consistent: true})
	if err != nil || o.Status != order.StatusCancelled {
		t.Errorf("after the page's cancel the order is %+v, %v; want Cancelled", o.View, err)
	}
	h, err = cli.History(bg, pending.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	if last := h.Events[len(h.Events)-1]; last.Type != "OrderCancelled" || !strings.Contains(string(last.Data), "cancelled from the console") {
		t.Errorf("last event %s %s; want OrderCancelled with the page's reason", last.Type, last.Data)
	}

	// The token never left the Authorization header.
	urls, auth := reqs.snapshot()
	for _, u := range urls {
		if strings.Contains(u, apiToken) {
			t.Errorf("the token is in a request URL: %s", u)
		}
	}
	for _, path := range []string{"/orders", "/feed", "/admin/dlq", "/admin/projections/rebuild", "/metrics"} {
		if auth[base+path] == 0 {
			t.Errorf("no request to %s carried the bearer token (saw %v)", path, auth)
		}
	}
	if logs := srv.Logs.String(); strings.Contains(logs, apiToken) {
		t.Error("the token is in the server's log")
	}
	if ss := eval[string](p, `JSON.stringify(Object.keys(sessionStorage))`); ss != `["orderledger.token"]` {
		t.Errorf("sessionStorage keys %s; want only the token", ss)
	}
	if ls := eval[int](p, `localStorage.length`); ls != 0 {
		t.Errorf("localStorage holds %d keys; the token must not outlive the tab", ls)
	}
}
