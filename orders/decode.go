package orders

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/orderledger/orderledger/domain/order"
)

// flatDecoder decodes one event type's flat body, or reports false.
type flatDecoder func(data []byte) (order.Event, bool)

// flatField is one field the fast decoder fills: the JSON key its struct
// tag declares, and where and what the field is.
type flatField struct {
	key    string
	offset uintptr
	kind   reflect.Kind // reflect.String, reflect.Int or reflect.Int64
}

// flatDecoders returns the fast decoder of every event type in types whose
// fields are all strings or integers with a plain JSON key. The keys are
// read from the struct tags of package order, so they exist once; a type
// the table below does not list, or that has another kind of field, always
// takes encoding/json (TestDecodeFastPathAgrees fails for it).
func flatDecoders(types []string) map[string]flatDecoder {
	all := []flatDecoder{
		flatFor[order.Placed](), flatFor[order.PaymentSucceeded](), flatFor[order.PaymentFailed](),
		flatFor[order.InventoryReserved](), flatFor[order.InventoryReservationFailed](),
		flatFor[order.PaymentRefunded](), flatFor[order.Completed](), flatFor[order.Failed](),
		flatFor[order.Cancelled](), flatFor[order.PaymentVoided](), flatFor[order.AttemptFailed](),
	}
	out := map[string]flatDecoder{}
	for _, d := range all {
		if d == nil {
			continue
		}
		// Decoding the empty object names the type without a second list.
		if e, ok := d([]byte("{}")); ok && slices.Contains(types, e.EventType()) {
			out[e.EventType()] = d
		}
	}
	return out
}

// flatFor returns the fast decoder of E, or nil when E has a field it
// cannot fill.
func flatFor[E order.Event]() flatDecoder {
	t := reflect.TypeFor[E]()
	var fields []flatField
	for i := range t.NumField() {
		f := t.Field(i)
		key, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		k := f.Type.Kind()
		// omitempty changes encoding only: decoding reads the field the same.
		if !f.IsExported() || key == "" || key == "-" || (opts != "" && opts != "omitempty") || (k != reflect.String && k != reflect.Int && k != reflect.Int64) {
			return nil
		}
		fields = append(fields, flatField{key: key, offset: f.Offset, kind: k})
	}
	return func(data []byte) (order.Event, bool) { return decodeFlat[E](fields, data) }
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

// decodeFlat decodes data as an E whose fields are described by fields, or
// reports false to leave it to encoding/json: a key that is not exactly one
// of E's (encoding/json would match it case-insensitively), or a value of
// another kind than its field's. Fields are written through their offsets,
// whose kinds flatFor checked.
func decodeFlat[E order.Event](fields []flatField, data []byte) (order.Event, bool) {
	if len(data) == 0 {
		data = []byte("{}")
	}
	var e E
	p := unsafe.Pointer(&e)
	f := flat{b: data}
	ok := f.fields(func(k, s string, n int64, isNum bool) bool {
		for _, fd := range fields {
			if fd.key != k {
				continue
			}
			switch {
			case fd.kind == reflect.String:
				if isNum {
					return false
				}
				*(*string)(unsafe.Add(p, fd.offset)) = s
			case !isNum:
				return false
			case fd.kind == reflect.Int:
				if n > maxInt || n < -maxInt-1 {
					return false
				}
				*(*int)(unsafe.Add(p, fd.offset)) = int(n)
			default:
				*(*int64)(unsafe.Add(p, fd.offset)) = n
			}
			return true
		}
		return false
	})
	return e, ok
}
