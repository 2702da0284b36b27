package order

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/orderledger/orderledger/domain"
)

// Validation limits.
const (
	MaxNameLength = 200
	MinQuantity   = 1
	MaxQuantity   = 10_000
	// MaxCancelReason is the longest cancellation reason, in characters
	// after trimming.
	MaxCancelReason = 500
)

// Named errors of the order aggregate.
var (
	ErrNotFound          = &domain.Error{Code: domain.NotFound, Message: "order not found"}
	ErrAlreadyPlaced     = &domain.Error{Code: domain.Conflict, Message: "order already placed"}
	ErrTerminal          = &domain.Error{Code: domain.Conflict, Message: "order is already in a terminal state"}
	ErrNotPaid           = &domain.Error{Code: domain.Conflict, Message: "order has no successful payment"}
	ErrAlreadyPaid       = &domain.Error{Code: domain.Conflict, Message: "order payment already succeeded"}
	ErrPaymentFailed     = &domain.Error{Code: domain.Conflict, Message: "order payment failed"}
	ErrNotReserved       = &domain.Error{Code: domain.Conflict, Message: "order inventory is not reserved"}
	ErrAlreadyReserved   = &domain.Error{Code: domain.Conflict, Message: "order inventory already reserved"}
	ErrReservationFailed = &domain.Error{Code: domain.Conflict, Message: "order inventory reservation failed"}
	ErrAlreadyRefunded   = &domain.Error{Code: domain.Conflict, Message: "order payment already refunded"}
	ErrCannotCancel      = &domain.Error{Code: domain.Conflict, Message: "order can no longer be cancelled: payment succeeded"}
)

// Command is something asked of an order.
type Command interface{ command() }

// Place places a new order.
type Place struct {
	CustomerName string
	ProductName  string
	Quantity     int
}

// RecordPayment records a successful charge, made on the given try.
type RecordPayment struct {
	PaymentID string
	Amount    int64
	Attempts  int
}

// RecordPaymentFailure records that payment failed for good (declined, or
// unreachable after every attempt); the order fails with it. Unconfirmed
// says that the last try failed without an answer (the service was
// unreachable), so a charge may have landed unseen: that try is recorded as
// an AttemptFailed, and the saga then voids the payment request.
type RecordPaymentFailure struct {
	Reason      string
	Attempts    int
	Unconfirmed bool
}

// RecordReservation records a successful stock reservation.
type RecordReservation struct {
	ReservationID string
	Attempts      int
}

// RecordReservationFailure records that stock could not be reserved. When
// payment had succeeded the saga must refund before the order fails.
type RecordReservationFailure struct {
	Reason      string
	Attempts    int
	Unconfirmed bool // as in RecordPaymentFailure (a reservation is not voided)
}

// RecordRefund records that the charge was refunded.
type RecordRefund struct {
	PaymentID string
	Reason    string
	Attempts  int
}

// RecordVoid records that an ended, unpaid order's payment request was
// voided at the payment service with nothing charged.
type RecordVoid struct {
	Reason   string
	Attempts int
}

// RecordAttemptFailure records a transient failure of one try of a step.
// Attempt must be the step's next try (Order.Attempt); any other number (a
// redelivery recording a try already recorded) records nothing.
type RecordAttemptFailure struct {
	Step    Step
	Attempt int
	Reason  string
}

// MaxAttemptReason bounds the error text an AttemptFailed keeps, in bytes.
const MaxAttemptReason = 500

// Complete completes a paid and reserved order.
type Complete struct{}

// Fail fails a pending order at a step.
type Fail struct {
	Reason   string
	Step     string
	Attempts int
}

// Cancel cancels a pending order whose payment has not succeeded.
type Cancel struct{ Reason string }

func (Place) command()                    {}
func (RecordPayment) command()            {}
func (RecordPaymentFailure) command()     {}
func (RecordReservation) command()        {}
func (RecordReservationFailure) command() {}
func (RecordRefund) command()             {}
func (Complete) command()                 {}
func (Fail) command()                     {}
func (Cancel) command()                   {}
func (RecordVoid) command()               {}
func (RecordAttemptFailure) command()     {}

// Decide returns the events that cmd causes on o, or a named error. It never
// changes o; apply the events to see the new state.
func Decide(o Order, cmd Command) ([]Event, error) {
	if c, ok := cmd.(Cancel); ok {
		// Checked first: a bad reason is wrong whatever the order's state.
		if msg := checkReason(strings.TrimSpace(c.Reason)); msg != "" {
			return nil, &domain.Error{Code: domain.Invalid, Message: "order: invalid cancellation",
				Fields: map[string]string{"reason": msg}}
		}
	}
	if p, ok := cmd.(Place); ok {
		if o.Exists() {
			return nil, ErrAlreadyPlaced
		}
		return place(p)
	}
	if !o.Exists() {
		return nil, ErrNotFound
	}
	switch c := cmd.(type) {
	case Cancel:
		if o.Status == StatusCancelled {
			return nil, nil // already cancelled: nothing changes
		}
		if o.Status.Terminal() {
			return nil, ErrTerminal
		}
		if o.Paid {
			return nil, ErrCannotCancel
		}
		return []Event{Cancelled{Reason: strings.TrimSpace(c.Reason)}}, nil
	case Complete:
		if o.Status == StatusCompleted {
			return nil, nil
		}
	case Fail:
		if o.Status == StatusFailed {
			return nil, nil
		}
	}
	if c, ok := cmd.(RecordAttemptFailure); ok {
		return recordAttemptFailure(o, c)
	}
	if o.Status.Terminal() {
		return decideAfterEnd(o, cmd)
	}
	switch c := cmd.(type) {
	case RecordPayment:
		if !o.Paid && o.PaymentFailed {
			return nil, ErrPaymentFailed
		}
		return recordPayment(o, c)
	case RecordPaymentFailure:
		if o.Paid {
			return nil, ErrAlreadyPaid
		}
		n := max(c.Attempts, 1)
		var events []Event
		if c.Unconfirmed {
			events = append(events, attemptFailed(StepCharge, n, c.Reason))
		}
		return append(events,
			PaymentFailed{Reason: c.Reason, Attempts: n},
			Failed{Reason: c.Reason, Step: string(StepCharge), Attempts: n},
		), nil
	case RecordReservation:
		switch {
		case !o.Paid:
			return nil, ErrNotPaid
		case o.Reserved && o.ReservationID == c.ReservationID:
			return nil, nil
		case o.Reserved:
			return nil, ErrAlreadyReserved
		case o.ReserveFailed:
			return nil, ErrReservationFailed
		}
		return []Event{InventoryReserved{ReservationID: c.ReservationID, Attempts: c.Attempts}}, nil
	case RecordReservationFailure:
		switch {
		case o.ReserveFailed:
			return nil, nil
		case !o.Paid:
			return nil, ErrNotPaid
		case o.Reserved:
			return nil, ErrAlreadyReserved
		}
		var events []Event
		if c.Unconfirmed {
			events = append(events, attemptFailed(StepReserve, max(c.Attempts, 1), c.Reason))
		}
		return append(events, InventoryReservationFailed{Reason: c.Reason, Attempts: c.Attempts}), nil
	case RecordRefund:
		return recordRefund(o, c)
	case RecordVoid:
		return nil, &domain.Error{Code: domain.Conflict, Message: "order is pending: its payment request is voided only once it has ended"}
	case Complete:
		switch {
		case !o.Paid:
			return nil, ErrNotPaid
		case !o.Reserved:
			return nil, ErrNotReserved
		}
		return []Event{Completed{}}, nil
	case Fail:
		if o.Paid && !o.Refunded {
			// Failing a charged order without compensation would keep the money.
			return nil, ErrAlreadyPaid
		}
		return []Event{Failed{Reason: c.Reason, Step: c.Step, Attempts: c.Attempts}}, nil
	}
	return nil, domain.Errorf(domain.Invalid, "order: unknown command %T", cmd)
}

// decideAfterEnd decides a command on a terminal order. Nothing about the
// order changes any more, but money still can: a charge that the payment
// service made while the order was being cancelled (or failed by another
// delivery) is a fact, recorded as a late PaymentSucceeded on the ended
// order, and then its refund, so that every cent that moved is in the
// history. A completed order was paid by definition and takes neither.
func decideAfterEnd(o Order, cmd Command) ([]Event, error) {
	if o.Status == StatusCompleted {
		return nil, ErrTerminal
	}
	switch c := cmd.(type) {
	case RecordPayment:
		return recordPayment(o, c) // a late charge, even after a PaymentFailed
	case RecordRefund:
		return recordRefund(o, c)
	case RecordVoid:
		switch {
		case o.Paid:
			return nil, ErrAlreadyPaid
		case !o.chargeUnsettled():
			return nil, nil // closed already: voided, or declined
		}
		return []Event{PaymentVoided{Reason: c.Reason, Attempts: c.Attempts}}, nil
	}
	return nil, ErrTerminal
}

// recordAttemptFailure records a failed try once, at the step's next
// attempt number. A completed order has no step left to try.
func recordAttemptFailure(o Order, c RecordAttemptFailure) ([]Event, error) {
	if stepIndex(c.Step) < 0 {
		return nil, domain.Errorf(domain.Invalid, "order: step %q has no attempts", c.Step)
	}
	if o.Status == StatusCompleted {
		return nil, ErrTerminal
	}
	if c.Attempt != o.Attempt(c.Step) {
		return nil, nil // recorded already (a redelivery), or out of date
	}
	return []Event{attemptFailed(c.Step, c.Attempt, c.Reason)}, nil
}

// attemptFailed is the AttemptFailed of a try, its reason made valid UTF-8
// and cut to MaxAttemptReason bytes.
func attemptFailed(step Step, attempt int, reason string) AttemptFailed {
	reason = strings.ToValidUTF8(reason, "?")
	if len(reason) > MaxAttemptReason {
		reason = strings.ToValidUTF8(reason[:MaxAttemptReason], "")
	}
	return AttemptFailed{Step: string(step), Attempt: attempt, Reason: reason}
}

// recordPayment records a charge once: the same charge again (a
// redelivery) records nothing, another one is refused.
func recordPayment(o Order, c RecordPayment) ([]Event, error) {
	switch {
	case o.Paid && o.PaymentID == c.PaymentID:
		return nil, nil
	case o.Paid:
		return nil, ErrAlreadyPaid
	}
	return []Event{PaymentSucceeded{PaymentID: c.PaymentID, Amount: c.Amount, Attempts: c.Attempts}}, nil
}

// recordRefund records the refund of the order's charge once.
func recordRefund(o Order, c RecordRefund) ([]Event, error) {
	switch {
	case o.Refunded:
		return nil, nil
	case !o.Paid:
		return nil, ErrNotPaid
	}
	return []Event{PaymentRefunded{PaymentID: o.PaymentID, Reason: c.Reason, Attempts: c.Attempts}}, nil
}

func place(p Place) ([]Event, error) {
	fields := map[string]string{}
	customer, product := strings.TrimSpace(p.CustomerName), strings.TrimSpace(p.ProductName)
	if msg := checkName(customer); msg != "" {
		fields["customer_name"] = msg
	}
	if msg := checkName(product); msg != "" {
		fields["product_name"] = msg
	}
	if p.Quantity < MinQuantity || p.Quantity > MaxQuantity {
		fields["quantity"] = "must be an integer from 1 to 10000"
	}
	if len(fields) > 0 {
		return nil, &domain.Error{Code: domain.Invalid, Message: "the order is invalid: see errors for each field", Fields: fields}
	}
	return []Event{Placed{CustomerName: customer, ProductName: product, Quantity: p.Quantity}}, nil
}

// checkReason returns what is wrong with a trimmed cancellation reason, or
// "". Like a name, it holds printable characters only (no control
// characters, line breaks or tabs inside); unlike one, it may be empty.
func checkReason(s string) string {
	switch {
	case utf8.RuneCountInString(s) > MaxCancelReason:
		return fmt.Sprintf("must be at most %d characters", MaxCancelReason)
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return "must contain printable characters only"
	}
	return ""
}

// checkName returns what is wrong with a trimmed name, or "".
func checkName(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	n := utf8.RuneCountInString(s)
	if n == 0 {
		return "is required"
	}
	if n > MaxNameLength {
		return "must be at most 200 characters"
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return "must contain printable characters only"
		}
	}
	return ""
}
