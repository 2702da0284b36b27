package orders

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
)

// Upcaster turns the data of one schema version into the next one's shape.
type Upcaster func(data json.RawMessage) (json.RawMessage, error)

// Codec turns domain events into envelopes and back. It knows each event
// type's current schema version and upcasts older stored shapes to it, so
// that history written years ago still loads as today's events.
type Codec struct {
	newEvent  func(eventType string) order.Event
	flat      map[string]flatDecoder // the fast decoders, by event type
	current   map[string]int
	upcasters map[string]map[int]Upcaster // type -> from version -> to from+1
}

// NewCodec returns the codec for order events with every upcaster registered.
func NewCodec() *Codec {
	c := &Codec{newEvent: order.New, flat: flatDecoders(order.Types), current: map[string]int{}, upcasters: map[string]map[int]Upcaster{}}
	for _, t := range order.Types {
		c.current[t] = 1
	}
	// PaymentSucceeded v1 stored amount as a decimal string of major units
	// ("12.34"); v2 stores an integer of minor units (1234).
	c.register(order.TypePaymentSucceeded, 1, upcastPaymentAmount)
	return c
}

// register adds the upcaster from version `from` of eventType to from+1 and
// raises the type's current version accordingly.
func (c *Codec) register(eventType string, from int, up Upcaster) {
	if c.upcasters[eventType] == nil {
		c.upcasters[eventType] = map[int]Upcaster{}
	}
	c.upcasters[eventType][from] = up
	c.current[eventType] = max(c.current[eventType], from+1)
}

// SchemaVersion returns the current schema version of eventType (0 if unknown).
func (c *Codec) SchemaVersion(eventType string) int { return c.current[eventType] }

// Encode wraps e in an envelope with the given ID, time and metadata. The
// store assigns Version and Position.
func (c *Codec) Encode(e order.Event, eventID string, at time.Time, meta eventstore.Metadata) (eventstore.Event, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("orders: encode %s: %w", e.EventType(), err)
	}
	return eventstore.Event{
		EventID:       eventID,
		Type:          e.EventType(),
		SchemaVersion: c.current[e.EventType()],
		OccurredAt:    at.UTC(),
		Data:          data,
		Metadata:      meta,
	}, nil
}

// Decode returns the domain event in env, upcast to the current schema.
//
// The bodies the codec itself writes (a flat JSON object of the type's
// keys, integers and strings without escapes, at the current schema
// version) are decoded by a scanner much faster than encoding/json
// (BenchmarkDecode; figures in BENCHMARKS.md); anything else (older schema versions to upcast, escapes,
// unknown or differently cased keys, null, floats) goes to encoding/json,
// so the result never differs. Rebuilds and projectors decode every event
// once, here.
func (c *Codec) Decode(env eventstore.Event) (order.Event, error) {
	if fast := c.flat[env.Type]; fast != nil && env.SchemaVersion == c.current[env.Type] {
		if e, ok := fast(env.Data); ok {
			return e, nil
		}
	}
	return c.decodeJSON(env)
}

// decodeJSON is Decode through encoding/json alone.
func (c *Codec) decodeJSON(env eventstore.Event) (order.Event, error) {
	ptr := c.newEvent(env.Type)
	if ptr == nil {
		return nil, domain.Errorf(domain.Internal, "orders: decode: unknown event type %q", env.Type)
	}
	data := env.Data
	cur := c.current[env.Type]
	if env.SchemaVersion < 1 || env.SchemaVersion > cur {
		return nil, domain.Errorf(domain.Internal, "orders: decode %s: unsupported schema version %d (current %d)", env.Type, env.SchemaVersion, cur)
	}
	for v := env.SchemaVersion; v < cur; v++ {
		up := c.upcasters[env.Type][v]
		if up == nil {
			return nil, domain.Errorf(domain.Internal, "orders: decode %s: no upcaster from schema version %d", env.Type, v)
		}
		var err error
		if data, err = up(data); err != nil {
			return nil, fmt.Errorf("orders: upcast %s v%d: %w", env.Type, v, err)
		}
	}
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	if err := json.Unmarshal(data, ptr); err != nil {
		return nil, fmt.Errorf("orders: decode %s: %w", env.Type, err)
	}
	return reflect.ValueOf(ptr).Elem().Interface().(order.Event), nil
}

// DecodeAll decodes envs in order.
func (c *Codec) DecodeAll(envs []eventstore.Event) ([]order.Event, error) {
	out := make([]order.Event, len(envs))
	for i, env := range envs {
		e, err := c.Decode(env)
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

func upcastPaymentAmount(data json.RawMessage) (json.RawMessage, error) {
	var v1 struct {
		PaymentID string      `json:"payment_id"`
		Amount    json.Number `json:"amount"`
	}
	if err := json.Unmarshal(data, &v1); err != nil {
		return nil, err
	}
	cents, err := majorToMinor(string(v1.Amount))
	if err != nil {
		return nil, err
	}
	return json.Marshal(order.PaymentSucceeded{PaymentID: v1.PaymentID, Amount: cents})
}

// majorToMinor parses a decimal amount of major units ("12.3") exactly into
// minor units (1230), without floating point.
func majorToMinor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	var whole, frac int64
	var fracDigits int
	neg, seenDot := false, false
	for i, r := range s {
		switch {
		case r == '-' && i == 0:
			neg = true
		case r == '.' && !seenDot:
			seenDot = true
		case r >= '0' && r <= '9' && !seenDot:
			whole = whole*10 + int64(r-'0')
		case r >= '0' && r <= '9' && fracDigits < 2:
			frac = frac*10 + int64(r-'0')
			fracDigits++
		default:
			return 0, fmt.Errorf("amount %q is not a decimal with at most two places", s)
		}
		if whole > 1<<50 {
			return 0, fmt.Errorf("amount %q is out of range", s)
		}
	}
	for ; fracDigits < 2; fracDigits++ {
		frac *= 10
	}
	v := whole*100 + frac
	if neg {
		v = -v
	}
	return v, nil
}
