// Package services holds the ports of the external services the order saga
// calls: Payment (charge, refund) and Inventory (reserve). Every request
// carries an idempotency key (order ID + step, see Key) that the services
// honour, so a retried call never charges or reserves twice.
//
// A call fails in one of two ways. A business refusal (a declined card, no
// stock) is a *RejectedError: final, never retried. Any other error (timeout,
// connection refused, HTTP 5xx) is transient: the saga retries it with
// backoff and gives up after the last attempt.
//
// Adapters: sub-package sim is an in-process simulator with knobs for decline
// rate, error rate, stock, latency and seed; sub-package servicehttp is the
// services' HTTP protocol, with a server for any Payment and Inventory (`ledger
// simulate` serves the simulator) and a client implementing both ports. The
// types here carry no wire tags: the protocol's JSON belongs to servicehttp.
package services

import (
	"context"
	"errors"
	"fmt"
)

// Payment is the payment service port.
type Payment interface {
	// Charge charges an order. A repeated IdempotencyKey returns the
	// original outcome (the same charge, or the same decline).
	Charge(ctx context.Context, req ChargeRequest) (Charge, error)
	// Refund refunds a charge; a repeated IdempotencyKey refunds once.
	Refund(ctx context.Context, req RefundRequest) (Refund, error)
	// Void closes the payment request of a charge's IdempotencyKey so that
	// it can never charge: a Charge with that key afterwards (a call still
	// in flight, or a redelivery) is refused. If the key has already
	// charged, nothing is voided and the answer carries that charge, so the
	// caller can record it and refund it. Charge and Void are serialized per
	// key by the service: whichever it takes first decides. Repeating a
	// Void answers the same.
	Void(ctx context.Context, req VoidRequest) (Void, error)
}

// Inventory is the inventory service port.
type Inventory interface {
	// Reserve reserves stock for an order; a repeated IdempotencyKey returns
	// the original reservation (or the same refusal).
	Reserve(ctx context.Context, req ReserveRequest) (Reservation, error)
}

// ChargeRequest asks the payment service to charge an order. The service
// prices it.
type ChargeRequest struct {
	IdempotencyKey string
	OrderID        string
	CustomerName   string
	ProductName    string
	Quantity       int
}

// Charge is a successful charge.
type Charge struct {
	PaymentID string
	// Amount charged in minor units (cents).
	Amount int64
}

// RefundRequest asks the payment service to refund a charge.
type RefundRequest struct {
	IdempotencyKey string
	OrderID        string
	PaymentID      string
	Amount         int64
	Reason         string
}

// Refund is a successful refund.
type Refund struct {
	RefundID string
}

// VoidRequest asks the payment service to close the payment request of the
// charge whose idempotency key is IdempotencyKey.
type VoidRequest struct {
	// IdempotencyKey is the charge's key, Key(orderID, StepCharge).
	IdempotencyKey string
	OrderID        string
	Reason         string
}

// Void is the answer to a VoidRequest.
type Void struct {
	// Charged reports that the key had already charged: nothing was voided
	// and Charge is that charge, which the caller must record and refund.
	Charged bool
	Charge  Charge
}

// ReserveRequest asks the inventory service to reserve stock.
type ReserveRequest struct {
	IdempotencyKey string
	OrderID        string
	ProductName    string
	Quantity       int
}

// Reservation is a successful reservation.
type Reservation struct {
	ReservationID string
}

// Steps used in idempotency keys.
const (
	StepCharge  = "payment"
	StepRefund  = "refund"
	StepReserve = "inventory"
)

// Key returns the idempotency key of an order's step: "<orderID>:<step>".
func Key(orderID, step string) string { return orderID + ":" + step }

// RejectedError is a business refusal: final, not retried.
type RejectedError struct {
	// Reason says why, e.g. "card declined" or "out of stock".
	Reason string
}

func (e *RejectedError) Error() string { return "services: rejected: " + e.Reason }

// Rejected returns a *RejectedError with the formatted reason.
func Rejected(format string, args ...any) error {
	return &RejectedError{Reason: fmt.Sprintf(format, args...)}
}

// IsRejected reports whether err is a business refusal and returns its reason.
// Any other non-nil error is transient.
func IsRejected(err error) (reason string, ok bool) {
	var r *RejectedError
	if errors.As(err, &r) {
		return r.Reason, true
	}
	return "", false
}
