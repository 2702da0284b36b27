package orders_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/orders"
)

const id = "01J0000000000000000000000A"

var (
	placed = order.Placed{CustomerName: "Ada", ProductName: "Tea", Quantity: 2}
	paid   = order.PaymentSucceeded{PaymentID: "pay-1", Amount: 1999}
)

// fixture is a Service over a real pebble store in t.TempDir(), with a
// fixed clock, so a scenario can state its given events and read back
// exactly what the use case appended.
type fixture struct {
	t     *testing.T
	store *pebblestore.Store
	svc   *orders.Service
	codec *orders.Codec
	at    time.Time
}

func newFixture(t *testing.T, wrap func(eventstore.Store) eventstore.Store) *fixture {
	t.Helper()
	store, err := pebblestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{t: t, store: store, codec: orders.NewCodec(), at: time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)}
	var s eventstore.Store = store
	if wrap != nil {
		s = wrap(store)
	}
	f.svc, err = orders.New(orders.Config{Store: s, Clock: func() time.Time { return f.at }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// given appends events to the order as one earlier writer would.
func (f *fixture) given(meta eventstore.Metadata, events ...order.Event) {
	f.t.Helper()
	if len(events) == 0 {
		return
	}
	head, err := f.store.Load(context.Background(), id, 1)
	if err != nil {
		f.t.Fatal(err)
	}
	envs := make([]eventstore.Event, len(events))
	for i, e := range events {
		env, err := f.codec.Encode(e, domain.NewULIDSource(nil)(f.at), f.at, meta)
		if err != nil {
			f.t.Fatal(err)
		}
		envs[i] = env
	}
	if _, err := f.store.Append(context.Background(), id, int64(len(head)), envs...); err != nil {
		f.t.Fatal(err)
	}
}

// stored returns every event of the order, decoded.
func (f *fixture) stored() ([]eventstore.Event, []order.Event) {
	f.t.Helper()
	envs, err := f.store.Load(context.Background(), id, 1)
	if err != nil {
		f.t.Fatal(err)
	}
	evs, err := f.codec.DecodeAll(envs)
	if err != nil {
		f.t.Fatal(err)
	}
	return envs, evs
}

func decide(events ...order.Event) orders.Decider {
	return func(order.Order) ([]order.Event, error) { return events, nil }
}

func TestUpdateScenarios(t *testing.T) {
	t.Parallel()
	errRefused := errors.New("refused")
	flow := eventstore.Metadata{CorrelationID: "flow-1", RequestID: "req-0"}
	cases := []struct {
		name   string
		given  []order.Event
		when   orders.Decider
		then   []order.Event // the whole stream afterwards
		err    error
		status order.Status
	}{
		{name: "cancel a placed order", given: []order.Event{placed},
			when: func(o order.Order) ([]order.Event, error) {
				return order.Decide(o, order.Cancel{Reason: " changed my mind "})
			},
			then: []order.Event{placed, order.Cancelled{Reason: "changed my mind"}}, status: order.StatusCancelled},
		{name: "a decision of no events appends nothing", given: []order.Event{placed, order.Cancelled{}},
			when: func(o order.Order) ([]order.Event, error) { return order.Decide(o, order.Cancel{}) },
			then: []order.Event{placed, order.Cancelled{}}, status: order.StatusCancelled},
		{name: "a refusal is returned as it is and appends nothing", given: []order.Event{placed, paid},
			when: func(o order.Order) ([]order.Event, error) { return order.Decide(o, order.Cancel{}) },
			then: []order.Event{placed, paid}, err: order.ErrCannotCancel, status: order.StatusPending},
		{name: "the decider's own error", given: []order.Event{placed},
			when: func(order.Order) ([]order.Event, error) { return nil, errRefused },
			then: []order.Event{placed}, err: errRefused, status: order.StatusPending},
		{name: "an unknown order reaches the decider as the zero order",
			when: func(o order.Order) ([]order.Event, error) { return order.Decide(o, order.Cancel{}) },
			err:  order.ErrNotFound},
		{name: "several events in one append", given: []order.Event{placed},
			when: decide(paid, order.InventoryReserved{ReservationID: "r-1"}, order.Completed{}),
			then: []order.Event{placed, paid, order.InventoryReserved{ReservationID: "r-1"}, order.Completed{}}, status: order.StatusCompleted},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			f.given(flow, c.given...)
			st, err := f.svc.Update(context.Background(), id, eventstore.Metadata{RequestID: "req-1", CorrelationID: "req-1"}, c.when)
			if !errors.Is(err, c.err) {
				t.Fatalf("Update error = %v, want %v", err, c.err)
			}
			envs, evs := f.stored()
			if len(evs) == 0 {
				evs = nil
			}
			if !reflect.DeepEqual(evs, c.then) {
				t.Fatalf("stream after Update =\n  %#v\nwant\n  %#v", evs, c.then)
			}
			if err != nil {
				return
			}
			if st.Order.Status != c.status || st.Order.Version != int64(len(c.then)) {
				t.Errorf("Update state = %s v%d, want %s v%d", st.Order.Status, st.Order.Version, c.status, len(c.then))
			}
			if st.Appended != len(c.then)-len(c.given) {
				t.Errorf("Appended = %d, want %d", st.Appended, len(c.then)-len(c.given))
			}
			// The returned envelopes are the stored ones, StreamID and Version set.
			if len(st.Events) != len(envs) {
				t.Fatalf("Update returned %d envelopes, the store holds %d", len(st.Events), len(envs))
			}
			for i, env := range st.Events {
				if env.StreamID != id || env.Version != int64(i+1) || env.EventID != envs[i].EventID {
					t.Errorf("envelope %d = %s v%d %s, stored %s v%d %s", i, env.StreamID, env.Version, env.EventID, envs[i].StreamID, envs[i].Version, envs[i].EventID)
				}
			}
			// New events join the order's flow, caused by the request.
			for _, env := range envs[len(c.given):] {
				if env.Metadata.CorrelationID != "flow-1" || env.Metadata.RequestID != "req-1" {
					t.Errorf("appended event metadata = %+v, want correlation flow-1 and request req-1", env.Metadata)
				}
			}
		})
	}
}

// racing is a store on which another writer appends an event to the order
// just before each of the first n appends of the Service.
type racing struct {
	eventstore.Store
	f      *fixture
	n      int32
	writes atomic.Int32
}

func (r *racing) Append(ctx context.Context, streamID string, expected int64, events ...eventstore.Event) (eventstore.Result, error) {
	if r.writes.Add(1) <= r.n {
		r.f.given(eventstore.Metadata{}, order.InventoryReserved{ReservationID: "other-writer"})
	}
	return r.Store.Append(ctx, streamID, expected, events...)
}

func TestUpdateDecidesAgainAfterLosingARace(t *testing.T) {
	t.Parallel()
	var r *racing
	f := newFixture(t, func(s eventstore.Store) eventstore.Store { r = &racing{Store: s, n: 2}; return r })
	r.f = f
	f.given(eventstore.Metadata{}, placed, paid)
	var seen []int64
	st, err := f.svc.Update(context.Background(), id, eventstore.Metadata{}, func(o order.Order) ([]order.Event, error) {
		seen = append(seen, o.Version)
		return []order.Event{order.Completed{}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Decided on v2, lost to the other writer; on v3, lost again; on v4, won.
	if !reflect.DeepEqual(seen, []int64{2, 3, 4}) {
		t.Fatalf("decider saw versions %v, want [2 3 4]", seen)
	}
	_, evs := f.stored()
	if len(evs) != 5 || evs[4] != (order.Completed{}) || st.Order.Version != 5 || st.Order.Status != order.StatusCompleted {
		t.Fatalf("stream = %#v (state v%d %s); want the decision appended once, last", evs, st.Order.Version, st.Order.Status)
	}
}

func TestUpdateGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	var r *racing
	f := newFixture(t, func(s eventstore.Store) eventstore.Store { r = &racing{Store: s, n: 1 << 20}; return r })
	r.f = f
	f.given(eventstore.Metadata{}, placed)
	calls := 0
	_, err := f.svc.Update(context.Background(), id, eventstore.Metadata{}, func(order.Order) ([]order.Event, error) {
		calls++
		return []order.Event{order.Cancelled{}}, nil
	})
	if domain.CodeOf(err) != domain.Conflict || calls != orders.MaxAttempts {
		t.Fatalf("Update = %v (code %s) after %d decisions; want a Conflict after %d", err, domain.CodeOf(err), calls, orders.MaxAttempts)
	}
	_, evs := f.stored()
	for _, e := range evs {
		if _, ok := e.(order.Cancelled); ok {
			t.Fatal("a decision was appended although every append lost its race")
		}
	}
}

func TestUpdateAndLoadRefuseAnUndecodableStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	bad := eventstore.Event{EventID: domain.NewULIDSource(nil)(f.at), Type: "OrderTeleported", SchemaVersion: 1, OccurredAt: f.at, Data: json.RawMessage(`{}`)}
	if _, err := f.store.Append(context.Background(), id, 0, bad); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Load(context.Background(), id); !errors.Is(err, orders.ErrCorrupt) {
		t.Fatalf("Load = %v, want ErrCorrupt", err)
	}
	called := false
	_, err := f.svc.Update(context.Background(), id, eventstore.Metadata{}, func(order.Order) ([]order.Event, error) { called = true; return nil, nil })
	if !errors.Is(err, orders.ErrCorrupt) || called {
		t.Fatalf("Update = %v (decider called: %v), want ErrCorrupt before any decision", err, called)
	}
}

func TestPlaceScenarios(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, nil)
	meta := eventstore.Metadata{RequestID: "req-1", CorrelationID: "req-1"}

	first, err := f.svc.Place(ctx, "key-1", order.Place{CustomerName: " Ada ", ProductName: "Tea", Quantity: 2}, meta)
	if err != nil {
		t.Fatal(err)
	}
	if first.Replayed || len(first.Events) != 1 || first.Events[0].Version != 1 || first.Events[0].StreamID == "" || first.Events[0].Metadata != meta {
		t.Fatalf("first Place = %+v; want one new OrderPlaced at version 1 with the request's metadata", first)
	}
	oid := first.Events[0].StreamID

	again, err := f.svc.Place(ctx, "key-1", order.Place{CustomerName: "Ada", ProductName: "Tea", Quantity: 2}, eventstore.Metadata{RequestID: "req-2"})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Replayed || len(again.Events) != 1 || again.Events[0].EventID != first.Events[0].EventID {
		t.Fatalf("repeated Place = %+v; want the first placement replayed", again)
	}

	// The same key for another order changes nothing.
	if _, err := f.svc.Place(ctx, "key-1", order.Place{CustomerName: "Ada", ProductName: "Coffee", Quantity: 2}, meta); !errors.Is(err, orders.ErrKeyReused) {
		t.Fatalf("Place with a reused key = %v, want ErrKeyReused", err)
	}
	// The replay answers the placement even after the order moved on.
	if _, err := f.svc.Update(ctx, oid, meta, decide(order.Cancelled{})); err != nil {
		t.Fatal(err)
	}
	later, err := f.svc.Place(ctx, "key-1", order.Place{CustomerName: "Ada", ProductName: "Tea", Quantity: 2}, meta)
	if err != nil || !later.Replayed || len(later.Events) != 1 {
		t.Fatalf("Place after the order moved on = %+v, %v; want the placement alone, replayed", later, err)
	}

	// An invalid order is refused and stores nothing.
	before, err := f.store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Place(ctx, "", order.Place{CustomerName: "", ProductName: "Tea", Quantity: 0}, meta)
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.Invalid || de.Fields["customer_name"] == "" || de.Fields["quantity"] == "" {
		t.Fatalf("invalid Place = %v; want domain.Invalid naming customer_name and quantity", err)
	}
	if after, err := f.store.Head(ctx); err != nil || after != before {
		t.Fatal("an invalid Place appended to the log")
	}
}

func TestHistoryIsInTodaysSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, nil)
	f.given(eventstore.Metadata{RequestID: "req-1"}, placed)
	v1 := eventstore.Event{EventID: domain.NewULIDSource(nil)(f.at), Type: order.TypePaymentSucceeded, SchemaVersion: 1,
		OccurredAt: f.at, Data: json.RawMessage(`{"payment_id":"pay-1","amount":"19.99"}`)}
	if _, err := f.store.Append(ctx, id, 1, v1); err != nil {
		t.Fatal(err)
	}
	h, err := f.svc.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if h.OrderID != id || len(h.Events) != 2 || h.Events[0].Metadata.RequestID != "req-1" || h.Events[1].Version != 2 {
		t.Fatalf("History = %+v", h)
	}
	if got := string(h.Events[1].Data); got != `{"payment_id":"pay-1","amount":1999}` {
		t.Fatalf("v1 payment in the history = %s, want it upcast to minor units", got)
	}
	if _, err := f.svc.History(ctx, "01J0000000000000000000000B"); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("History of an unknown order = %v, want order.ErrNotFound", err)
	}
}

func TestNewRequiresAStore(t *testing.T) {
	t.Parallel()
	if _, err := orders.New(orders.Config{}); err == nil || !strings.Contains(err.Error(), "Store") {
		t.Fatalf("New without a store = %v, want an error naming Store", err)
	}
}

// countingLoads counts the store reads of the Service.
type countingLoads struct {
	eventstore.Store
	loads atomic.Int32
}

func (c *countingLoads) Load(ctx context.Context, streamID string, from int64) ([]eventstore.Event, error) {
	c.loads.Add(1)
	return c.Store.Load(ctx, streamID, from)
}

// TestUpdateFromSkipsTheReadAndStillDetectsAWriterInBetween: deciding from
// a state this caller appended itself reads nothing; when another writer
// appended meanwhile, the append conflicts, the stream is read, and the
// decision is made again on the fresh state.
func TestUpdateFromSkipsTheReadAndStillDetectsAWriterInBetween(t *testing.T) {
	t.Parallel()
	var c *countingLoads
	f := newFixture(t, func(s eventstore.Store) eventstore.Store { c = &countingLoads{Store: s}; return c })
	f.given(eventstore.Metadata{}, placed)
	ctx := context.Background()
	st, err := f.svc.Update(ctx, id, eventstore.Metadata{}, decide(paid))
	if err != nil || c.loads.Load() != 1 {
		t.Fatalf("Update = %v after %d loads, want 1 load", err, c.loads.Load())
	}
	st, err = f.svc.UpdateFrom(ctx, id, st, eventstore.Metadata{}, decide(order.InventoryReserved{ReservationID: "res-1"}))
	if err != nil || c.loads.Load() != 1 || st.Order.Version != 3 {
		t.Fatalf("UpdateFrom = v%d, %v after %d loads; want v3 with no more loads", st.Order.Version, err, c.loads.Load())
	}
	// Another writer appends; the caller still holds v3.
	f.given(eventstore.Metadata{}, order.InventoryReserved{ReservationID: "other-writer"})
	var seen []int64
	st, err = f.svc.UpdateFrom(ctx, id, st, eventstore.Metadata{}, func(o order.Order) ([]order.Event, error) {
		seen = append(seen, o.Version)
		return []order.Event{order.Completed{}}, nil
	})
	if err != nil || !reflect.DeepEqual(seen, []int64{3, 4}) || c.loads.Load() != 2 || st.Order.Version != 5 {
		t.Fatalf("UpdateFrom = v%d, %v; decider saw %v after %d loads; want [3 4], 2 loads, v5", st.Order.Version, err, seen, c.loads.Load())
	}
	_, evs := f.stored()
	if len(evs) != 5 || evs[4] != (order.Completed{}) {
		t.Fatalf("stream = %#v, want the decision appended once, last", evs)
	}
}
