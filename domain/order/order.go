package order

import "time"

// Status is where an order is in its life.
type Status string

// Statuses. Pending until a terminal event, then Completed, Failed or Cancelled.
const (
	StatusPending   Status = "Pending"
	StatusCompleted Status = "Completed"
	StatusFailed    Status = "Failed"
	StatusCancelled Status = "Cancelled"
)

// Statuses lists every status.
var Statuses = []Status{StatusPending, StatusCompleted, StatusFailed, StatusCancelled}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusCompleted, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Terminal reports whether nothing can happen after s.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// Order is the state of one order, folded from its events.
type Order struct {
	ID      string
	Version int64 // number of events applied; 0 for an order that does not exist
	Status  Status

	CustomerName string
	ProductName  string
	Quantity     int

	PaymentID      string
	Amount         int64
	Paid           bool // a PaymentSucceeded happened
	PaymentFailed  bool
	Refunded       bool
	ReservationID  string
	Reserved       bool
	ReserveFailed  bool // an InventoryReservationFailed happened
	FailureReason  string
	FailedStep     string
	FailedAttempts int
	CancelReason   string

	CreatedAt time.Time // when OrderPlaced occurred (set by Fold callers that know it)
	UpdatedAt time.Time // when the last event occurred
}

// Exists reports whether the order has been placed.
func (o Order) Exists() bool { return o.Version > 0 }

// Apply returns the state after e. It never fails: an event that makes no
// sense for the state (which a correct store never holds) changes nothing
// but the version.
func (o Order) Apply(e Event) Order {
	o.Version++
	switch e := e.(type) {
	case Placed:
		o.Status = StatusPending
		o.CustomerName, o.ProductName, o.Quantity = e.CustomerName, e.ProductName, e.Quantity
	case PaymentSucceeded:
		o.Paid, o.PaymentID, o.Amount = true, e.PaymentID, e.Amount
	case PaymentFailed:
		o.PaymentFailed = true
		o.FailureReason = e.Reason
	case InventoryReserved:
		o.Reserved, o.ReservationID = true, e.ReservationID
	case InventoryReservationFailed:
		o.ReserveFailed = true
		o.FailureReason = e.Reason
	case PaymentRefunded:
		o.Refunded = true
	case Completed:
		o.Status = StatusCompleted
	case Failed:
		o.Status = StatusFailed
		o.FailureReason, o.FailedStep, o.FailedAttempts = e.Reason, e.Step, e.Attempts
	case Cancelled:
		o.Status = StatusCancelled
		o.CancelReason = e.Reason
	}
	return o
}

// Fold returns the state of order id after events, in version order.
func Fold(id string, events ...Event) Order {
	o := Order{ID: id}
	for _, e := range events {
		o = o.Apply(e)
	}
	return o
}

// Settled reports whether the order has ended and owes nothing: it is
// terminal and the saga has no step left (a late charge on a cancelled or
// failed order is refunded first).
func (o Order) Settled() bool { return o.Status.Terminal() && o.NextStep() == StepNone }

// Step is what the processing saga must do next for an order.
type Step string

// Saga steps, in the order the processor takes them.
const (
	StepNone     Step = ""          // nothing: the order is terminal or does not exist
	StepCharge   Step = "payment"   // charge the payment service
	StepReserve  Step = "inventory" // reserve stock
	StepRefund   Step = "refund"    // compensate: refund the charge (then fail, unless the order already ended)
	StepFail     Step = "fail"      // record the failure (a step failed, nothing to compensate)
	StepComplete Step = "complete"  // record completion
)

// NextStep returns what the processor must do next. It is a pure function of
// the state, which is what makes redelivered messages safe: a step already
// recorded is never repeated.
func (o Order) NextStep() Step {
	switch {
	case !o.Exists():
		return StepNone
	case o.Status.Terminal():
		if o.Status != StatusCompleted && o.Paid && !o.Refunded {
			return StepRefund // a late charge on an ended order: give it back
		}
		return StepNone
	case o.PaymentFailed:
		return StepFail
	case !o.Paid:
		return StepCharge
	case o.ReserveFailed && !o.Refunded:
		return StepRefund
	case o.ReserveFailed:
		return StepFail
	case !o.Reserved:
		return StepReserve
	default:
		return StepComplete
	}
}
