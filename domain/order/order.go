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
	Voided         bool // a PaymentVoided happened: no charge can land any more
	ReservationID  string
	Reserved       bool
	ReserveFailed  bool // an InventoryReservationFailed happened
	FailureReason  string
	FailedStep     string
	FailedAttempts int
	CancelReason   string

	// PaymentAttempts and ReserveAttempts are the tries the charge's and
	// the reservation's outcomes took, as recorded in them.
	PaymentAttempts int
	ReserveAttempts int
	// tries counts the AttemptFailed events of each step.
	tries [numSteps]int

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
		o.PaymentAttempts = e.Attempts
	case PaymentFailed:
		o.PaymentFailed = true
		o.FailureReason = e.Reason
		o.PaymentAttempts = e.Attempts
	case InventoryReserved:
		o.Reserved, o.ReservationID = true, e.ReservationID
		o.ReserveAttempts = e.Attempts
	case InventoryReservationFailed:
		o.ReserveFailed = true
		o.FailureReason = e.Reason
		o.ReserveAttempts = e.Attempts
	case PaymentRefunded:
		o.Refunded = true
	case PaymentVoided:
		o.Voided = true
	case AttemptFailed:
		if i := stepIndex(Step(e.Step)); i >= 0 {
			o.tries[i]++
		}
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
// failed order is refunded first, and a cancelled order's payment request is
// voided).
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
	StepVoid     Step = "void"      // close the payment request of an order that ended unpaid
)

// numSteps is how many steps call a service, and so have attempts.
const numSteps = 4

// stepIndex is the index of a step with attempts in Order.tries, or -1.
func stepIndex(s Step) int {
	switch s {
	case StepCharge:
		return 0
	case StepReserve:
		return 1
	case StepRefund:
		return 2
	case StepVoid:
		return 3
	}
	return -1
}

// chargeUnsettled reports whether an order has no charge recorded and no
// final word from the payment service either: not charged, not voided, and
// not declined (a payment failure whose every try went unanswered is no
// final word). Only ended orders act on it: a pending one is still charging.
func (o Order) chargeUnsettled() bool {
	if o.Paid || o.Voided {
		return false
	}
	if o.PaymentFailed {
		return o.PaymentAttempts > 0 && o.tries[0] >= o.PaymentAttempts
	}
	return o.Status != StatusCompleted
}

// Attempt is the number of the next try of step: one more than the tries of
// it recorded as AttemptFailed.
func (o Order) Attempt(step Step) int {
	if i := stepIndex(step); i >= 0 {
		return o.tries[i] + 1
	}
	return 1
}

// NextStep returns what the processor must do next. It is a pure function of
// the state, which is what makes redelivered messages safe: a step already
// recorded is never repeated.
func (o Order) NextStep() Step {
	switch {
	case !o.Exists():
		return StepNone
	case o.Status.Terminal():
		switch {
		case o.Status == StatusCompleted:
			return StepNone
		case o.Paid && !o.Refunded:
			return StepRefund // a late charge on an ended order: give it back
		case o.chargeUnsettled():
			// Ended with no charge recorded, yet one may be in flight or
			// may have landed unseen (a crash, a lost answer). Void it, and
			// so learn of it.
			return StepVoid
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
