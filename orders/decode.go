package orders

import (
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
)

// Decode returns the domain event in env, exactly as codec.Decode does, but
// several times faster for the bodies the codec itself writes: a flat JSON
// object of known keys whose values are integers or strings without escapes,
// at the type's current schema version. Anything else (older schema versions
// to upcast, escapes, unknown or differently cased keys, null, floats) goes
// to codec.Decode, so the result never differs. Rebuilds and projectors
// decode every event once, here.
func Decode(codec *Codec, env eventstore.Event) (order.Event, error) {
	if env.SchemaVersion == codec.SchemaVersion(env.Type) {
		if e, ok := decodeFlat(env.Type, env.Data); ok {
			return e, nil
		}
	}
	return codec.Decode(env)
}

// flat scans a flat JSON object.
type flat struct {
	b []byte
	i int
}

func (f *flat) ws() {
	for f.i < len(f.b) {
		switch f.b[f.i] {
		case ' ', '\t', '\n', '\r':
			f.i++
		default:
			return
		}
	}
}

// str reads a string with no escapes or control characters, valid UTF-8.
func (f *flat) str() (string, bool) {
	b, ok := f.raw()
	if !ok {
		return "", false
	}
	return string(b), true
}

// raw reads a string as str does and returns its bytes, which alias f.b.
func (f *flat) raw() ([]byte, bool) {
	if f.i >= len(f.b) || f.b[f.i] != '"' {
		return nil, false
	}
	start := f.i + 1
	ascii := true
	for j := start; j < len(f.b); j++ {
		c := f.b[j]
		switch {
		case c == '"':
			s := f.b[start:j]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			f.i = j + 1
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

// num reads an integer as JSON writes it (no leading zeros, no fraction).
func (f *flat) num() (int64, bool) {
	start := f.i
	j := f.i
	if j < len(f.b) && f.b[j] == '-' {
		j++
	}
	digits := j
	for j < len(f.b) && f.b[j] >= '0' && f.b[j] <= '9' {
		j++
	}
	if j == digits || (f.b[digits] == '0' && j-digits > 1) {
		return 0, false
	}
	if j < len(f.b) {
		switch f.b[j] {
		case ',', '}', ' ', '\t', '\n', '\r':
		default:
			return 0, false
		}
	}
	// At most 18 digits cannot overflow; longer ones take the slow path.
	if j-digits > 18 {
		n, err := strconv.ParseInt(string(f.b[start:j]), 10, 64)
		if err != nil {
			return 0, false
		}
		f.i = j
		return n, true
	}
	var n int64
	for _, c := range f.b[digits:j] {
		n = n*10 + int64(c-'0')
	}
	if digits > start {
		n = -n
	}
	f.i = j
	return n, true
}

// fields calls set for each key with either a string or an integer value;
// set reports whether it knows the key with that kind of value. The key
// aliases the body and is valid only during the call: set may compare it,
// not keep it.
func (f *flat) fields(set func(key string, s string, n int64, isNum bool) bool) bool {
	f.ws()
	if f.i >= len(f.b) || f.b[f.i] != '{' {
		return false
	}
	f.i++
	f.ws()
	if f.i < len(f.b) && f.b[f.i] == '}' {
		f.i++
		return f.end()
	}
	for {
		f.ws()
		kb, ok := f.raw()
		if !ok {
			return false
		}
		key := unsafe.String(unsafe.SliceData(kb), len(kb))
		f.ws()
		if f.i >= len(f.b) || f.b[f.i] != ':' {
			return false
		}
		f.i++
		f.ws()
		if f.i >= len(f.b) {
			return false
		}
		if f.b[f.i] == '"' {
			s, ok := f.str()
			if !ok || !set(key, s, 0, false) {
				return false
			}
		} else {
			n, ok := f.num()
			if !ok || !set(key, "", n, true) {
				return false
			}
		}
		f.ws()
		if f.i >= len(f.b) {
			return false
		}
		switch f.b[f.i] {
		case ',':
			f.i++
		case '}':
			f.i++
			return f.end()
		default:
			return false
		}
	}
}

func (f *flat) end() bool {
	f.ws()
	return f.i == len(f.b)
}

const maxInt = int64(^uint(0) >> 1)

// decodeFlat decodes data for eventType, or reports false to leave it to
// the codec.
func decodeFlat(eventType string, data []byte) (order.Event, bool) {
	if len(data) == 0 {
		data = []byte("{}")
	}
	f := flat{b: data}
	str := func(dst *string, s string, isNum bool) bool { *dst = s; return !isNum }
	integer := func(dst *int, n int64, isNum bool) bool {
		if !isNum || n > maxInt || n < -maxInt-1 {
			return false
		}
		*dst = int(n)
		return true
	}
	switch eventType {
	case order.TypePlaced:
		var e order.Placed
		ok := f.fields(func(k, s string, n int64, isNum bool) bool {
			switch k {
			case "customer_name":
				return str(&e.CustomerName, s, isNum)
			case "product_name":
				return str(&e.ProductName, s, isNum)
			case "quantity":
				return integer(&e.Quantity, n, isNum)
			}
			return false
		})
		return e, ok
	case order.TypePaymentSucceeded:
		var e order.PaymentSucceeded
		ok := f.fields(func(k, s string, n int64, isNum bool) bool {
			switch k {
			case "payment_id":
				return str(&e.PaymentID, s, isNum)
			case "amount":
				e.Amount = n
				return isNum
			}
			return false
		})
		return e, ok
	case order.TypePaymentFailed:
		var e order.PaymentFailed
		ok := f.fields(func(k, s string, _ int64, isNum bool) bool {
			return k == "reason" && str(&e.Reason, s, isNum)
		})
		return e, ok
	case order.TypeInventoryReserved:
		var e order.InventoryReserved
		ok := f.fields(func(k, s string, _ int64, isNum bool) bool {
			return k == "reservation_id" && str(&e.ReservationID, s, isNum)
		})
		return e, ok
	case order.TypeInventoryReservationFailed:
		var e order.InventoryReservationFailed
		ok := f.fields(func(k, s string, _ int64, isNum bool) bool {
			return k == "reason" && str(&e.Reason, s, isNum)
		})
		return e, ok
	case order.TypePaymentRefunded:
		var e order.PaymentRefunded
		ok := f.fields(func(k, s string, _ int64, isNum bool) bool {
			switch k {
			case "payment_id":
				return str(&e.PaymentID, s, isNum)
			case "reason":
				return str(&e.Reason, s, isNum)
			}
			return false
		})
		return e, ok
	case order.TypeCompleted:
		ok := f.fields(func(string, string, int64, bool) bool { return false })
		return order.Completed{}, ok
	case order.TypeFailed:
		var e order.Failed
		ok := f.fields(func(k, s string, n int64, isNum bool) bool {
			switch k {
			case "reason":
				return str(&e.Reason, s, isNum)
			case "step":
				return str(&e.Step, s, isNum)
			case "attempts":
				return integer(&e.Attempts, n, isNum)
			}
			return false
		})
		return e, ok
	case order.TypeCancelled:
		var e order.Cancelled
		ok := f.fields(func(k, s string, _ int64, isNum bool) bool {
			return k == "reason" && str(&e.Reason, s, isNum)
		})
		return e, ok
	}
	return nil, false
}
