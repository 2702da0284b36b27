package eventstore

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/orderledger/orderledger/domain"
)

// Limits bound what one append may carry. Each backend states its own.
type Limits struct {
	// MaxIDLen bounds stream IDs, event IDs and type names, in bytes.
	MaxIDLen int
	// MaxEvents bounds the events in one append.
	MaxEvents int
	// MaxDataLen bounds one event's data in bytes (0: no bound of its own,
	// the backend checks the stored size).
	MaxDataLen int
	// MaxVersion is the highest version a stream may reach.
	MaxVersion int64
}

// ValidateAppend checks an append's input against the contract every
// backend shares, before anything is written. Its errors are domain.Invalid
// and prefixed with op (e.g. "eventstore/pebblestore: append").
func ValidateAppend(op, streamID string, expected int64, events []Event, lim Limits) error {
	invalid := func(format string, args ...any) error {
		return domain.Errorf(domain.Invalid, op+": "+format, args...)
	}
	switch {
	case streamID == "" || len(streamID) > lim.MaxIDLen || !utf8.ValidString(streamID):
		return invalid("stream ID must be 1..%d bytes of UTF-8", lim.MaxIDLen)
	case expected < 0:
		return invalid("expected version %d is negative", expected)
	case len(events) == 0:
		return invalid("no events")
	case len(events) > lim.MaxEvents:
		return invalid("%d events in one append (at most %d)", len(events), lim.MaxEvents)
	case expected > lim.MaxVersion-int64(len(events)):
		return invalid("expected version %d is out of range", expected)
	}
	for i := range events {
		e := &events[i]
		switch {
		case e.EventID == "" || len(e.EventID) > lim.MaxIDLen:
			return invalid("event %d: event ID must be 1..%d bytes", i, lim.MaxIDLen)
		case e.Type == "" || len(e.Type) > lim.MaxIDLen:
			return invalid("event %d: type must be 1..%d bytes", i, lim.MaxIDLen)
		case e.SchemaVersion < 1:
			return invalid("event %d: schema version %d (must be at least 1)", i, e.SchemaVersion)
		case e.StreamID != "" && e.StreamID != streamID:
			return invalid("event %d: stream ID %q differs from the stream appended to", i, e.StreamID)
		case lim.MaxDataLen > 0 && len(e.Data) > lim.MaxDataLen:
			return invalid("event %d: data of %d bytes (at most %d)", i, len(e.Data), lim.MaxDataLen)
		case len(e.Data) > 0 && !json.Valid(e.Data):
			return invalid("event %d: data is not valid JSON", i)
		}
	}
	return nil
}
