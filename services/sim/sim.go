// Package sim is an in-process simulator of the payment and inventory
// services, the default adapter of the services ports. Its knobs (Config)
// make orders decline, fail transiently, run out of stock or slow down; the
// defaults let every order succeed. It honours idempotency keys: a repeated
// key returns the first outcome (charge, decline, reservation or refusal)
// without charging or reserving again. Transient failures are not
// remembered, so a retry may succeed.
//
// `ledger simulate --addr` serves a Simulator over HTTP with package
// services/servicehttp.
package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/services"
)

// DefaultStock is the starting stock per product when Config.InventoryStock is 0.
const DefaultStock = math.MaxInt32

// DefaultUnitPrice is the price of one unit in minor units when
// Config.UnitPrice is 0.
const DefaultUnitPrice = 1000

// Config are the simulator's knobs. The zero value lets every order succeed.
type Config struct {
	// PaymentDeclineRate is the probability (0..1) that a charge is declined
	// (a business refusal, not retried).
	PaymentDeclineRate float64
	// PaymentErrorRate is the probability (0..1) that a payment call fails
	// transiently (retried).
	PaymentErrorRate float64
	// RefundErrorRate is the probability (0..1) that a refund call fails
	// transiently, beside PaymentErrorRate. At 1, an order whose refund is
	// owed (charged, then out of stock or cancelled) is dead-lettered: the
	// way to produce a dead letter on purpose.
	RefundErrorRate float64
	// InventoryStock is the starting stock of every product (0: DefaultStock).
	// A reservation larger than what is left is refused: out of stock.
	InventoryStock int
	// Latency is added to every call.
	Latency time.Duration
	// Seed seeds the random decisions (0: a fixed default), so runs repeat.
	Seed uint64
	// PaymentFailFirst makes the first N charge calls of every idempotency
	// key fail transiently, deterministically (for tests and demos).
	PaymentFailFirst int
	// InventoryFailFirst is PaymentFailFirst for reservations.
	InventoryFailFirst int
	// UnitPrice is the price of one unit in minor units (0: DefaultUnitPrice).
	UnitPrice int64
}

// Validate reports a knob out of range.
func (c Config) Validate() error {
	switch {
	case c.PaymentDeclineRate < 0 || c.PaymentDeclineRate > 1 || math.IsNaN(c.PaymentDeclineRate):
		return fmt.Errorf("services/sim: payment decline rate %v is not in 0..1", c.PaymentDeclineRate)
	case c.PaymentErrorRate < 0 || c.PaymentErrorRate > 1 || math.IsNaN(c.PaymentErrorRate):
		return fmt.Errorf("services/sim: payment error rate %v is not in 0..1", c.PaymentErrorRate)
	case c.RefundErrorRate < 0 || c.RefundErrorRate > 1 || math.IsNaN(c.RefundErrorRate):
		return fmt.Errorf("services/sim: refund error rate %v is not in 0..1", c.RefundErrorRate)
	case c.InventoryStock < 0:
		return fmt.Errorf("services/sim: inventory stock %d is negative", c.InventoryStock)
	case c.Latency < 0:
		return fmt.Errorf("services/sim: latency %v is negative", c.Latency)
	case c.PaymentFailFirst < 0 || c.InventoryFailFirst < 0:
		return errors.New("services/sim: fail-first counts must not be negative")
	case c.UnitPrice < 0:
		return fmt.Errorf("services/sim: unit price %d is negative", c.UnitPrice)
	}
	return nil
}

// ErrUnavailable is the transient failure the simulator injects.
var ErrUnavailable = errors.New("services/sim: service temporarily unavailable")

type outcome struct {
	charge      services.Charge
	reservation services.Reservation
	refund      services.Refund
	rejected    string
}

// KeyCapacity is how many idempotency keys the simulator remembers. Like a
// real payment provider, which keeps keys for a day or so, it forgets the
// oldest ones: retries come within minutes, and memory stays flat however
// long the simulator runs.
const KeyCapacity = 100_000

// Simulator simulates both services. It is safe for concurrent use.
type Simulator struct {
	cfg   Config
	mu    sync.Mutex
	rng   *rand.Rand
	done  map[string]outcome // idempotency key -> first outcome
	tries map[string]int     // idempotency key -> calls so far
	keys  []string           // ring of remembered keys, oldest at next
	next  int
	stock map[string]int // product -> units left
	ids   domain.IDSource
	calls Stats
	// held is what each order has been charged net of refunds, in minor
	// units: the outside record the ledger's history must agree with.
	held map[string]int64
}

// Stats counts what the simulator did, for tests and the simulate server.
type Stats struct {
	Charges, Declines, Refunds, Voids, Reservations, OutOfStock, Errors, Duplicates int
}

var (
	_ services.Payment   = (*Simulator)(nil)
	_ services.Inventory = (*Simulator)(nil)
)

// New returns a simulator, or an error for a knob out of range.
func New(cfg Config) (*Simulator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.InventoryStock == 0 {
		cfg.InventoryStock = DefaultStock
	}
	if cfg.UnitPrice == 0 {
		cfg.UnitPrice = DefaultUnitPrice
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = 1
	}
	return &Simulator{cfg: cfg, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		done: map[string]outcome{}, tries: map[string]int{}, stock: map[string]int{}, held: map[string]int64{},
		ids: domain.NewULIDSource(nil)}, nil
}

// Stats returns the counts so far.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Held returns what each order has been charged net of refunds, in minor
// units; orders never charged are absent. It grows by one entry per charged
// order for the simulator's lifetime (a test and demo service).
func (s *Simulator) Held() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.held))
	for id, v := range s.held {
		out[id] = v
	}
	return out
}

// Stock returns the units of product left.
func (s *Simulator) Stock(product string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.stock[product]; ok {
		return n
	}
	return s.cfg.InventoryStock
}

func (s *Simulator) wait(ctx context.Context) error {
	if s.cfg.Latency <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(s.cfg.Latency)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// nextID returns a new payment, refund or reservation ID: prefix, "_" and a
// ULID from crypto randomness, not from the seeded generator nor a counter,
// so a simulator started again (a restart on the same data directory, or a
// second process) never repeats an ID it or another one issued.
func (s *Simulator) nextID(prefix string) string {
	return prefix + "_" + s.ids(time.Now())
}

func checkKey(key string) error {
	if key == "" {
		return errors.New("services/sim: idempotency key is required")
	}
	return nil
}

// Charge implements services.Payment.
func (s *Simulator) Charge(ctx context.Context, req services.ChargeRequest) (services.Charge, error) {
	if err := checkKey(req.IdempotencyKey); err != nil {
		return services.Charge{}, err
	}
	if req.Quantity < 1 {
		return services.Charge{}, services.Rejected("invalid quantity %d", req.Quantity)
	}
	if err := s.wait(ctx); err != nil {
		return services.Charge{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := "charge|" + req.IdempotencyKey
	if o, ok := s.done[key]; ok {
		s.calls.Duplicates++
		if o.rejected != "" {
			return services.Charge{}, services.Rejected("%s", o.rejected)
		}
		return o.charge, nil
	}
	s.remember(key)
	s.tries[key]++
	if s.tries[key] <= s.cfg.PaymentFailFirst || s.roll(s.cfg.PaymentErrorRate) {
		s.calls.Errors++
		return services.Charge{}, ErrUnavailable
	}
	if s.roll(s.cfg.PaymentDeclineRate) {
		s.calls.Declines++
		s.done[key] = outcome{rejected: "card declined"}
		return services.Charge{}, services.Rejected("card declined")
	}
	ch := services.Charge{PaymentID: s.nextID("pay"), Amount: int64(req.Quantity) * s.cfg.UnitPrice}
	s.done[key] = outcome{charge: ch}
	s.calls.Charges++
	s.held[req.OrderID] += ch.Amount
	return ch, nil
}

// Refund implements services.Payment.
func (s *Simulator) Refund(ctx context.Context, req services.RefundRequest) (services.Refund, error) {
	if err := checkKey(req.IdempotencyKey); err != nil {
		return services.Refund{}, err
	}
	if err := s.wait(ctx); err != nil {
		return services.Refund{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := "refund|" + req.IdempotencyKey
	if o, ok := s.done[key]; ok {
		s.calls.Duplicates++
		return o.refund, nil
	}
	s.remember(key)
	if s.roll(s.cfg.PaymentErrorRate) || s.roll(s.cfg.RefundErrorRate) {
		s.calls.Errors++
		return services.Refund{}, ErrUnavailable
	}
	r := services.Refund{RefundID: s.nextID("ref")}
	s.done[key] = outcome{refund: r}
	s.calls.Refunds++
	s.held[req.OrderID] -= req.Amount
	return r, nil
}

// voidedReason is the refusal a charge meets after its key was voided.
const voidedReason = "payment request voided"

// Void implements services.Payment: under the same lock as Charge, so a
// charge and a void of one key are decided one after the other. A key
// already charged answers that charge; a key declined or voided before is
// closed already; any other key is closed now, and a Charge with it later is
// refused. Like every outcome, a void is remembered for KeyCapacity keys.
func (s *Simulator) Void(ctx context.Context, req services.VoidRequest) (services.Void, error) {
	if err := checkKey(req.IdempotencyKey); err != nil {
		return services.Void{}, err
	}
	if err := s.wait(ctx); err != nil {
		return services.Void{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := "charge|" + req.IdempotencyKey
	if o, ok := s.done[key]; ok {
		s.calls.Duplicates++
		if o.rejected != "" {
			return services.Void{}, nil
		}
		return services.Void{Charged: true, Charge: o.charge}, nil
	}
	if s.roll(s.cfg.PaymentErrorRate) {
		s.calls.Errors++
		return services.Void{}, ErrUnavailable
	}
	s.remember(key)
	s.done[key] = outcome{rejected: voidedReason}
	s.calls.Voids++
	return services.Void{}, nil
}

// Reserve implements services.Inventory.
func (s *Simulator) Reserve(ctx context.Context, req services.ReserveRequest) (services.Reservation, error) {
	if err := checkKey(req.IdempotencyKey); err != nil {
		return services.Reservation{}, err
	}
	if req.Quantity < 1 {
		return services.Reservation{}, services.Rejected("invalid quantity %d", req.Quantity)
	}
	if err := s.wait(ctx); err != nil {
		return services.Reservation{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := "reserve|" + req.IdempotencyKey
	if o, ok := s.done[key]; ok {
		s.calls.Duplicates++
		if o.rejected != "" {
			return services.Reservation{}, services.Rejected("%s", o.rejected)
		}
		return o.reservation, nil
	}
	s.remember(key)
	s.tries[key]++
	if s.tries[key] <= s.cfg.InventoryFailFirst {
		s.calls.Errors++
		return services.Reservation{}, ErrUnavailable
	}
	left, ok := s.stock[req.ProductName]
	if !ok {
		left = s.cfg.InventoryStock
	}
	if req.Quantity > left {
		reason := fmt.Sprintf("out of stock: %d requested, %d left", req.Quantity, left)
		s.done[key] = outcome{rejected: reason}
		s.calls.OutOfStock++
		return services.Reservation{}, services.Rejected("%s", reason)
	}
	s.stock[req.ProductName] = left - req.Quantity
	r := services.Reservation{ReservationID: s.nextID("res")}
	s.done[key] = outcome{reservation: r}
	s.calls.Reservations++
	return r, nil
}

// remember records key as seen, forgetting the oldest key once KeyCapacity
// are remembered; call with s.mu held, before storing anything under key.
func (s *Simulator) remember(key string) {
	if _, ok := s.tries[key]; ok {
		return
	}
	if _, ok := s.done[key]; ok {
		return
	}
	if len(s.keys) < KeyCapacity {
		s.keys = append(s.keys, key)
		return
	}
	old := s.keys[s.next]
	delete(s.done, old)
	delete(s.tries, old)
	s.keys[s.next] = key
	s.next = (s.next + 1) % KeyCapacity
}

// roll returns true with probability p; call with s.mu held.
func (s *Simulator) roll(p float64) bool {
	return p > 0 && s.rng.Float64() < p
}
