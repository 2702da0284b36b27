package orders_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/orders"
)

// FuzzCodecDecode feeds arbitrary stored envelopes to the codec and its
// upcasters: it must never panic, and whatever it accepts must survive a
// re-encode and decode unchanged. Seed corpus: testdata/fuzz/FuzzCodecDecode.
func FuzzCodecDecode(f *testing.F) {
	f.Add(order.TypePlaced, 1, []byte(`{"customer_name":"a","product_name":"b","quantity":1}`))
	f.Add(order.TypePaymentSucceeded, 1, []byte(`{"payment_id":"p","amount":"12.30"}`))
	f.Add(order.TypePaymentSucceeded, 2, []byte(`{"payment_id":"p","amount":1230}`))
	f.Add(order.TypeFailed, 1, []byte(`{"reason":"r","step":"payment","attempts":3}`))
	f.Add(order.TypeCompleted, 1, []byte(``))
	c := orders.NewCodec()
	f.Fuzz(func(t *testing.T, typ string, schema int, data []byte) {
		e, err := c.Decode(eventstore.Event{Type: typ, SchemaVersion: schema, Data: json.RawMessage(data)})
		if err != nil {
			return
		}
		env, err := c.Encode(e, "01J0000000000000000000000A", time.Unix(0, 0), eventstore.Metadata{})
		if err != nil {
			t.Fatalf("re-encode of accepted %s: %v", typ, err)
		}
		back, err := c.Decode(env)
		if err != nil {
			t.Fatalf("decode of re-encoded %s: %v", typ, err)
		}
		if !reflect.DeepEqual(back, e) {
			t.Fatalf("round trip changed %#v into %#v", e, back)
		}
	})
}
