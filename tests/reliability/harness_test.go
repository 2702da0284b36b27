package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/app"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/messaging/webhook"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/pebbleviews"
	"github.com/orderledger/orderledger/services"
	"github.com/orderledger/orderledger/services/sim"
)

// waitLimit bounds every wait for asynchronous work. It guards against a
// hung test; it is not a performance assertion.
const waitLimit = 60 * time.Second

// stackConfig configures an in-process runtime.
type stackConfig struct {
	// Pipeline starts the publisher, processors and notifiers; without it
	// orders stay Pending (for tests of the command side alone).
	Pipeline  bool
	Payment   services.Payment // nil: a default simulator
	Inventory services.Inventory
	Webhooks  []string
	Workers   int
}

// stack is the embedded runtime assembled in-process, as package app wires
// it, with its parts reachable: the event store, the read model, the
// projector subscription, the pipeline and the API on an httptest server.
type stack struct {
	dir   string
	store *pebblestore.Store
	views *pebbleviews.Store
	sub   *projections.Subscription
	pipe  *app.Pipeline
	codec *orders.Codec
	srv   *httptest.Server
	URL   string
	// api is a client of the stack's API.
	api  *api.Client
	stop func()
}

func newStack(t *testing.T, dir string, cfg stackConfig) *stack {
	t.Helper()
	s := &stack{dir: dir, codec: orders.NewCodec()}
	var err error
	if s.store, err = pebblestore.Open(filepath.Join(dir, "events")); err != nil {
		t.Fatal(err)
	}
	if s.views, err = pebbleviews.Open(filepath.Join(dir, "views")); err != nil {
		s.store.Close()
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	proj, err := projections.NewProjector(s.views, s.store, s.codec)
	if err != nil {
		t.Fatal(err)
	}
	if s.sub, err = projections.NewSubscription(s.store, s.views, proj, "", log); err != nil {
		t.Fatal(err)
	}
	if cfg.Pipeline {
		if cfg.Payment == nil || cfg.Inventory == nil {
			simulator, err := sim.New(sim.Config{})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Payment == nil {
				cfg.Payment = simulator
			}
			if cfg.Inventory == nil {
				cfg.Inventory = simulator
			}
		}
		s.pipe, err = app.StartPipeline(context.Background(), app.PipelineConfig{
			Store: s.store, Feed: s.store, Checkpoints: s.store,
			QueueDir: filepath.Join(dir, "queue"),
			Payment:  cfg.Payment, Inventory: cfg.Inventory,
			Workers: cfg.Workers, RetryBackoff: 10 * time.Millisecond,
			Webhooks: cfg.Webhooks, WebhookClient: &http.Client{Timeout: 5 * time.Second},
			DisableLog: true, Logger: log,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = s.sub.Run(ctx)
	}()
	s.srv = httptest.NewServer(api.NewRouter(api.Deps{
		Store: s.store, Views: s.views, Codec: s.codec, Logger: log,
	}))
	s.URL = s.srv.URL
	s.api = newClient(t, s.URL)
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			s.srv.Close()
			if s.pipe != nil {
				sctx, scancel := context.WithTimeout(context.Background(), waitLimit)
				if err := s.pipe.Stop(sctx); err != nil {
					t.Errorf("pipeline stop: %v", err)
				}
				scancel()
			}
			cancel()
			wg.Wait()
			_ = s.views.Close()
			_ = s.store.Close()
		})
	}
	t.Cleanup(s.stop)
	return s
}

// head returns the change feed's head.
func (s *stack) head(t *testing.T) uint64 {
	t.Helper()
	h, err := s.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// waitProjected waits until the read model has seen the whole feed.
func (s *stack) waitProjected(t *testing.T) {
	t.Helper()
	waitFor(t, "the projector to catch up", func() (bool, string) {
		lag, err := s.sub.Lag(context.Background())
		return err == nil && lag == 0, fmt.Sprintf("lag %d, err %v", lag, err)
	})
}

// waitFor polls cond until it holds or waitLimit passes.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	if ok, state := poll(cond); !ok {
		t.Fatalf("gave up waiting for %s: %s", what, state)
	}
}

// poll calls cond until it holds (true) or waitLimit passes (false, with
// cond's last description of the state).
func poll(cond func() (bool, string)) (bool, string) {
	deadline := time.Now().Add(waitLimit)
	for {
		ok, state := cond()
		if ok || time.Now().After(deadline) {
			return ok, state
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newClient returns an API client of base. Its calls are bounded by a
// timeout, not by a context, so that a call in flight when a test kills
// the server fails the way a real client's would.
func newClient(t *testing.T, base string) *api.Client {
	t.Helper()
	c, err := api.NewClient(base, api.WithHTTPClient(&http.Client{Timeout: 30 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// placeRequest is the body of an order of qty for customer.
func placeRequest(customer string, qty int) api.PlaceRequest {
	return api.PlaceRequest{CustomerName: customer, ProductName: "widget", Quantity: qty}
}

// place places an order and returns its ID; anything but 201 fails t.
func place(t *testing.T, c *api.Client, customer string) string {
	t.Helper()
	o, err := c.Place(context.Background(), placeRequest(customer, 1))
	if err != nil {
		t.Fatalf("place: %v", err)
	}
	return orderIDOf(t, o)
}

func orderIDOf(t *testing.T, o api.Order) string {
	t.Helper()
	if !domain.ValidULID(o.OrderID) {
		t.Fatalf("not an order: %+v", o)
	}
	return o.OrderID
}

// statusOf is the HTTP status of a call that returned err: success (the
// call's 2xx) for none, 0 for a call that got no answer.
func statusOf(err error, success int) int {
	if err == nil {
		return success
	}
	return api.StatusOf(err)
}

// isProblem reports whether err is an answer with an RFC 9457 body.
func isProblem(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.Header.Get("Content-Type") == "application/problem+json" && json.Valid(re.Body)
}

// response is an HTTP answer, read whole, for the contract tests that send
// what the client never would (malformed bodies, raw headers).
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body)) }

// isProblem reports whether r has an RFC 9457 body.
func (r response) isProblem() bool {
	return r.header.Get("Content-Type") == "application/problem+json" && json.Valid(r.body)
}

// rawDo sends a request by hand; body nil sends none. Every well-formed
// call goes through api.Client instead.
func rawDo(t *testing.T, method, url string, body []byte, header map[string]string) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// logReport is what checkLog found in the event log.
type logReport struct {
	streams  map[string][]eventstore.Event
	terminal map[string]eventstore.Event // each stream's terminal event
	head     uint64
}

// checkLog reads the whole change feed and checks the log's invariants:
// positions 1..head without gaps, every stream's versions 1..n without gaps
// or duplicates, Load agreeing with the feed, every event decodable, event
// IDs unique, and at most one terminal event per stream, as the last.
func checkLog(t *testing.T, store *pebblestore.Store, codec *orders.Codec) logReport {
	t.Helper()
	ctx := context.Background()
	rep := logReport{streams: map[string][]eventstore.Event{}, terminal: map[string]eventstore.Event{}}
	var err error
	if rep.head, err = store.Head(ctx); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	var pos uint64
	for {
		page, err := store.ReadFeed(ctx, pos, pebblestore.MaxFeedPage)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if e.Position != pos+1 {
				t.Fatalf("feed: position %d follows %d", e.Position, pos)
			}
			pos = e.Position
			if ids[e.EventID] {
				t.Errorf("event ID %s appears twice", e.EventID)
			}
			ids[e.EventID] = true
			prev := rep.streams[e.StreamID]
			if want := int64(len(prev)) + 1; e.Version != want {
				t.Errorf("stream %s: version %d where %d was due (gap or duplicate)", e.StreamID, e.Version, want)
			}
			if _, err := codec.Decode(e); err != nil {
				t.Errorf("stream %s version %d: undecodable: %v", e.StreamID, e.Version, err)
			}
			if t0, ok := rep.terminal[e.StreamID]; ok && !afterEnd[e.Type] {
				// Only money moves after the end: a late charge and its
				// refund, a void, and their failed tries.
				t.Errorf("stream %s: %s at version %d after the terminal %s", e.StreamID, e.Type, e.Version, t0.Type)
			}
			if order.IsTerminal(e.Type) {
				rep.terminal[e.StreamID] = e
			}
			rep.streams[e.StreamID] = append(prev, e)
		}
	}
	if pos != rep.head {
		t.Errorf("feed ends at %d, head is %d", pos, rep.head)
	}
	for id, evs := range rep.streams {
		loaded, err := store.Load(ctx, id, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(loaded) != len(evs) {
			t.Errorf("stream %s: Load returns %d events, the feed %d", id, len(loaded), len(evs))
		}
		if evs[0].Type != order.TypePlaced {
			t.Errorf("stream %s starts with %s", id, evs[0].Type)
		}
		if _, ok := rep.terminal[id]; ok {
			// A void may still be owed where no processor ran (the API's
			// tests); a recorded charge on an order that did not complete
			// must be refunded.
			decoded, _ := codec.DecodeAll(evs)
			if o := order.Fold(id, decoded...); o.Status != order.StatusCompleted && o.Paid && !o.Refunded {
				t.Errorf("stream %s ended charged without a refund: %v", id, typesOf(evs))
			}
		}
	}
	return rep
}

// afterEnd are the event types an order may record after its terminal event.
var afterEnd = map[string]bool{
	order.TypePaymentSucceeded: true, order.TypePaymentRefunded: true,
	order.TypePaymentVoided: true, order.TypeAttemptFailed: true,
}

// checkViews checks that the read model holds, for every stream, exactly the
// view folded from the log, and that its counts agree.
func checkViews(t *testing.T, views *pebbleviews.Store, codec *orders.Codec, rep logReport) {
	t.Helper()
	ctx := context.Background()
	want := map[order.Status]int64{}
	for id, evs := range rep.streams {
		folded, err := projections.Fold(codec, evs)
		if err != nil {
			t.Fatal(err)
		}
		want[folded.Status]++
		got, err := views.Get(ctx, id)
		if err != nil {
			t.Errorf("view of %s: %v", id, err)
			continue
		}
		if !reflect.DeepEqual(got, folded) {
			t.Errorf("view of %s differs from the log:\n read model %+v\n log        %+v", id, got, folded)
		}
	}
	counts, err := views.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range order.Statuses {
		if counts[st] != want[st] {
			t.Errorf("read model counts %d %s orders, the log %d", counts[st], st, want[st])
		}
	}
}

// snapshotViews returns every order's view.
func snapshotViews(t *testing.T, views *pebbleviews.Store, ids []string) map[string]projections.View {
	t.Helper()
	out := map[string]projections.View{}
	for _, id := range ids {
		v, err := views.Get(context.Background(), id)
		if err != nil {
			t.Fatalf("view of %s: %v", id, err)
		}
		out[id] = v
	}
	return out
}

// receiver is a webhook endpoint that records deliveries and can be down.
type receiver struct {
	srv  *httptest.Server
	down atomic.Bool
	// refused counts deliveries answered 503 while down.
	refused atomic.Int64

	mu sync.Mutex
	// got maps an order ID to the set of event IDs delivered for it.
	got        map[string]map[string]bool
	deliveries int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{got: map[string]map[string]bool{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rc.down.Load() {
			rc.refused.Add(1)
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var env eventstore.Event
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &env); err != nil || env.EventID == "" {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if h := r.Header.Get(webhook.HeaderEventID); h != env.EventID {
			http.Error(w, "event ID header differs from the body", http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		if rc.got[env.StreamID] == nil {
			rc.got[env.StreamID] = map[string]bool{}
		}
		rc.got[env.StreamID][env.EventID] = true
		rc.deliveries++
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// missing returns the terminal events not yet delivered.
func (rc *receiver) missing(terminal map[string]eventstore.Event) []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for id, e := range terminal {
		if !rc.got[id][e.EventID] {
			out = append(out, id+"/"+e.Type)
		}
	}
	return out
}

// checkNotified checks that every delivery is a terminal event of the log
// and that every terminal event was delivered (de-duplicated by event ID).
func (rc *receiver) checkNotified(t *testing.T, rep logReport) {
	t.Helper()
	if m := rc.missing(rep.terminal); len(m) > 0 {
		t.Errorf("%d terminal events never notified, e.g. %v", len(m), m[:min(5, len(m))])
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for id, evs := range rc.got {
		for eid := range evs {
			if rep.terminal[id].EventID != eid {
				t.Errorf("notified event %s of order %s is not its terminal event", eid, id)
			}
		}
	}
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// settled returns the terminal event of the stream envs and whether the
// order has ended and owes nothing (order.Order.Settled): a charge that
// landed on a cancelled or failed order must be refunded first.
func settled(codec *orders.Codec, envs []eventstore.Event) (eventstore.Event, bool) {
	evs, err := codec.DecodeAll(envs)
	if err != nil {
		return eventstore.Event{}, false
	}
	var end eventstore.Event
	for _, e := range envs {
		if order.IsTerminal(e.Type) {
			end = e
			break
		}
	}
	return end, order.Fold("", evs...).Settled()
}

func typesOf(envs []eventstore.Event) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.Type
	}
	return out
}
