package order_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
)

// scenario is a Given/When/Then case: prior events, a command, then either
// the expected events or the expected named error.
type scenario struct {
	name  string
	given []order.Event
	when  order.Command
	then  []order.Event
	err   error
}

var (
	placed     = order.Placed{CustomerName: "Test Customer", ProductName: "Test Product", Quantity: 1}
	paid       = order.PaymentSucceeded{PaymentID: "pay-1", Amount: 1999}
	declined   = order.PaymentFailed{Reason: "card declined", Attempts: 1}
	failedPay  = order.Failed{Reason: "card declined", Step: "payment", Attempts: 1}
	reserved   = order.InventoryReserved{ReservationID: "res-1"}
	noStock    = order.InventoryReservationFailed{Reason: "out of stock"}
	refunded   = order.PaymentRefunded{PaymentID: "pay-1", Reason: "out of stock"}
	completed  = order.Completed{}
	failedInv  = order.Failed{Reason: "out of stock", Step: "inventory", Attempts: 1}
	cancelled  = order.Cancelled{Reason: "changed my mind"}
	lateRefund = order.PaymentRefunded{PaymentID: "pay-1", Reason: "order cancelled during payment"}
	voided     = order.PaymentVoided{Reason: "order cancelled", Attempts: 1}
	unanswered = order.PaymentFailed{Reason: "timeout", Attempts: 1}
)

func tried(n int) order.AttemptFailed {
	return order.AttemptFailed{Step: "payment", Attempt: n, Reason: "timeout"}
}

func run(t *testing.T, cases []scenario) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			state := order.Fold("01J0000000000000000000000A", c.given...)
			got, err := order.Decide(state, c.when)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("Decide error = %v, want %v", err, c.err)
				}
				if got != nil {
					t.Fatalf("Decide returned events %v together with error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide: unexpected error %v", err)
			}
			if len(got) == 0 && len(c.then) == 0 {
				return
			}
			if !reflect.DeepEqual(got, c.then) {
				t.Fatalf("Decide events =\n  %#v\nwant\n  %#v", got, c.then)
			}
		})
	}
}

func TestLegalTransitions(t *testing.T) {
	t.Parallel()
	run(t, []scenario{
		{name: "place", when: order.Place{CustomerName: "  Test Customer ", ProductName: "Test Product", Quantity: 1}, then: []order.Event{placed}},
		{name: "place max quantity", when: order.Place{CustomerName: "a", ProductName: "b", Quantity: 10000},
			then: []order.Event{order.Placed{CustomerName: "a", ProductName: "b", Quantity: 10000}}},
		{name: "place unicode names", when: order.Place{CustomerName: "Zoë Ångström", ProductName: "茶碗 🍵", Quantity: 2},
			then: []order.Event{order.Placed{CustomerName: "Zoë Ångström", ProductName: "茶碗 🍵", Quantity: 2}}},
		{name: "payment succeeds", given: []order.Event{placed}, when: order.RecordPayment{PaymentID: "pay-1", Amount: 1999}, then: []order.Event{paid}},
		{name: "payment declined fails the order", given: []order.Event{placed}, when: order.RecordPaymentFailure{Reason: "card declined", Attempts: 1},
			then: []order.Event{declined, failedPay}},
		{name: "payment unreachable after 3 attempts", given: []order.Event{placed}, when: order.RecordPaymentFailure{Reason: "timeout", Attempts: 3},
			then: []order.Event{order.PaymentFailed{Reason: "timeout", Attempts: 3}, order.Failed{Reason: "timeout", Step: "payment", Attempts: 3}}},
		{name: "payment unanswered after 3 attempts", given: []order.Event{placed, tried(1), tried(2)}, when: order.RecordPaymentFailure{Reason: "timeout", Attempts: 3, Unconfirmed: true},
			then: []order.Event{tried(3), order.PaymentFailed{Reason: "timeout", Attempts: 3}, order.Failed{Reason: "timeout", Step: "payment", Attempts: 3}}},
		{name: "inventory reserved", given: []order.Event{placed, paid}, when: order.RecordReservation{ReservationID: "res-1"}, then: []order.Event{reserved}},
		{name: "inventory fails after payment", given: []order.Event{placed, paid}, when: order.RecordReservationFailure{Reason: "out of stock"}, then: []order.Event{noStock}},
		{name: "refund after reservation failure", given: []order.Event{placed, paid, noStock}, when: order.RecordRefund{Reason: "out of stock"}, then: []order.Event{refunded}},
		{name: "fail after refund", given: []order.Event{placed, paid, noStock, refunded}, when: order.Fail{Reason: "out of stock", Step: "inventory", Attempts: 1}, then: []order.Event{failedInv}},
		{name: "complete when paid and reserved", given: []order.Event{placed, paid, reserved}, when: order.Complete{}, then: []order.Event{completed}},
		{name: "fail pending unpaid order", given: []order.Event{placed}, when: order.Fail{Reason: "unprocessable", Step: "payment", Attempts: 3},
			then: []order.Event{order.Failed{Reason: "unprocessable", Step: "payment", Attempts: 3}}},
		{name: "cancel pending", given: []order.Event{placed}, when: order.Cancel{Reason: " changed my mind "}, then: []order.Event{cancelled}},
		{name: "cancel after payment declined is terminal", given: []order.Event{placed, declined, failedPay}, when: order.Cancel{}, err: order.ErrTerminal},
	})
}

func TestCommandsThatChangeNothingEmitNothing(t *testing.T) {
	t.Parallel()
	run(t, []scenario{
		{name: "same payment again", given: []order.Event{placed, paid}, when: order.RecordPayment{PaymentID: "pay-1", Amount: 1999}},
		{name: "same reservation again", given: []order.Event{placed, paid, reserved}, when: order.RecordReservation{ReservationID: "res-1"}},
		{name: "reservation failure again", given: []order.Event{placed, paid, noStock}, when: order.RecordReservationFailure{Reason: "x"}},
		{name: "refund again", given: []order.Event{placed, paid, noStock, refunded}, when: order.RecordRefund{Reason: "x"}},
		{name: "complete completed", given: []order.Event{placed, paid, reserved, completed}, when: order.Complete{}},
		{name: "fail failed", given: []order.Event{placed, declined, failedPay}, when: order.Fail{Reason: "x", Step: "payment", Attempts: 3}},
		{name: "cancel cancelled", given: []order.Event{placed, cancelled}, when: order.Cancel{Reason: "again"}},
	})
}

func TestIllegalTransitions(t *testing.T) {
	t.Parallel()
	terminals := map[string][]order.Event{
		"completed": {placed, paid, reserved, completed},
		"failed":    {placed, declined, failedPay},
		"cancelled": {placed, cancelled},
	}
	var cases []scenario
	for name, given := range terminals {
		for _, cmd := range []order.Command{
			order.RecordPayment{PaymentID: "pay-2", Amount: 1}, order.RecordPaymentFailure{Reason: "x"},
			order.RecordReservation{ReservationID: "res-2"}, order.RecordReservationFailure{Reason: "x"},
			order.RecordRefund{Reason: "x"},
		} {
			want := error(order.ErrTerminal)
			switch cmd.(type) {
			case order.RecordPayment:
				if name != "completed" {
					continue // a late charge is recorded: TestMoneyAfterTheEnd
				}
			case order.RecordRefund:
				if name != "completed" {
					want = order.ErrNotPaid // nothing was charged to give back
				}
			}
			cases = append(cases, scenario{name: name + "/" + reflect.TypeOf(cmd).Name(), given: given, when: cmd, err: want})
		}
	}
	cases = append(cases,
		scenario{name: "complete after failure", given: terminals["failed"], when: order.Complete{}, err: order.ErrTerminal},
		scenario{name: "complete after cancel", given: terminals["cancelled"], when: order.Complete{}, err: order.ErrTerminal},
		scenario{name: "fail after completion", given: terminals["completed"], when: order.Fail{Reason: "x"}, err: order.ErrTerminal},
		scenario{name: "cancel after completion", given: terminals["completed"], when: order.Cancel{}, err: order.ErrTerminal},
		scenario{name: "cancel after failure", given: terminals["failed"], when: order.Cancel{}, err: order.ErrTerminal},
		scenario{name: "place twice", given: []order.Event{placed}, when: order.Place{CustomerName: "a", ProductName: "b", Quantity: 1}, err: order.ErrAlreadyPlaced},
		scenario{name: "pay unknown order", when: order.RecordPayment{PaymentID: "p", Amount: 1}, err: order.ErrNotFound},
		scenario{name: "cancel unknown order", when: order.Cancel{}, err: order.ErrNotFound},
		scenario{name: "complete without payment", given: []order.Event{placed}, when: order.Complete{}, err: order.ErrNotPaid},
		scenario{name: "complete without reservation", given: []order.Event{placed, paid}, when: order.Complete{}, err: order.ErrNotReserved},
		scenario{name: "reserve before payment", given: []order.Event{placed}, when: order.RecordReservation{ReservationID: "r"}, err: order.ErrNotPaid},
		scenario{name: "reservation failure before payment", given: []order.Event{placed}, when: order.RecordReservationFailure{Reason: "x"}, err: order.ErrNotPaid},
		scenario{name: "refund without payment", given: []order.Event{placed}, when: order.RecordRefund{Reason: "x"}, err: order.ErrNotPaid},
		scenario{name: "second different payment", given: []order.Event{placed, paid}, when: order.RecordPayment{PaymentID: "pay-2", Amount: 1}, err: order.ErrAlreadyPaid},
		scenario{name: "payment failure after success", given: []order.Event{placed, paid}, when: order.RecordPaymentFailure{Reason: "x"}, err: order.ErrAlreadyPaid},
		scenario{name: "cancel after payment", given: []order.Event{placed, paid}, when: order.Cancel{}, err: order.ErrCannotCancel},
		scenario{name: "second different reservation", given: []order.Event{placed, paid, reserved}, when: order.RecordReservation{ReservationID: "res-2"}, err: order.ErrAlreadyReserved},
		scenario{name: "reservation failure after reservation", given: []order.Event{placed, paid, reserved}, when: order.RecordReservationFailure{Reason: "x"}, err: order.ErrAlreadyReserved},
		scenario{name: "reserve after reservation failure", given: []order.Event{placed, paid, noStock}, when: order.RecordReservation{ReservationID: "r"}, err: order.ErrReservationFailed},
		scenario{name: "fail a charged order without refund", given: []order.Event{placed, paid, noStock}, when: order.Fail{Reason: "x", Step: "inventory"}, err: order.ErrAlreadyPaid},
	)
	run(t, cases)
}

func TestPlaceValidation(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 201)
	cases := []struct {
		name   string
		cmd    order.Place
		fields []string
	}{
		{"empty names", order.Place{Quantity: 1}, []string{"customer_name", "product_name"}},
		{"blank names", order.Place{CustomerName: "   ", ProductName: "\t", Quantity: 1}, []string{"customer_name", "product_name"}},
		{"too long", order.Place{CustomerName: long, ProductName: "p", Quantity: 1}, []string{"customer_name"}},
		{"control character", order.Place{CustomerName: "a\x00b", ProductName: "p", Quantity: 1}, []string{"customer_name"}},
		{"newline inside", order.Place{CustomerName: "c", ProductName: "p\nq", Quantity: 1}, []string{"product_name"}},
		{"invalid utf-8", order.Place{CustomerName: "c\xff", ProductName: "p", Quantity: 1}, []string{"customer_name"}},
		{"zero quantity", order.Place{CustomerName: "c", ProductName: "p"}, []string{"quantity"}},
		{"negative quantity", order.Place{CustomerName: "c", ProductName: "p", Quantity: -3}, []string{"quantity"}},
		{"too many", order.Place{CustomerName: "c", ProductName: "p", Quantity: 10001}, []string{"quantity"}},
		{"everything wrong", order.Place{Quantity: 0}, []string{"customer_name", "product_name", "quantity"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			evs, err := order.Decide(order.Order{}, c.cmd)
			if evs != nil {
				t.Fatalf("events %v on invalid input", evs)
			}
			var de *domain.Error
			if !errors.As(err, &de) || de.Code != domain.Invalid {
				t.Fatalf("error = %v, want a domain.Invalid error", err)
			}
			if len(de.Fields) != len(c.fields) {
				t.Fatalf("fields = %v, want exactly %v", de.Fields, c.fields)
			}
			for _, f := range c.fields {
				if de.Fields[f] == "" {
					t.Errorf("no message for field %q in %v", f, de.Fields)
				}
			}
		})
	}
	// 200 characters (not bytes) is allowed.
	if _, err := order.Decide(order.Order{}, order.Place{CustomerName: strings.Repeat("é", 200), ProductName: "p", Quantity: 1}); err != nil {
		t.Fatalf("200 two-byte characters rejected: %v", err)
	}
}

func TestApplyAndNextStep(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		events []order.Event
		status order.Status
		next   order.Step
	}{
		{"unknown", nil, "", order.StepNone},
		{"placed", []order.Event{placed}, order.StatusPending, order.StepCharge},
		{"declined", []order.Event{placed, declined}, order.StatusPending, order.StepFail},
		{"paid", []order.Event{placed, paid}, order.StatusPending, order.StepReserve},
		{"out of stock", []order.Event{placed, paid, noStock}, order.StatusPending, order.StepRefund},
		{"refunded", []order.Event{placed, paid, noStock, refunded}, order.StatusPending, order.StepFail},
		{"reserved", []order.Event{placed, paid, reserved}, order.StatusPending, order.StepComplete},
		{"completed", []order.Event{placed, paid, reserved, completed}, order.StatusCompleted, order.StepNone},
		{"failed", []order.Event{placed, paid, noStock, refunded, failedInv}, order.StatusFailed, order.StepNone},
		{"cancelled", []order.Event{placed, cancelled}, order.StatusCancelled, order.StepVoid},
		{"cancelled and voided", []order.Event{placed, cancelled, voided}, order.StatusCancelled, order.StepNone},
		{"failed unanswered", []order.Event{placed, tried(1), unanswered, failedPay}, order.StatusFailed, order.StepVoid},
		{"failed unanswered and voided", []order.Event{placed, tried(1), unanswered, failedPay, voided}, order.StatusFailed, order.StepNone},
		{"failed declined after a failed try", []order.Event{placed, tried(1), order.PaymentFailed{Reason: "declined", Attempts: 2}, failedPay}, order.StatusFailed, order.StepNone},
		{"charged after cancel", []order.Event{placed, cancelled, paid}, order.StatusCancelled, order.StepRefund},
		{"refunded after cancel", []order.Event{placed, cancelled, paid, lateRefund}, order.StatusCancelled, order.StepNone},
		{"charged after failure", []order.Event{placed, declined, failedPay, paid}, order.StatusFailed, order.StepRefund},
	}
	for _, c := range cases {
		o := order.Fold("id", c.events...)
		if settled := c.status.Terminal() && c.next == order.StepNone; o.Settled() != settled {
			t.Errorf("%s: Settled = %v, want %v", c.name, o.Settled(), settled)
		}
		if o.Status != c.status || o.NextStep() != c.next || o.Version != int64(len(c.events)) {
			t.Errorf("%s: status %q next %q version %d, want %q %q %d", c.name, o.Status, o.NextStep(), o.Version, c.status, c.next, len(c.events))
		}
	}
	o := order.Fold("id", placed, paid, noStock, refunded, failedInv)
	if o.PaymentID != "pay-1" || o.Amount != 1999 || !o.Refunded || o.FailedStep != "inventory" || o.FailureReason != "out of stock" {
		t.Errorf("folded state lost fields: %+v", o)
	}
}

// TestApplyNeverFails: appliers accept any event in any state, including
// nonsense ones a correct store never holds, and only bump the version.
func TestApplyNeverFails(t *testing.T) {
	t.Parallel()
	all := []order.Event{placed, paid, declined, reserved, noStock, refunded, completed, failedInv, cancelled,
		voided, order.AttemptFailed{Step: "payment", Attempt: 1, Reason: "x"}, order.AttemptFailed{Step: "nope", Attempt: 1}}
	o := order.Order{ID: "x"}
	for i := 0; i < 3; i++ {
		for _, e := range all {
			o = o.Apply(e)
		}
	}
	if o.Version != int64(3*len(all)) {
		t.Fatalf("version %d after %d events", o.Version, 3*len(all))
	}
}

func TestEventTypesRoundTrip(t *testing.T) {
	t.Parallel()
	for _, typ := range order.Types {
		e := order.New(typ)
		if e == nil || e.EventType() != typ {
			t.Errorf("order.New(%q) = %#v", typ, e)
		}
	}
	if order.New("Nope") != nil {
		t.Error("order.New of an unknown type is not nil")
	}
}

func TestCancelReasonLength(t *testing.T) {
	t.Parallel()
	long := order.Cancel{Reason: strings.Repeat("é", order.MaxCancelReason+1)}
	// Too long is wrong whatever the order's state, even for one that does
	// not exist or is already cancelled.
	for name, given := range map[string][]order.Event{"unknown": nil, "pending": {placed}, "cancelled": {placed, cancelled}, "paid": {placed, paid}} {
		evs, err := order.Decide(order.Fold("01J0000000000000000000000A", given...), long)
		var de *domain.Error
		if evs != nil || !errors.As(err, &de) || de.Code != domain.Invalid || de.Fields["reason"] == "" {
			t.Errorf("%s order: Decide(too long a reason) = %v, %v; want domain.Invalid naming reason", name, evs, err)
		}
	}
	// 500 characters (not bytes), and spaces around them, are allowed.
	ok := order.Cancel{Reason: "  " + strings.Repeat("é", order.MaxCancelReason) + "  "}
	evs, err := order.Decide(order.Fold("01J0000000000000000000000A", placed), ok)
	if err != nil || len(evs) != 1 || evs[0].(order.Cancelled).Reason != strings.Repeat("é", order.MaxCancelReason) {
		t.Fatalf("Decide(500 characters) = %v, %v; want the order cancelled with the trimmed reason", evs, err)
	}
}

// TestMoneyAfterTheEnd: a charge that lands on an order already cancelled
// (or failed by another delivery) is recorded, and so is its refund; the
// order's status does not change, and a completed order takes neither.
func TestMoneyAfterTheEnd(t *testing.T) {
	t.Parallel()
	refund := order.RecordRefund{Reason: "order cancelled during payment"}
	run(t, []scenario{
		{name: "late charge on a cancelled order", given: []order.Event{placed, cancelled}, when: order.RecordPayment{PaymentID: "pay-1", Amount: 1999}, then: []order.Event{paid}},
		{name: "late charge on a failed order", given: []order.Event{placed, declined, failedPay}, when: order.RecordPayment{PaymentID: "pay-1", Amount: 1999}, then: []order.Event{paid}},
		{name: "the same late charge again", given: []order.Event{placed, cancelled, paid}, when: order.RecordPayment{PaymentID: "pay-1", Amount: 1999}},
		{name: "a second late charge", given: []order.Event{placed, cancelled, paid}, when: order.RecordPayment{PaymentID: "pay-2", Amount: 1}, err: order.ErrAlreadyPaid},
		{name: "refund of a late charge", given: []order.Event{placed, cancelled, paid}, when: refund, then: []order.Event{lateRefund}},
		{name: "refund of a late charge again", given: []order.Event{placed, cancelled, paid, lateRefund}, when: refund},
		{name: "no refund without a charge", given: []order.Event{placed, cancelled}, when: refund, err: order.ErrNotPaid},
		{name: "a completed order takes no late charge", given: []order.Event{placed, paid, reserved, completed}, when: order.RecordPayment{PaymentID: "pay-1", Amount: 1999}, err: order.ErrTerminal},
		{name: "a cancelled order with a charge stays cancelled", given: []order.Event{placed, cancelled, paid}, when: order.Cancel{}},
	})
	o := order.Fold("id", placed, cancelled, paid, lateRefund)
	if o.Status != order.StatusCancelled || !o.Paid || !o.Refunded {
		t.Fatalf("state after a late charge and its refund = %+v, want Cancelled, paid and refunded", o)
	}
}

// TestCancelReasonPrintable: a reason holds printable characters only, as
// names do; spaces around it are trimmed first.
func TestCancelReasonPrintable(t *testing.T) {
	t.Parallel()
	for _, reason := range []string{"stop\x00", "\x1b[31mred", "line\rover", "ding\a", "two\nlines", "tab\there", "\u200bzero width", "bad \xff byte"} {
		for name, given := range map[string][]order.Event{"pending": {placed}, "cancelled": {placed, cancelled}} {
			evs, err := order.Decide(order.Fold("01J0000000000000000000000A", given...), order.Cancel{Reason: reason})
			var de *domain.Error
			if evs != nil || !errors.As(err, &de) || de.Code != domain.Invalid || de.Fields["reason"] == "" {
				t.Errorf("%s order: Decide(Cancel{%q}) = %v, %v; want domain.Invalid naming reason", name, reason, evs, err)
			}
		}
	}
	evs, err := order.Decide(order.Fold("01J0000000000000000000000A", placed), order.Cancel{Reason: "\t Zoë changed her mind ☕\r\n"})
	if err != nil || len(evs) != 1 || evs[0].(order.Cancelled).Reason != "Zoë changed her mind ☕" {
		t.Fatalf("Decide(a printable reason) = %v, %v; want the order cancelled with the trimmed reason", evs, err)
	}
}

// TestVoid: an order that ended unpaid has its payment request voided once;
// a charge that lands after all is still recorded and refunded.
func TestVoid(t *testing.T) {
	t.Parallel()
	void := order.RecordVoid{Reason: "order cancelled", Attempts: 1}
	run(t, []scenario{
		{name: "void a cancelled order", given: []order.Event{placed, cancelled}, when: void, then: []order.Event{voided}},
		{name: "void again", given: []order.Event{placed, cancelled, voided}, when: void},
		{name: "void a declined order", given: []order.Event{placed, declined, failedPay}, when: void},
		{name: "void an order failed unanswered", given: []order.Event{placed, tried(1), unanswered, failedPay}, when: void, then: []order.Event{voided}},
		{name: "void a charged cancelled order", given: []order.Event{placed, cancelled, paid}, when: void, err: order.ErrAlreadyPaid},
		{name: "void a completed order", given: []order.Event{placed, paid, reserved, completed}, when: void, err: order.ErrTerminal},
		{name: "a late charge after a void is still recorded", given: []order.Event{placed, cancelled, voided}, when: order.RecordPayment{PaymentID: "pay-1", Amount: 1999}, then: []order.Event{paid}},
	})
	if _, err := order.Decide(order.Fold("id", placed), void); domain.CodeOf(err) != domain.Conflict {
		t.Fatalf("void of a pending order = %v, want a conflict", err)
	}
	if o := order.Fold("id", placed, cancelled, voided, paid); o.NextStep() != order.StepRefund {
		t.Fatalf("a charge after a void: next step %q, want refund", o.NextStep())
	}
}

// TestAttemptsPerStep: failed tries are counted per step, recorded once
// each, and the outcomes carry their step's tries.
func TestAttemptsPerStep(t *testing.T) {
	t.Parallel()
	payFail := func(n int) order.AttemptFailed {
		return order.AttemptFailed{Step: "payment", Attempt: n, Reason: "unavailable"}
	}
	run(t, []scenario{
		{name: "first failed try", given: []order.Event{placed}, when: order.RecordAttemptFailure{Step: order.StepCharge, Attempt: 1, Reason: "unavailable"}, then: []order.Event{payFail(1)}},
		{name: "second failed try", given: []order.Event{placed, payFail(1)}, when: order.RecordAttemptFailure{Step: order.StepCharge, Attempt: 2, Reason: "unavailable"}, then: []order.Event{payFail(2)}},
		{name: "a try recorded already", given: []order.Event{placed, payFail(1)}, when: order.RecordAttemptFailure{Step: order.StepCharge, Attempt: 1, Reason: "unavailable"}},
		{name: "a refund try on a cancelled order", given: []order.Event{placed, cancelled, paid}, when: order.RecordAttemptFailure{Step: order.StepRefund, Attempt: 1, Reason: "x"},
			then: []order.Event{order.AttemptFailed{Step: "refund", Attempt: 1, Reason: "x"}}},
		{name: "no tries on a completed order", given: []order.Event{placed, paid, reserved, completed}, when: order.RecordAttemptFailure{Step: order.StepRefund, Attempt: 1}, err: order.ErrTerminal},
		{name: "payment on its third try", given: []order.Event{placed, payFail(1), payFail(2)}, when: order.RecordPayment{PaymentID: "pay-1", Amount: 1999, Attempts: 3},
			then: []order.Event{order.PaymentSucceeded{PaymentID: "pay-1", Amount: 1999, Attempts: 3}}},
	})
	o := order.Fold("id", placed, payFail(1), payFail(2), order.PaymentSucceeded{PaymentID: "p", Amount: 1, Attempts: 3},
		order.AttemptFailed{Step: "inventory", Attempt: 1, Reason: "x"})
	if o.Attempt(order.StepCharge) != 3 || o.Attempt(order.StepReserve) != 2 || o.Attempt(order.StepRefund) != 1 || o.PaymentAttempts != 3 {
		t.Fatalf("attempts: payment %d, inventory %d, refund %d, recorded %d; want 3, 2, 1, 3",
			o.Attempt(order.StepCharge), o.Attempt(order.StepReserve), o.Attempt(order.StepRefund), o.PaymentAttempts)
	}
	long, err := order.Decide(order.Fold("id", placed), order.RecordAttemptFailure{Step: order.StepCharge, Attempt: 1, Reason: strings.Repeat("é", 400)})
	if err != nil || len(long[0].(order.AttemptFailed).Reason) > order.MaxAttemptReason {
		t.Fatalf("a long reason: %v, %v; want it cut to %d bytes", long, err, order.MaxAttemptReason)
	}
	if _, err := order.Decide(order.Fold("id", placed), order.RecordAttemptFailure{Step: order.StepFail, Attempt: 1}); domain.CodeOf(err) != domain.Invalid {
		t.Fatalf("a try of a step without attempts = %v, want invalid", err)
	}
}
