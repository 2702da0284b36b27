// Package order is the order aggregate: its events, its state and the
// commands that decide which events happen. It is pure: no I/O, no clock, no
// ID generation; whatever a command needs from outside comes in with it.
//
// Commands decide, events record. A command validates against the current
// state and returns past-tense events or a named error; a command that would
// change nothing returns no events. Apply never fails, never validates and
// never reads the clock, so any stored history can be replayed forever.
package order

// Event type names as stored in the event log. They live forever: never
// rename one; add a new type or a new schema version with an upcaster.
const (
	TypePlaced                     = "OrderPlaced"
	TypePaymentSucceeded           = "PaymentSucceeded"
	TypePaymentFailed              = "PaymentFailed"
	TypeInventoryReserved          = "InventoryReserved"
	TypeInventoryReservationFailed = "InventoryReservationFailed"
	TypePaymentRefunded            = "PaymentRefunded"
	TypeCompleted                  = "OrderCompleted"
	TypeFailed                     = "OrderFailed"
	TypeCancelled                  = "OrderCancelled"
	TypePaymentVoided              = "PaymentVoided"
	TypeAttemptFailed              = "AttemptFailed"
)

// Event is one fact in an order's life.
type Event interface {
	// EventType is the stored type name, e.g. "OrderPlaced".
	EventType() string
}

// Placed records that a customer placed an order. Always version 1.
type Placed struct {
	// CustomerName is the customer's name, trimmed, 1..200 characters.
	CustomerName string `json:"customer_name"`
	// ProductName is the product's name, trimmed, 1..200 characters.
	ProductName string `json:"product_name"`
	// Quantity is how many units, 1..10,000.
	Quantity int `json:"quantity"`
}

// PaymentSucceeded records that the payment service charged the order.
type PaymentSucceeded struct {
	// PaymentID is the payment service's reference for the charge.
	PaymentID string `json:"payment_id"`
	// Amount is the amount charged, in minor units (cents).
	Amount int64 `json:"amount"`
	// Attempts is how many tries of the charge it took (0 in events
	// recorded before attempts were counted per step).
	Attempts int `json:"attempts,omitempty"`
}

// PaymentFailed records that the payment service declined the order, or that
// it could not be reached after every attempt.
type PaymentFailed struct {
	// Reason says why, as the payment service or the processor put it.
	Reason string `json:"reason"`
	// Attempts is how many tries of the charge were made.
	Attempts int `json:"attempts,omitempty"`
}

// InventoryReserved records that the inventory service reserved the stock.
type InventoryReserved struct {
	// ReservationID is the inventory service's reference for the reservation.
	ReservationID string `json:"reservation_id"`
	// Attempts is how many tries of the reservation it took.
	Attempts int `json:"attempts,omitempty"`
}

// InventoryReservationFailed records that the stock could not be reserved.
type InventoryReservationFailed struct {
	// Reason says why, e.g. "out of stock".
	Reason string `json:"reason"`
	// Attempts is how many tries of the reservation were made.
	Attempts int `json:"attempts,omitempty"`
}

// PaymentRefunded records that a successful charge was refunded (the saga's
// compensation when inventory fails after payment, or the return of a charge
// that landed on an order cancelled meanwhile).
type PaymentRefunded struct {
	// PaymentID is the charge that was refunded.
	PaymentID string `json:"payment_id"`
	// Reason says why it was refunded.
	Reason string `json:"reason"`
	// Attempts is how many tries of the refund it took.
	Attempts int `json:"attempts,omitempty"`
}

// PaymentVoided records that the order's payment request was closed at the
// payment service with nothing charged, so that no charge can land on it any
// more: the saga voids the charge of every order that ends without one
// (cancelled before the charge, or failed because the payment service could
// not be reached), since a charge may have been in flight.
type PaymentVoided struct {
	// Reason says why the request was closed.
	Reason string `json:"reason"`
	// Attempts is how many tries of the void it took.
	Attempts int `json:"attempts,omitempty"`
}

// AttemptFailed records that one try of a saga step failed transiently (the
// service did not answer, or answered an error); the step is tried again.
// Attempts are counted per step, so the history reads "payment failed twice,
// then succeeded", and an OrderFailed's attempts are those of its step.
type AttemptFailed struct {
	// Step is the step tried: "payment", "inventory", "refund" or "void".
	Step string `json:"step"`
	// Attempt is the try that failed, from 1.
	Attempt int `json:"attempt"`
	// Reason is the error, as the processor saw it.
	Reason string `json:"reason"`
}

// Completed records that the order was paid and reserved: terminal.
type Completed struct{}

// Failed records that the order could not be processed: terminal.
type Failed struct {
	// Reason says what went wrong.
	Reason string `json:"reason"`
	// Step is the saga step that failed: "payment" or "inventory".
	Step string `json:"step"`
	// Attempts is how many attempts the failing step had.
	Attempts int `json:"attempts"`
}

// Cancelled records that the order was cancelled before payment: terminal.
type Cancelled struct {
	// Reason is the caller's reason, possibly empty.
	Reason string `json:"reason"`
}

func (Placed) EventType() string                     { return TypePlaced }
func (PaymentSucceeded) EventType() string           { return TypePaymentSucceeded }
func (PaymentFailed) EventType() string              { return TypePaymentFailed }
func (InventoryReserved) EventType() string          { return TypeInventoryReserved }
func (InventoryReservationFailed) EventType() string { return TypeInventoryReservationFailed }
func (PaymentRefunded) EventType() string            { return TypePaymentRefunded }
func (Completed) EventType() string                  { return TypeCompleted }
func (Failed) EventType() string                     { return TypeFailed }
func (Cancelled) EventType() string                  { return TypeCancelled }
func (PaymentVoided) EventType() string              { return TypePaymentVoided }
func (AttemptFailed) EventType() string              { return TypeAttemptFailed }

// New returns a zero value of the event type name, ready to decode into,
// or nil for an unknown type.
func New(eventType string) Event {
	switch eventType {
	case TypePlaced:
		return &Placed{}
	case TypePaymentSucceeded:
		return &PaymentSucceeded{}
	case TypePaymentFailed:
		return &PaymentFailed{}
	case TypeInventoryReserved:
		return &InventoryReserved{}
	case TypeInventoryReservationFailed:
		return &InventoryReservationFailed{}
	case TypePaymentRefunded:
		return &PaymentRefunded{}
	case TypeCompleted:
		return &Completed{}
	case TypeFailed:
		return &Failed{}
	case TypeCancelled:
		return &Cancelled{}
	case TypePaymentVoided:
		return &PaymentVoided{}
	case TypeAttemptFailed:
		return &AttemptFailed{}
	}
	return nil
}

// Types lists every event type name.
var Types = []string{
	TypePlaced, TypePaymentSucceeded, TypePaymentFailed, TypeInventoryReserved,
	TypeInventoryReservationFailed, TypePaymentRefunded, TypeCompleted, TypeFailed, TypeCancelled,
	TypePaymentVoided, TypeAttemptFailed,
}

// IsTerminal reports whether the event type ends an order's life.
func IsTerminal(eventType string) bool {
	return eventType == TypeCompleted || eventType == TypeFailed || eventType == TypeCancelled
}
