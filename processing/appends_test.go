package processing_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/processing"
	"github.com/orderledger/orderledger/services/sim"
)

// countingStore records the event types of every Append, one slice per call.
type countingStore struct {
	eventstore.Store
	mu      sync.Mutex
	appends [][]string
}

func (s *countingStore) Append(ctx context.Context, streamID string, expected int64, events ...eventstore.Event) (eventstore.Result, error) {
	var ts []string
	for _, e := range events {
		ts = append(ts, e.Type)
	}
	s.mu.Lock()
	s.appends = append(s.appends, ts)
	s.mu.Unlock()
	return s.Store.Append(ctx, streamID, expected, events...)
}

// TestStepsWithoutServiceCallShareAnAppend: completing or failing an order
// calls no service, so it is appended together with the outcome that leads
// to it; the events recorded are those of one append per step, in order.
// With OneStepPerAppend each step is its own append, and the events
// recorded are the same.
func TestStepsWithoutServiceCallShareAnAppend(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		sim     sim.Config
		qty     int
		oneStep bool // Config.OneStepPerAppend
		appends [][]string
	}{
		{"completed", sim.Config{}, 1, false, [][]string{
			{order.TypePaymentSucceeded},
			{order.TypeInventoryReserved, order.TypeCompleted},
		}},
		{"payment declined", sim.Config{PaymentDeclineRate: 1}, 1, false, [][]string{
			{order.TypePaymentFailed, order.TypeFailed},
		}},
		{"out of stock, refunded", sim.Config{InventoryStock: 1}, 2, false, [][]string{
			{order.TypePaymentSucceeded},
			{order.TypeInventoryReservationFailed},
			{order.TypePaymentRefunded, order.TypeFailed},
		}},
		// With OneStepPerAppend (DynamoDB: no transactions), the same
		// events, one step per append.
		{"completed, one step per append", sim.Config{}, 1, true, [][]string{
			{order.TypePaymentSucceeded},
			{order.TypeInventoryReserved},
			{order.TypeCompleted},
		}},
		// A decline and the failure it ends in are one decision of the
		// domain, so one append either way.
		{"payment declined, one step per append", sim.Config{PaymentDeclineRate: 1}, 1, true, [][]string{
			{order.TypePaymentFailed, order.TypeFailed},
		}},
		{"out of stock, refunded, one step per append", sim.Config{InventoryStock: 1}, 2, true, [][]string{
			{order.TypePaymentSucceeded},
			{order.TypeInventoryReservationFailed},
			{order.TypePaymentRefunded},
			{order.TypeFailed},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, store, s := setup(t, tc.sim)
			counted := &countingStore{Store: store}
			p, err := processing.New(processing.Config{Store: counted, Payment: s, Inventory: s,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), OneStepPerAppend: tc.oneStep})
			if err != nil {
				t.Fatal(err)
			}
			id, msg := placed(t, store, tc.qty)
			if err := p.Handle(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(counted.appends, tc.appends, slices.Equal) {
				t.Fatalf("appends %v, want %v", counted.appends, tc.appends)
			}
			want := []string{order.TypePlaced}
			for _, a := range tc.appends {
				want = append(want, a...)
			}
			if got := types(t, store, id); !slices.Equal(got, want) {
				t.Fatalf("stored events %v, want %v", got, want)
			}
			// The terminal event's data is what the one-step-per-append
			// saga recorded: the failed step and the attempt number.
			envs, _ := store.Load(context.Background(), id, 1)
			last, err := orders.NewCodec().Decode(envs[len(envs)-1])
			if err != nil {
				t.Fatal(err)
			}
			if f, ok := last.(order.Failed); ok {
				wantStep := string(order.StepReserve)
				if tc.sim.PaymentDeclineRate > 0 {
					wantStep = string(order.StepCharge)
				}
				if f.Step != wantStep || f.Attempts != 1 || f.Reason == "" {
					t.Fatalf("Failed %+v, want step %s, attempt 1 and a reason", f, wantStep)
				}
			}
		})
	}
}
