package processing_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/processing"
	"github.com/orderledger/orderledger/services/sim"
)

var ids = domain.NewULIDSource(nil)

func setup(t *testing.T, cfg sim.Config) (*processing.Processor, *pebblestore.Store, *sim.Simulator) {
	t.Helper()
	store, err := pebblestore.Open(t.TempDir(), pebblestore.WithPebbleOptions(func(po *pebble.Options) {
		po.MemTableSize, po.CacheSize = 4<<20, 4<<20
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := processing.New(processing.Config{Store: store, Payment: s, Inventory: s, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return p, store, s
}

// placed stores an OrderPlaced and returns the message the publisher would send.
func placed(t *testing.T, store eventstore.Store, qty int) (string, messaging.Message) {
	t.Helper()
	now := time.Now().UTC()
	id := ids(now)
	env, err := orders.NewCodec().Encode(order.Placed{CustomerName: "Ada", ProductName: "widget", Quantity: qty}, ids(now), now, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	env.StreamID = id
	res, err := store.Append(context.Background(), id, 0, env)
	if err != nil {
		t.Fatal(err)
	}
	env.Version = res.Version
	body, _ := json.Marshal(env)
	return id, messaging.Message{ID: "m-" + id, Body: body, ReceiveCount: 1, Attributes: map[string]string{"event_type": env.Type, "order_id": id}}
}

func types(t *testing.T, store eventstore.Store, id string) []string {
	t.Helper()
	envs, err := store.Load(context.Background(), id, 1)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range envs {
		out = append(out, e.Type)
	}
	return out
}

func TestRedeliveryRepeatsNothing(t *testing.T) {
	t.Parallel()
	p, store, s := setup(t, sim.Config{})
	id, msg := placed(t, store, 1)
	for i := range 3 {
		msg.ReceiveCount = i + 1
		if err := p.Handle(context.Background(), msg); err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
	}
	want := []string{order.TypePlaced, order.TypePaymentSucceeded, order.TypeInventoryReserved, order.TypeCompleted}
	if got := types(t, store, id); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if st := s.Stats(); st.Charges != 1 || st.Reservations != 1 || st.Duplicates != 0 {
		t.Fatalf("service calls %+v: a redelivery of a finished order must not call the services", st)
	}
}

func TestConcurrentDeliveriesNeverDoubleAppend(t *testing.T) {
	t.Parallel()
	p, store, s := setup(t, sim.Config{InventoryStock: 1})
	id, msg := placed(t, store, 2) // out of stock: charge, fail reservation, refund, fail
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- p.Handle(context.Background(), msg)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Handle: %v", err)
		}
	}
	want := []string{order.TypePlaced, order.TypePaymentSucceeded, order.TypeInventoryReservationFailed, order.TypePaymentRefunded, order.TypeFailed}
	if got := types(t, store, id); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v exactly once each", got, want)
	}
	if st := s.Stats(); st.Charges != 1 || st.Refunds != 1 {
		t.Fatalf("service calls %+v: want one charge and one refund whatever the concurrency", st)
	}
}

func TestPoisonMessages(t *testing.T) {
	t.Parallel()
	p, store, _ := setup(t, sim.Config{})
	_, good := placed(t, store, 1)
	var env eventstore.Event
	json.Unmarshal(good.Body, &env)
	unknown := env
	unknown.StreamID = ids(time.Now())
	completed := env
	completed.Type = order.TypeCompleted
	badID := env
	badID.StreamID = "not-a-ulid"
	for name, body := range map[string]any{"undecodable": "{", "unknown order": unknown, "unexpected type": completed, "bad id": badID} {
		b, _ := json.Marshal(body)
		if s, ok := body.(string); ok {
			b = []byte(s)
		}
		err := p.Handle(context.Background(), messaging.Message{ID: name, Body: b, ReceiveCount: 1})
		if err == nil || !processing.IsPermanent(err) {
			t.Errorf("%s: Handle = %v, want a permanent (poison) error", name, err)
		}
	}
}

func TestTransientErrorIsRetried(t *testing.T) {
	t.Parallel()
	p, store, _ := setup(t, sim.Config{PaymentFailFirst: 1})
	id, msg := placed(t, store, 1)
	err := p.Handle(context.Background(), msg)
	var te *processing.TransientError
	if !errors.As(err, &te) || processing.IsPermanent(err) || te.Step != "payment" {
		t.Fatalf("first attempt = %v, want a transient payment error", err)
	}
	if got := types(t, store, id); len(got) != 1 {
		t.Fatalf("a transient failure recorded %v", got)
	}
	msg.ReceiveCount = 2
	if err := p.Handle(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if got := types(t, store, id); got[len(got)-1] != order.TypeCompleted {
		t.Fatalf("events %v, want completed on the second attempt", got)
	}
}

func TestNewRejectsMissingDependencies(t *testing.T) {
	t.Parallel()
	if _, err := processing.New(processing.Config{}); err == nil {
		t.Fatal("New without dependencies succeeded")
	}
}
