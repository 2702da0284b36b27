package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/services"
	"github.com/orderledger/orderledger/services/sim"
)

// TestMixedRunEveryCentRecorded is the mixed run of a shop with a flaky
// payment service: 8 writers place orders while every 4th one is cancelled
// at once (spread over the time its charge takes), with declines, transient
// payment errors and latency. When every order has settled, the payment
// service's record and the ledger's agree, order by order: each charge and
// refund the service made is an event in the order's history, a charged
// order that ended Cancelled or Failed holds nothing, and a Completed order
// holds its price.
func TestMixedRunEveryCentRecorded(t *testing.T) {
	t.Parallel()
	simulator, err := sim.New(sim.Config{PaymentDeclineRate: 0.2, PaymentErrorRate: 0.3, Latency: 5 * time.Millisecond, Seed: 13})
	if err != nil {
		t.Fatal(err)
	}
	// Half of the cancels are sent while the order's charge is in flight
	// (from inside the payment call, through the API), so the race the
	// run is about happens on every run; the other half at random times.
	pay := &cancellingPayment{Simulator: simulator, targets: map[string]bool{}}
	s := newStack(t, t.TempDir(), stackConfig{Pipeline: true, Payment: pay, Inventory: simulator, Workers: 8})
	pay.api = s.api
	const writers, perWriter = 8, 25
	var mu sync.Mutex
	var ids []string
	cancels := map[int]int{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 13))
			var cw sync.WaitGroup
			defer cw.Wait()
			for n := range perWriter {
				v, err := s.api.Place(context.Background(), placeRequest(fmt.Sprintf("writer-%d-%d", w, n), 1+n%3))
				if err != nil {
					t.Errorf("place: %v", err)
					return
				}
				mu.Lock()
				ids = append(ids, v.OrderID)
				mu.Unlock()
				switch (w*perWriter + n) % 8 {
				case 0:
				case 4:
					pay.target(v.OrderID)
					continue
				default:
					continue
				}
				delay := time.Duration(rng.IntN(150)) * time.Millisecond
				cw.Add(1)
				go func() {
					defer cw.Done()
					time.Sleep(delay)
					_, err := s.api.Cancel(context.Background(), v.OrderID, "")
					status := statusOf(err, http.StatusOK)
					if status != http.StatusOK && status != http.StatusConflict {
						t.Errorf("cancel %s: %v", v.OrderID, err)
					}
					mu.Lock()
					cancels[status]++
					mu.Unlock()
				}()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	waitFor(t, "every order to settle", func() (bool, string) {
		for _, id := range ids {
			evs, err := s.store.Load(context.Background(), id, 1)
			if _, done := settled(s.codec, evs); err != nil || !done {
				return false, fmt.Sprintf("order %s: %v", id, typesOf(evs))
			}
		}
		return true, ""
	})
	waitIdle(t, s)

	held := simulator.Held()
	var charges, refunds, late int
	for _, id := range ids {
		envs, err := s.store.Load(context.Background(), id, 1)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := s.codec.DecodeAll(envs)
		if err != nil {
			t.Fatal(err)
		}
		var charged, refunded int64
		for _, e := range evs {
			switch e := e.(type) {
			case order.PaymentSucceeded:
				charged += e.Amount
				charges++
			case order.PaymentRefunded:
				refunds++
			}
		}
		o := order.Fold(id, evs...)
		if o.Refunded {
			refunded = o.Amount
		}
		if o.Paid && o.Status == order.StatusCancelled {
			late++
		}
		ledger := charged - refunded
		if ledger != held[id] {
			t.Errorf("order %s (%s): the ledger's history holds %d, the payment service %d: %v", id, o.Status, ledger, held[id], typesOf(envs))
		}
		if o.Status != order.StatusCompleted && ledger != 0 {
			t.Errorf("order %s ended %s holding %d", id, o.Status, ledger)
		}
		if o.Status == order.StatusCompleted && ledger <= 0 {
			t.Errorf("order %s completed holding %d", id, ledger)
		}
	}
	if late == 0 {
		// Of the 25 cancels sent during a charge, those whose charge was
		// neither declined nor failed transiently are late charges.
		t.Errorf("no late charge on a cancelled order although %d cancels were sent during the charge", writers*perWriter/8)
	}
	st := simulator.Stats()
	if st.Charges != charges || st.Refunds != refunds {
		t.Errorf("the payment service made %d charges and %d refunds, the histories record %d and %d", st.Charges, st.Refunds, charges, refunds)
	}
	t.Logf("cancels answered %v", cancels)
	t.Logf("%d orders: %d charges, %d refunds, %d late charges on cancelled orders (recorded and refunded), service stats %+v", len(ids), charges, refunds, late, st)
	checkLog(t, s.store, s.codec)
}

// cancellingPayment is the simulator's payment port that, for the orders it
// targets, cancels the order through the API while the charge is in
// flight: the cancel is recorded first, then the service charges.
type cancellingPayment struct {
	*sim.Simulator
	api     *api.Client
	mu      sync.Mutex
	targets map[string]bool
}

func (p *cancellingPayment) target(id string) {
	p.mu.Lock()
	p.targets[id] = true
	p.mu.Unlock()
}

func (p *cancellingPayment) Charge(ctx context.Context, req services.ChargeRequest) (services.Charge, error) {
	p.mu.Lock()
	hit := p.targets[req.OrderID]
	delete(p.targets, req.OrderID)
	p.mu.Unlock()
	if hit {
		if _, err := p.api.Cancel(ctx, req.OrderID, ""); err != nil {
			return services.Charge{}, fmt.Errorf("cancel during the charge: %w", err)
		}
	}
	return p.Simulator.Charge(ctx, req)
}
