package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/app"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/messaging/webhook"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/services"
	"github.com/orderledger/orderledger/services/servicehttp"
	"github.com/orderledger/orderledger/services/sim"
)

const backoff = 10 * time.Millisecond

var ids = domain.NewULIDSource(nil)

type harness struct {
	t     *testing.T
	store *pebblestore.Store
	sim   *sim.Simulator
	p     *app.Pipeline
	codec *orders.Codec
}

type options struct {
	sim      sim.Config
	overHTTP bool
	webhooks []string
}

func start(t *testing.T, o options) *harness {
	t.Helper()
	dir := t.TempDir()
	store, err := pebblestore.Open(filepath.Join(dir, "events"), pebblestore.WithPebbleOptions(func(po *pebble.Options) {
		po.MemTableSize, po.CacheSize = 4<<20, 4<<20
	}))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(o.sim)
	if err != nil {
		t.Fatal(err)
	}
	var pay services.Payment = s
	var inv services.Inventory = s
	if o.overHTTP {
		srv := httptest.NewServer(servicehttp.NewHandler(s, s))
		t.Cleanup(srv.Close)
		c, err := servicehttp.NewClient(srv.URL, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		pay, inv = c, c
	}
	p, err := app.StartPipeline(context.Background(), app.PipelineConfig{
		Store: store, Feed: store, Checkpoints: store, QueueDir: filepath.Join(dir, "queue"),
		Payment: pay, Inventory: inv, Workers: 2, RetryBackoff: backoff, Webhooks: o.webhooks,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
		store.Close()
	})
	return &harness{t: t, store: store, sim: s, p: p, codec: orders.NewCodec()}
}

// place appends an OrderPlaced event as the API does and returns the order ID.
func (h *harness) place(product string, qty int) string {
	h.t.Helper()
	now := time.Now().UTC()
	id := ids(now)
	env, err := h.codec.Encode(order.Placed{CustomerName: "Ada", ProductName: product, Quantity: qty}, ids(now), now, eventstore.Metadata{})
	if err != nil {
		h.t.Fatal(err)
	}
	env.StreamID = id
	if _, err := h.store.Append(context.Background(), id, 0, env); err != nil {
		h.t.Fatal(err)
	}
	return id
}

// waitFor polls until cond holds; the bound only stops a broken test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) load(id string) ([]eventstore.Event, order.Order) {
	h.t.Helper()
	envs, err := h.store.Load(context.Background(), id, 1)
	if err != nil {
		h.t.Fatal(err)
	}
	evs, err := h.codec.DecodeAll(envs)
	if err != nil {
		h.t.Fatal(err)
	}
	return envs, order.Fold(id, evs...)
}

// settle waits until order id is terminal and the runtime is idle, and
// returns its event types and state.
func (h *harness) settle(id string) ([]string, order.Order) {
	h.t.Helper()
	waitFor(h.t, "order "+id+" to end", func() bool { _, o := h.load(id); return o.Status.Terminal() })
	h.idle()
	envs, o := h.load(id)
	var types []string
	for _, e := range envs {
		types = append(types, e.Type)
	}
	return types, o
}

func (h *harness) idle() app.Health {
	h.t.Helper()
	var hl app.Health
	waitFor(h.t, "the runtime to be idle", func() bool {
		var err error
		hl, err = h.p.Health(context.Background())
		if err != nil {
			h.t.Fatal(err)
		}
		return hl.Idle()
	})
	return hl
}

func TestSaga(t *testing.T) {
	t.Parallel()
	placed, paid, payFailed, reserved, resFailed, refunded, completed, failed, tried, voided :=
		order.TypePlaced, order.TypePaymentSucceeded, order.TypePaymentFailed, order.TypeInventoryReserved,
		order.TypeInventoryReservationFailed, order.TypePaymentRefunded, order.TypeCompleted, order.TypeFailed,
		order.TypeAttemptFailed, order.TypePaymentVoided
	tests := []struct {
		name     string
		sim      sim.Config
		overHTTP bool
		qty      int
		want     []string
		status   order.Status
		step     string
		attempts int
		stats    sim.Stats
	}{
		{name: "success", want: []string{placed, paid, reserved, completed}, status: order.StatusCompleted, qty: 2,
			stats: sim.Stats{Charges: 1, Reservations: 1}},
		{name: "success over HTTP", overHTTP: true, want: []string{placed, paid, reserved, completed}, status: order.StatusCompleted, qty: 2,
			stats: sim.Stats{Charges: 1, Reservations: 1}},
		{name: "payment declined", sim: sim.Config{PaymentDeclineRate: 1}, qty: 1,
			want: []string{placed, payFailed, failed}, status: order.StatusFailed, step: "payment", attempts: 1,
			stats: sim.Stats{Declines: 1}},
		{name: "out of stock after payment", sim: sim.Config{InventoryStock: 1}, qty: 2,
			want: []string{placed, paid, resFailed, refunded, failed}, status: order.StatusFailed, step: "inventory", attempts: 1,
			stats: sim.Stats{Charges: 1, Refunds: 1, OutOfStock: 1}},
		{name: "out of stock over HTTP", overHTTP: true, sim: sim.Config{InventoryStock: 1}, qty: 2,
			want: []string{placed, paid, resFailed, refunded, failed}, status: order.StatusFailed, step: "inventory", attempts: 1,
			stats: sim.Stats{Charges: 1, Refunds: 1, OutOfStock: 1}},
		{name: "transient twice then success", sim: sim.Config{PaymentFailFirst: 2}, qty: 1,
			want: []string{placed, tried, tried, paid, reserved, completed}, status: order.StatusCompleted,
			stats: sim.Stats{Charges: 1, Reservations: 1, Errors: 2}},
		{name: "transient three times then failed and voided", sim: sim.Config{PaymentFailFirst: 3}, qty: 1,
			want: []string{placed, tried, tried, tried, payFailed, failed, voided}, status: order.StatusFailed, step: "payment", attempts: 3,
			stats: sim.Stats{Errors: 3}},
		{name: "inventory transient three times: refund then failed", sim: sim.Config{InventoryFailFirst: 3}, qty: 1,
			want: []string{placed, paid, tried, tried, tried, resFailed, refunded, failed}, status: order.StatusFailed, step: "inventory", attempts: 3,
			stats: sim.Stats{Charges: 1, Refunds: 1, Errors: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, options{sim: tc.sim, overHTTP: tc.overHTTP})
			id := h.place("widget", tc.qty)
			types, o := h.settle(id)
			if !slices.Equal(types, tc.want) {
				t.Fatalf("events = %v, want %v", types, tc.want)
			}
			if o.Status != tc.status || o.FailedStep != tc.step || o.FailedAttempts != tc.attempts {
				t.Fatalf("status %s step %q attempts %d, want %s %q %d", o.Status, o.FailedStep, o.FailedAttempts, tc.status, tc.step, tc.attempts)
			}
			if got := h.sim.Stats(); got.Charges != tc.stats.Charges || got.Refunds != tc.stats.Refunds ||
				got.Reservations != tc.stats.Reservations || got.Errors != tc.stats.Errors ||
				got.Declines != tc.stats.Declines || got.OutOfStock != tc.stats.OutOfStock {
				t.Fatalf("service calls %+v, want %+v (duplicates aside)", got, tc.stats)
			}
			hl := h.idle()
			if hl.DeadLetters != 0 {
				t.Fatalf("%d dead letters, want none (the message is removed)", hl.DeadLetters)
			}
		})
	}
}

func TestPoisonMessagesAreDeadLetteredWhileOthersFlow(t *testing.T) {
	t.Parallel()
	h := start(t, options{})
	br := h.p.Broker()
	ctx := context.Background()
	unknown, _ := json.Marshal(eventstore.Event{EventID: ids(time.Now()), StreamID: ids(time.Now()), Type: order.TypePlaced, SchemaVersion: 1})
	for _, body := range [][]byte{[]byte("not json"), unknown, []byte(`{"type":"OrderShipped","stream_id":"x"}`)} {
		if _, err := br.Processing.Send(ctx, body, map[string]string{"event_type": "OrderPlaced"}); err != nil {
			t.Fatal(err)
		}
	}
	var orders []string
	for range 5 {
		orders = append(orders, h.place("gadget", 1))
	}
	for _, id := range orders {
		if types, o := h.settle(id); o.Status != order.StatusCompleted {
			t.Fatalf("order %s: %v, want completed while poison messages wait", id, types)
		}
	}
	waitFor(t, "3 dead letters", func() bool {
		s, err := br.DLQ.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s.Visible == 3
	})
	dead, err := br.DLQ.Peek(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dead {
		if d.DeadLetteredFrom != app.ProcessingQueue || d.DeadReceiveCount != 3 {
			t.Errorf("dead letter %s from %q after %d receives, want %s after 3", d.ID, d.DeadLetteredFrom, d.DeadReceiveCount, app.ProcessingQueue)
		}
	}
}

// flaky is a webhook receiver that is down (503) for its first `down`
// requests and records every event ID it accepts.
type flaky struct {
	mu       sync.Mutex
	requests int
	down     int
	got      map[string]int // event ID -> deliveries accepted
	bad      []string
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if f.requests <= f.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var env eventstore.Event
	if err := json.NewDecoder(r.Body).Decode(&env); err != nil || env.EventID != r.Header.Get(webhook.HeaderEventID) ||
		!order.IsTerminal(env.Type) || r.Header.Get(webhook.HeaderOrderID) != env.StreamID {
		f.bad = append(f.bad, fmt.Sprintf("%v %+v %v", err, env, r.Header))
	}
	f.got[env.EventID]++
	w.WriteHeader(http.StatusNoContent)
}

func (f *flaky) unique() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

func TestWebhookReceiverDownForAWhile(t *testing.T) {
	t.Parallel()
	recv := &flaky{down: 12, got: map[string]int{}}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	h := start(t, options{sim: sim.Config{InventoryStock: 4}, webhooks: []string{srv.URL + "/hook"}})
	var orders []string
	for range 6 {
		orders = append(orders, h.place("limited", 1)) // 4 complete, 2 fail after refund
	}
	want := map[string]bool{}
	for _, id := range orders {
		h.settle(id)
		envs, _ := h.load(id)
		want[envs[len(envs)-1].EventID] = true
	}
	waitFor(t, "every notification", func() bool { return recv.unique() >= len(want) })
	h.idle()
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.bad) > 0 {
		t.Fatalf("malformed deliveries: %v", recv.bad)
	}
	if recv.requests <= recv.down {
		t.Fatalf("receiver saw %d requests, fewer than its %d failures", recv.requests, recv.down)
	}
	for id := range want {
		if recv.got[id] < 1 {
			t.Errorf("notification %s never delivered", id)
		}
	}
	if len(recv.got) != len(want) {
		t.Fatalf("receiver de-duplicated to %d notifications, want exactly %d (one per order)", len(recv.got), len(want))
	}
}

func TestConcurrentOrders(t *testing.T) {
	t.Parallel()
	h := start(t, options{sim: sim.Config{PaymentErrorRate: 0.3, PaymentDeclineRate: 0.2, Seed: 7}})
	var orders []string
	for range 20 {
		orders = append(orders, h.place("bulk", 1))
	}
	for _, id := range orders {
		types, o := h.settle(id)
		counts := map[string]int{}
		for _, ty := range types {
			counts[ty]++
		}
		for ty, n := range counts {
			if n > 1 && ty != order.TypeAttemptFailed { // failed tries are counted, each recorded once (checked by the domain)
				t.Errorf("order %s: %s appended %d times: %v", id, ty, n, types)
			}
		}
		if o.Status == order.StatusFailed && o.FailedStep == "payment" && (o.FailedAttempts < 1 || o.FailedAttempts > 3) {
			t.Errorf("order %s failed with %d attempts", id, o.FailedAttempts)
		}
	}
	if st := h.sim.Stats(); st.Charges+st.Declines > len(orders) {
		t.Fatalf("%d charges and %d declines for %d orders: a retry charged twice", st.Charges, st.Declines, len(orders))
	}
}

func TestStartRejectsMissingDependencies(t *testing.T) {
	t.Parallel()
	if _, err := app.StartPipeline(context.Background(), app.PipelineConfig{}); err == nil {
		t.Fatal("StartPipeline with nothing succeeded")
	}
}

// BenchmarkOrders measures orders taken from OrderPlaced to a terminal state
// (and their notifications logged) through the whole embedded runtime.
func BenchmarkOrders(b *testing.B) {
	dir := b.TempDir()
	store, err := pebblestore.Open(filepath.Join(dir, "events"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	s, _ := sim.New(sim.Config{})
	p, err := app.StartPipeline(context.Background(), app.PipelineConfig{
		Store: store, Feed: store, Checkpoints: store, QueueDir: filepath.Join(dir, "queue"),
		Payment: s, Inventory: s, Workers: 8, RetryBackoff: backoff,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Stop(context.Background())
	codec := orders.NewCodec()
	b.ResetTimer()
	for range b.N {
		now := time.Now().UTC()
		id := ids(now)
		env, _ := codec.Encode(order.Placed{CustomerName: "Ada", ProductName: "bench", Quantity: 1}, ids(now), now, eventstore.Metadata{})
		env.StreamID = id
		if _, err := store.Append(context.Background(), id, 0, env); err != nil {
			b.Fatal(err)
		}
	}
	for {
		h, err := p.Health(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if h.Idle() {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}
