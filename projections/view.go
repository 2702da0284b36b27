// Package projections owns the order read model: the View of one order that
// users query, the pure fold that builds it from stored events (shared by
// every projector, the rebuild and temporal queries), the ReadModel port with
// its version-fenced writes, the Projector that keeps a read model correct
// under duplicated, reordered and missing deliveries, the checkpointed
// Subscription that drives it from a change feed, and the rebuild control
// a running server exposes.
//
// Adapters live in sub-packages (embedded on pebble; the DynamoDB read table
// elsewhere) and all pass the conformance suite in package readmodeltest.
package projections

import (
	"fmt"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/orders"
)

// View is the read model of one order, as the API shows it.
type View struct {
	// OrderID is the order's ID (a ULID), also its stream ID.
	OrderID string `json:"order_id"`
	// CustomerName and ProductName are as placed.
	CustomerName string `json:"customer_name"`
	ProductName  string `json:"product_name"`
	// Quantity is how many units were ordered.
	Quantity int `json:"quantity"`
	// Status is Pending, Completed, Failed or Cancelled.
	Status order.Status `json:"status"`
	// Version is the number of the order's events folded into the view; it is
	// the stream version, and the ETag the API hands out.
	Version int64 `json:"version"`
	// CreatedAt is when OrderPlaced occurred; UpdatedAt when the last folded
	// event occurred. Both UTC.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// FailureReason is the last failure reported (payment, inventory or the
	// order's failure); empty when nothing failed.
	FailureReason string `json:"failure_reason"`
	// PaymentID is the payment service's reference once payment succeeded.
	PaymentID string `json:"payment_id"`
	// ReservationID is the inventory service's reference once stock is reserved.
	ReservationID string `json:"reservation_id"`
	// Amount is the amount charged, in minor units (cents); 0 until paid.
	Amount int64 `json:"amount"`
}

// Exists reports whether the view holds a placed order.
func (v View) Exists() bool { return v.Version > 0 }

// Apply returns the view after e, the decoded body of env, whose Version
// must be v.Version+1 (Apply does not check it: callers fence versions).
// Like order.Order.Apply it never fails and never reads the clock.
func (v View) Apply(env eventstore.Event, e order.Event) View {
	v.Version = env.Version
	if v.OrderID == "" {
		v.OrderID = env.StreamID
	}
	at := env.OccurredAt.UTC()
	v.UpdatedAt = at
	switch e := e.(type) {
	case order.Placed:
		v.Status = order.StatusPending
		v.CustomerName, v.ProductName, v.Quantity = e.CustomerName, e.ProductName, e.Quantity
		v.CreatedAt = at
	case order.PaymentSucceeded:
		v.PaymentID, v.Amount = e.PaymentID, e.Amount
	case order.PaymentFailed:
		v.FailureReason = e.Reason
	case order.InventoryReserved:
		v.ReservationID = e.ReservationID
	case order.InventoryReservationFailed:
		v.FailureReason = e.Reason
	case order.Completed:
		v.Status = order.StatusCompleted
	case order.Failed:
		v.Status = order.StatusFailed
		v.FailureReason = e.Reason
	case order.Cancelled:
		v.Status = order.StatusCancelled
	}
	return v
}

// ApplyEnvelope decodes env with codec and applies it to v.
func (v View) ApplyEnvelope(codec *orders.Codec, env eventstore.Event) (View, error) {
	e, err := codec.Decode(env)
	if err != nil {
		return v, fmt.Errorf("projections: apply %s v%d: %w", env.StreamID, env.Version, err)
	}
	return v.Apply(env, e), nil
}

// Fold returns the view of envs, the events of one stream from version 1 in
// order. It fails when they are not one gap-free stream starting at 1, or
// when an event cannot be decoded.
func Fold(codec *orders.Codec, envs []eventstore.Event) (View, error) {
	return FoldOnto(codec, View{}, envs)
}

// FoldOnto applies envs, which must continue v's stream from v.Version+1
// without gaps, to v.
func FoldOnto(codec *orders.Codec, v View, envs []eventstore.Event) (View, error) {
	for _, env := range envs {
		if env.Version != v.Version+1 || (v.OrderID != "" && env.StreamID != v.OrderID) {
			return v, domain.Errorf(domain.Internal, "projections: fold: event %s v%d does not follow %q v%d", env.StreamID, env.Version, v.OrderID, v.Version)
		}
		var err error
		if v, err = v.ApplyEnvelope(codec, env); err != nil {
			return v, err
		}
	}
	return v, nil
}

// AsOf selects a past state of an order: the state after Version events
// when Version > 0, or else the state after every event that occurred at or
// before Time when Time is set; the zero AsOf means the current state.
type AsOf struct {
	Version int64
	Time    time.Time
}

// FoldAsOf returns the view of envs (a whole stream from version 1) as of
// at. It returns order.ErrNotFound when the order did not exist then (no
// events, or none at or before at.Time), and an Invalid error when
// at.Version is beyond the stream.
func FoldAsOf(codec *orders.Codec, envs []eventstore.Event, at AsOf) (View, error) {
	n := len(envs)
	switch {
	case at.Version < 0:
		return View{}, domain.Errorf(domain.Invalid, "projections: version %d is negative", at.Version)
	case at.Version > 0:
		if at.Version > int64(len(envs)) {
			if len(envs) == 0 {
				return View{}, order.ErrNotFound
			}
			return View{}, domain.Errorf(domain.Invalid, "projections: version %d is beyond the order's latest version %d", at.Version, len(envs))
		}
		n = int(at.Version)
	case !at.Time.IsZero():
		n = 0
		for n < len(envs) && !envs[n].OccurredAt.After(at.Time) {
			n++
		}
	}
	if n == 0 {
		return View{}, order.ErrNotFound
	}
	return Fold(codec, envs[:n])
}
