package processing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/processing"
	"github.com/orderledger/orderledger/services"
	"github.com/orderledger/orderledger/services/servicehttp"
	"github.com/orderledger/orderledger/services/sim"
)

// propertySeeds is how many random worlds TestMoneyProperty runs (every
// tenth over real HTTP against the simulator's server).
const propertySeeds = 300

// TestMoneyProperty: over random interleavings of placing, cancelling (with
// and without If-Match, current or stale), declines, transient errors, stock
// running out, charges and refunds whose answer is lost (a processor that
// dies after the call), cancels that land while a charge is in flight,
// concurrent duplicate deliveries, redeliveries, dead letters and their
// redrive, every order settles, and for every order what the history
// records as charged minus refunded is what the payment simulator holds for
// it; an order that ends other than Completed holds zero, a Completed one
// its amount. A failing seed is named: rerun it with -run
// 'TestMoneyProperty/seed=N$'.
func TestMoneyProperty(t *testing.T) {
	t.Parallel()
	store, err := pebblestore.Open(t.TempDir(), pebblestore.WithPebbleOptions(func(po *pebble.Options) {
		po.MemTableSize, po.CacheSize = 8<<20, 8<<20
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for seed := uint64(1); seed <= propertySeeds; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			moneyWorld(t, store, seed, seed%10 == 0)
		})
	}
}

// chaos stands between the saga and the services: it loses answers (the
// call has its effect, the caller sees an error) and cancels the order while
// its charge is in flight, each with the world's probability.
type chaos struct {
	pay  services.Payment
	inv  services.Inventory
	mu   sync.Mutex
	rng  *rand.Rand
	lose float64 // probability that a call's answer is lost
	// cancelDuring is the probability that a charge call first cancels the
	// order (the customer cancels while the payment service works).
	cancelDuring float64
	cancel       func(id string)
	calm         bool // the network healed: nothing more is lost
}

func (c *chaos) roll(p float64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.calm && p > 0 && c.rng.Float64() < p
}

var errLost = errors.New("chaos: the answer was lost after the call")

func (c *chaos) Charge(ctx context.Context, req services.ChargeRequest) (services.Charge, error) {
	if c.roll(c.cancelDuring) {
		c.cancel(req.OrderID)
	}
	ch, err := c.pay.Charge(ctx, req)
	if err == nil && c.roll(c.lose) {
		return services.Charge{}, errLost
	}
	return ch, err
}

func (c *chaos) Refund(ctx context.Context, req services.RefundRequest) (services.Refund, error) {
	r, err := c.pay.Refund(ctx, req)
	if err == nil && c.roll(c.lose) {
		return services.Refund{}, errLost
	}
	return r, err
}

func (c *chaos) Void(ctx context.Context, req services.VoidRequest) (services.Void, error) {
	v, err := c.pay.Void(ctx, req)
	if err == nil && c.roll(c.lose) {
		return services.Void{}, errLost
	}
	return v, err
}

func (c *chaos) Reserve(ctx context.Context, req services.ReserveRequest) (services.Reservation, error) {
	r, err := c.inv.Reserve(ctx, req)
	if err == nil && c.roll(c.lose) {
		return services.Reservation{}, errLost
	}
	return r, err
}

// message is the test's model of one order's message on the processing
// queue: delivered up to MaxReceiveCount times, then dead-lettered until a
// state-aware redrive sends it back with its count reset.
type message struct {
	msg  messaging.Message
	dead bool
	done bool
}

func moneyWorld(t *testing.T, store eventstore.Store, seed uint64, overHTTP bool) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15))
	cfg := sim.Config{
		PaymentDeclineRate: rng.Float64() * 0.3,
		PaymentErrorRate:   rng.Float64() * 0.5,
		RefundErrorRate:    rng.Float64() * 0.3,
		InventoryStock:     1 + rng.IntN(6),
		Seed:               seed,
	}
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var pay services.Payment = s
	var inv services.Inventory = s
	if overHTTP {
		srv := httptest.NewServer(servicehttp.NewHandler(s, s))
		t.Cleanup(srv.Close)
		c, err := servicehttp.NewClient(srv.URL, 0)
		if err != nil {
			t.Fatal(err)
		}
		pay, inv = c, c
	}
	svc, err := orders.New(orders.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	cancel := func(id string, ifMatch int64) {
		_, err := svc.Update(ctx, id, eventstore.Metadata{RequestID: "cancel"}, func(o order.Order) ([]order.Event, error) {
			if ifMatch > 0 && o.Version != ifMatch {
				return nil, &eventstore.ConflictError{StreamID: id, Expected: ifMatch, Actual: o.Version}
			}
			return order.Decide(o, order.Cancel{Reason: "changed my mind"})
		})
		// Refusals are the API's 409 and 412: an order paid or ended, a stale tag.
		var ce *eventstore.ConflictError
		if err != nil && !errors.As(err, &ce) && !errors.Is(err, order.ErrCannotCancel) && !errors.Is(err, order.ErrTerminal) {
			t.Errorf("cancel %s: %v", id, err)
		}
	}
	ch := &chaos{pay: pay, inv: inv, rng: rand.New(rand.NewPCG(seed+1, seed)), lose: rng.Float64() * 0.3,
		cancelDuring: rng.Float64() * 0.3, cancel: func(id string) { cancel(id, 0) }}
	p, err := processing.New(processing.Config{Store: store, Payment: ch, Inventory: ch, Logger: quiet, InlineBackoff: time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}

	product := fmt.Sprintf("widget-%d", seed) // the stock of this world only
	n := 3 + rng.IntN(6)
	msgs := make([]*message, n)
	for i := range msgs {
		pl, err := svc.Place(ctx, "", order.Place{CustomerName: "Ada", ProductName: product, Quantity: 1 + rng.IntN(3)}, eventstore.Metadata{})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(pl.Events[0])
		msgs[i] = &message{msg: messaging.Message{ID: pl.Events[0].EventID, Body: body}}
	}
	deliver := func(m *message) {
		if m.done || m.dead {
			return
		}
		m.msg.ReceiveCount++
		err := p.Handle(ctx, m.msg)
		switch {
		case err == nil:
			m.done = true
		case processing.IsPermanent(err):
			t.Errorf("a placed order's message is poison: %v", err)
			m.done = true
		case m.msg.ReceiveCount >= messaging.MaxReceiveCount:
			m.dead = true
		}
	}
	redrive := func(m *message) {
		if !m.dead {
			return
		}
		var env eventstore.Event
		json.Unmarshal(m.msg.Body, &env)
		st, err := svc.Load(ctx, env.StreamID)
		if err != nil {
			t.Fatal(err)
		}
		m.dead = false
		if st.Order.Settled() {
			m.done = true // the redrive deletes a settled order's message
			return
		}
		m.msg.ReceiveCount = 0
	}
	idOf := func(m *message) string {
		var env eventstore.Event
		json.Unmarshal(m.msg.Body, &env)
		return env.StreamID
	}

	// The random phase.
	for range 10 * n {
		m := msgs[rng.IntN(n)]
		switch op := rng.IntN(10); {
		case op < 5:
			deliver(m)
		case op < 6:
			// Two deliveries at once (a visibility timeout that ran out
			// under a slow processor).
			m2 := *m
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); deliver(&m2) }()
			deliver(m)
			wg.Wait()
			m.done = m.done || m2.done
		case op < 7:
			redrive(m)
		default:
			st, err := svc.Load(ctx, idOf(m))
			if err != nil {
				t.Fatal(err)
			}
			var ifMatch int64
			switch rng.IntN(3) {
			case 1:
				ifMatch = st.Order.Version
			case 2:
				ifMatch = max(st.Order.Version-1, 1) // stale
			}
			cancel(idOf(m), ifMatch)
		}
	}

	// Then the network heals and the operator keeps redriving until every
	// order has settled (the services' own error rates stay).
	ch.mu.Lock()
	ch.calm = true
	ch.mu.Unlock()
	for round := 0; ; round++ {
		open := 0
		for _, m := range msgs {
			redrive(m)
			deliver(m)
			if !m.done {
				open++
			}
		}
		if open == 0 {
			break
		}
		if round == 200 {
			t.Fatalf("seed %d: %d orders never settled", seed, open)
		}
	}

	held := s.Held()
	for _, m := range msgs {
		id := idOf(m)
		st, err := svc.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		o := st.Order
		var charged, refunded int64
		var charges, refunds int
		evs, err := svc.Codec().DecodeAll(st.Events)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			switch e := e.(type) {
			case order.PaymentSucceeded:
				charges++
				charged += e.Amount
			case order.PaymentRefunded:
				refunds++
				refunded += o.Amount
			}
		}
		types := make([]string, len(st.Events))
		for i, env := range st.Events {
			types[i] = env.Type
		}
		switch {
		case !o.Settled():
			t.Errorf("seed %d: order %s not settled: %v", seed, id, types)
		case charges > 1 || refunds > 1:
			t.Errorf("seed %d: order %s: %d charges and %d refunds recorded: %v", seed, id, charges, refunds, types)
		case held[id] != charged-refunded:
			t.Errorf("seed %d: order %s: the simulator holds %d, the history %d (charged %d, refunded %d): %v", seed, id, held[id], charged-refunded, charged, refunded, types)
		case o.Status == order.StatusCompleted && held[id] != o.Amount:
			t.Errorf("seed %d: completed order %s holds %d, want its amount %d", seed, id, held[id], o.Amount)
		case o.Status != order.StatusCompleted && held[id] != 0:
			t.Errorf("seed %d: %s order %s holds %d, want 0: %v", seed, o.Status, id, held[id], types)
		}
	}
}
