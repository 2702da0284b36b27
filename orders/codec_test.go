package orders_test

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/orders"
)

func TestCodecRoundTripsEveryEventType(t *testing.T) {
	t.Parallel()
	c := orders.NewCodec()
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	events := []order.Event{
		order.Placed{CustomerName: "Zoë", ProductName: "茶碗", Quantity: 3},
		order.PaymentSucceeded{PaymentID: "p1", Amount: 1230, Attempts: 2},
		order.PaymentFailed{Reason: "declined", Attempts: 1},
		order.InventoryReserved{ReservationID: "r1", Attempts: 1},
		order.InventoryReservationFailed{Reason: "out of stock", Attempts: 3},
		order.PaymentRefunded{PaymentID: "p1", Reason: "out of stock", Attempts: 1},
		order.Completed{},
		order.Failed{Reason: "x", Step: "payment", Attempts: 3},
		order.Cancelled{Reason: "changed my mind"},
		order.PaymentVoided{Reason: "order cancelled", Attempts: 1},
		order.AttemptFailed{Step: "payment", Attempt: 2, Reason: "unavailable"},
	}
	if len(events) != len(order.Types) {
		t.Fatalf("test covers %d event types, the domain has %d", len(events), len(order.Types))
	}
	for _, e := range events {
		env, err := c.Encode(e, "01J0000000000000000000000A", at, eventstore.Metadata{RequestID: "r"})
		if err != nil {
			t.Fatal(err)
		}
		if env.Type != e.EventType() || env.SchemaVersion != c.SchemaVersion(e.EventType()) || env.OccurredAt.Location() != time.UTC {
			t.Errorf("envelope %+v", env)
		}
		// Through JSON, as every backend stores it.
		raw, _ := json.Marshal(env)
		var back eventstore.Event
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		got, err := c.Decode(back)
		if err != nil {
			t.Fatalf("decode %s: %v", e.EventType(), err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("round trip %s: got %#v want %#v", e.EventType(), got, e)
		}
	}
}

// TestCodecUpcastsStoredV1Payment loads a PaymentSucceeded stored in schema
// version 1 (amount as a decimal string of major units) and gets today's
// shape (integer minor units).
func TestCodecUpcastsStoredV1Payment(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/payment_succeeded_v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var env eventstore.Event
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	got, err := orders.NewCodec().Decode(env)
	if err != nil {
		t.Fatal(err)
	}
	want := order.PaymentSucceeded{PaymentID: "pay_8f2c", Amount: 1230}
	if got != want {
		t.Fatalf("upcast v1 = %#v, want %#v", got, want)
	}
}

func TestCodecUpcastAmounts(t *testing.T) {
	t.Parallel()
	c := orders.NewCodec()
	cases := map[string]int64{`"12.30"`: 1230, `"12.3"`: 1230, `"7"`: 700, `12.05`: 1205, `"0.99"`: 99, `"-1.5"`: -150}
	for amount, want := range cases {
		env := eventstore.Event{Type: order.TypePaymentSucceeded, SchemaVersion: 1, Data: json.RawMessage(`{"payment_id":"p","amount":` + amount + `}`)}
		got, err := c.Decode(env)
		if err != nil {
			t.Errorf("amount %s: %v", amount, err)
			continue
		}
		if got.(order.PaymentSucceeded).Amount != want {
			t.Errorf("amount %s -> %d, want %d", amount, got.(order.PaymentSucceeded).Amount, want)
		}
	}
	for _, bad := range []string{`"1.234"`, `"abc"`, `"1..2"`, `{}`} {
		env := eventstore.Event{Type: order.TypePaymentSucceeded, SchemaVersion: 1, Data: json.RawMessage(`{"payment_id":"p","amount":` + bad + `}`)}
		if _, err := c.Decode(env); err == nil {
			t.Errorf("amount %s decoded without error", bad)
		}
	}
}

func TestCodecRejectsWhatItCannotRead(t *testing.T) {
	t.Parallel()
	c := orders.NewCodec()
	for name, env := range map[string]eventstore.Event{
		"unknown type":          {Type: "OrderTeleported", SchemaVersion: 1, Data: json.RawMessage(`{}`)},
		"future schema":         {Type: order.TypePlaced, SchemaVersion: 99, Data: json.RawMessage(`{}`)},
		"zero schema":           {Type: order.TypePlaced, SchemaVersion: 0, Data: json.RawMessage(`{}`)},
		"malformed data":        {Type: order.TypePlaced, SchemaVersion: 1, Data: json.RawMessage(`{"quantity":`)},
		"wrong field type":      {Type: order.TypePlaced, SchemaVersion: 1, Data: json.RawMessage(`{"quantity":"three"}`)},
		"malformed v1 upcaster": {Type: order.TypePaymentSucceeded, SchemaVersion: 1, Data: json.RawMessage(`[`)},
	} {
		if _, err := c.Decode(env); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}
