package orders

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
)

// agree checks that Decode and encoding/json give the same event, or both fail.
func agree(t *testing.T, codec *Codec, env eventstore.Event) {
	t.Helper()
	fast, ferr := codec.Decode(env)
	slow, serr := codec.decodeJSON(env)
	if (ferr == nil) != (serr == nil) || !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%s %q: Decode = %#v, %v; codec = %#v, %v", env.Type, env.Data, fast, ferr, slow, serr)
	}
}

// TestDecodeFastPathAgrees: every event the codec writes takes the fast
// path and decodes to what the codec decodes.
func TestDecodeFastPathAgrees(t *testing.T) {
	t.Parallel()
	codec := NewCodec()
	rng := rand.New(rand.NewPCG(1, 1))
	names := []string{"Ada", "Zoë ☕ Ünïcode", "tab\tand \"quotes\" and <html> & \\", "😀", ""}
	pick := func() string { return names[rng.IntN(len(names))] }
	for range 2000 {
		evs := []order.Event{
			order.Placed{CustomerName: pick(), ProductName: pick(), Quantity: rng.IntN(20000) - 10},
			order.PaymentSucceeded{PaymentID: pick(), Amount: rng.Int64() - rng.Int64()},
			order.PaymentFailed{Reason: pick()},
			order.InventoryReserved{ReservationID: pick()},
			order.InventoryReservationFailed{Reason: pick()},
			order.PaymentRefunded{PaymentID: pick(), Reason: pick()},
			order.Completed{},
			order.Failed{Reason: pick(), Step: pick(), Attempts: rng.IntN(5)},
			order.Cancelled{Reason: pick()},
		}
		for _, e := range evs {
			env, err := codec.Encode(e, "01J00000000000000000000000", time.Unix(0, 0), eventstore.Metadata{})
			if err != nil {
				t.Fatal(err)
			}
			agree(t, codec, env)
			plain := true
			for _, c := range env.Data {
				plain = plain && c != '\\'
			}
			fast := codec.flat[env.Type]
			if fast == nil {
				t.Fatalf("%s has no fast decoder: add it to flatDecoders, or its fields are not all plain strings and integers", env.Type)
			}
			if _, ok := fast(env.Data); plain && !ok {
				t.Fatalf("%s %s did not take the fast path", env.Type, env.Data)
			}
		}
	}
}

var trickyBodies = []string{
	``, `{}`, ` { } `, `{"quantity":1}`, `{"quantity":01}`, `{"quantity":-0}`, `{"quantity":1.5}`,
	`{"quantity":1e3}`, `{"quantity":"1"}`, `{"quantity":null}`, `{"quantity":99999999999999999999}`,
	`{"Quantity":3}`, `{"CUSTOMER_NAME":"x"}`, `{"customer_name":"a","customer_name":"b"}`,
	`{"customer_name":"\u00e9"}`, `{"customer_name":"a\"b"}`, "{\"customer_name\":\"\xff\"}",
	`{"customer_name":"x",}`, `{"customer_name":"x"} trailing`, `{"customer_name":"x"}{}`,
	`{"customer_name" "x"}`, `{"unknown":1}`, `{"amount":-9223372036854775808}`, `{"amount":-}`,
	`{"attempts":true}`, `[]`, `null`, `{"reason":"x","extra":{"a":1}}`, `{"amount":"12.34"}`,
	`{"payment_id":"p","amount":1234}`, "{\"reason\":\"a\nb\"}", `{"customer_name":"x"`,
}

func TestDecodeTrickyBodiesAgree(t *testing.T) {
	t.Parallel()
	codec := NewCodec()
	for _, typ := range order.Types {
		for _, body := range trickyBodies {
			for _, sv := range []int{1, 2, 3} {
				agree(t, codec, eventstore.Event{Type: typ, SchemaVersion: sv, Data: json.RawMessage(body)})
			}
		}
	}
}

func FuzzDecodeAgrees(f *testing.F) {
	for _, b := range trickyBodies {
		f.Add(order.TypePlaced, b)
		f.Add(order.TypeFailed, b)
	}
	codec := NewCodec()
	f.Fuzz(func(t *testing.T, typ, body string) {
		agree(t, codec, eventstore.Event{Type: typ, SchemaVersion: codec.SchemaVersion(typ), Data: json.RawMessage(body)})
	})
}

func BenchmarkDecode(b *testing.B) {
	codec := NewCodec()
	env, _ := codec.Encode(order.Placed{CustomerName: "Ada Lovelace", ProductName: "keyboard", Quantity: 3}, "id", time.Unix(0, 0), eventstore.Metadata{})
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			_, _ = codec.Decode(env)
		}
	})
	b.Run("codec", func(b *testing.B) {
		for b.Loop() {
			_, _ = codec.decodeJSON(env)
		}
	})
}
