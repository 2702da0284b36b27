package processing_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
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
	"github.com/orderledger/orderledger/services"
	"github.com/orderledger/orderledger/services/sim"
)

var ids = domain.NewULIDSource(nil)

func setup(t testing.TB, cfg sim.Config) (*processing.Processor, *pebblestore.Store, *sim.Simulator) {
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
func placed(t testing.TB, store eventstore.Store, qty int) (string, messaging.Message) {
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
	if got := types(t, store, id); !slices.Equal(got, []string{order.TypePlaced, order.TypeAttemptFailed}) {
		t.Fatalf("a transient failure recorded %v, want the failed try only", got)
	}
	if err := p.Handle(context.Background(), msg); err != nil { // a redelivery; the count is the history's
		t.Fatal(err)
	}
	if got := types(t, store, id); got[len(got)-1] != order.TypeCompleted {
		t.Fatalf("events %v, want completed on the second attempt", got)
	}
	h := history(t, store, id)
	var tried order.AttemptFailed
	var paid order.PaymentSucceeded
	json.Unmarshal(h.Events[1].Data, &tried)
	json.Unmarshal(h.Events[2].Data, &paid)
	if tried.Step != "payment" || tried.Attempt != 1 || !strings.Contains(tried.Reason, "unavailable") || paid.Attempts != 2 {
		t.Fatalf("history %s then %s: want payment try 1 failed, then paid on try 2", h.Events[1].Data, h.Events[2].Data)
	}
}

// TestAttemptsArePerStep: a payment that fails twice and a reservation that
// fails once read as such in the history, and a reservation that starts on
// the message's last delivery still gets its three tries (made there, with
// backoff): OrderFailed's attempts are its step's.
func TestAttemptsArePerStep(t *testing.T) {
	t.Parallel()
	p, store, _ := setup(t, sim.Config{PaymentFailFirst: 2, InventoryFailFirst: 1})
	id, msg := placed(t, store, 1)
	for n := 1; n <= 2; n++ {
		msg.ReceiveCount = n
		if err := p.Handle(context.Background(), msg); err == nil {
			t.Fatalf("delivery %d succeeded, want the payment's failure", n)
		}
	}
	msg.ReceiveCount = 3
	if err := p.Handle(context.Background(), msg); err != nil {
		t.Fatalf("last delivery: %v", err)
	}
	want := []string{order.TypePlaced, order.TypeAttemptFailed, order.TypeAttemptFailed, order.TypePaymentSucceeded,
		order.TypeAttemptFailed, order.TypeInventoryReserved, order.TypeCompleted}
	if got := types(t, store, id); !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	h := history(t, store, id)
	var pay order.PaymentSucceeded
	var res order.InventoryReserved
	var tried order.AttemptFailed
	json.Unmarshal(h.Events[3].Data, &pay)
	json.Unmarshal(h.Events[4].Data, &tried)
	json.Unmarshal(h.Events[5].Data, &res)
	if pay.Attempts != 3 || tried.Step != "inventory" || tried.Attempt != 1 || res.Attempts != 2 {
		t.Fatalf("payment %+v, failed try %+v, reservation %+v: want 3 payment tries, then inventory try 1 failed and try 2 reserved", pay, tried, res)
	}

	// An inventory service that never answers: three tries of the
	// reservation, all on the last delivery, then the refund and the end.
	p, store, s := setup(t, sim.Config{InventoryFailFirst: 1 << 20})
	id, msg = placed(t, store, 1)
	msg.ReceiveCount = 3
	if err := p.Handle(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	o := state(t, store, id)
	if o.Status != order.StatusFailed || o.FailedStep != "inventory" || o.FailedAttempts != processing.MaxAttempts || !o.Refunded {
		t.Fatalf("order %+v, want failed at inventory after %d tries, refunded", o, processing.MaxAttempts)
	}
	if held := s.Held()[id]; held != 0 {
		t.Fatalf("the simulator holds %d for the failed order, want 0", held)
	}
}

// TestPaymentUnreachableIsVoided: a payment service that never answers may
// still have charged. After the last try the order fails and its payment
// request is voided: nothing is held, and a charge that had landed unseen is
// found by the void, recorded on the failed order and refunded.
func TestPaymentUnreachableIsVoided(t *testing.T) {
	t.Parallel()
	p, store, s := setup(t, sim.Config{PaymentFailFirst: 1 << 20})
	id, msg := placed(t, store, 1)
	msg.ReceiveCount = 3
	if err := p.Handle(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	want := []string{order.TypePlaced, order.TypeAttemptFailed, order.TypeAttemptFailed, order.TypeAttemptFailed,
		order.TypePaymentFailed, order.TypeFailed, order.TypePaymentVoided}
	if got := types(t, store, id); !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	if o := state(t, store, id); !o.Settled() || o.FailedAttempts != processing.MaxAttempts {
		t.Fatalf("order %+v, want settled, failed after %d tries", o, processing.MaxAttempts)
	}
	if st := s.Stats(); st.Voids != 1 || st.Charges != 0 {
		t.Fatalf("simulator %+v, want one void and no charge", st)
	}

	// The charge landed but its answer was lost every time.
	s, err := sim.New(sim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := processing.New(processing.Config{Store: store, Payment: &lostAnswers{Simulator: s}, Inventory: s, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	id, msg = placed(t, store, 1)
	msg.ReceiveCount = 3
	if err := p2.Handle(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if o := state(t, store, id); o.Status != order.StatusFailed || !o.Paid || !o.Refunded || !o.Settled() {
		t.Fatalf("order %+v, want failed, with the charge the void found recorded and refunded", o)
	}
	if held := s.Held()[id]; held != 0 {
		t.Fatalf("held %d, want 0", held)
	}
}

// lostAnswers charges at the simulator but loses every answer, as a
// network that drops responses (or a processor that crashes) would.
type lostAnswers struct{ *sim.Simulator }

func (l *lostAnswers) Charge(ctx context.Context, req services.ChargeRequest) (services.Charge, error) {
	if _, err := l.Simulator.Charge(ctx, req); err != nil {
		return services.Charge{}, err
	}
	return services.Charge{}, errors.New("connection reset after the request was sent")
}

func TestNewRejectsMissingDependencies(t *testing.T) {
	t.Parallel()
	if _, err := processing.New(processing.Config{}); err == nil {
		t.Fatal("New without dependencies succeeded")
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// state folds order id as stored.
func state(t *testing.T, store eventstore.Store, id string) order.Order {
	t.Helper()
	svc, err := orders.New(orders.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	st, err := svc.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st.Order
}
