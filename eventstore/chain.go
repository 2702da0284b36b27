package eventstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
)

// HashSize is the size of an event hash in bytes (SHA-256).
const HashSize = sha256.Size

// Hash is the SHA-256 of an event's canonical encoding followed by its
// predecessor's hash (see the package doc, "The audit chain"). The zero Hash
// means none: the PrevHash of version 1, or the Hash of an event stored
// before the chain existed (see ledger audit migrate). Its text form (JSON)
// is 64 lowercase hex digits.
type Hash [HashSize]byte

// IsZero reports whether h is the zero Hash (none).
func (h Hash) IsZero() bool { return h == Hash{} }

// String returns h as 64 lowercase hex digits.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText implements encoding.TextMarshaler (64 hex digits).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

// ParseHash parses 64 hex digits; the empty string is the zero Hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if s == "" {
		return h, nil
	}
	if len(s) != 2*HashSize {
		return h, fmt.Errorf("eventstore: hash %q: want %d hex digits", s, 2*HashSize)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("eventstore: hash %q: %w", s, err)
	}
	return h, nil
}

// hashDomain starts every canonical encoding, so that no other SHA-256 input
// of the project can be mistaken for an event's.
const hashDomain = "orderledger.event.v1\x00"

// AppendCanonical appends the canonical encoding of e (without the
// predecessor's hash, which ends the hashed input) to dst. StreamID and
// Version must be those stored. See the package doc for the layout.
func AppendCanonical(dst []byte, e *Event) []byte {
	dst = append(dst, hashDomain...)
	dst = appendField(dst, e.StreamID)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.Version))
	dst = appendField(dst, e.EventID)
	dst = appendField(dst, e.Type)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.SchemaVersion))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.OccurredAt.Unix()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(e.OccurredAt.Nanosecond()))
	dst = appendField(dst, e.Metadata.CorrelationID)
	dst = appendField(dst, e.Metadata.CausationID)
	dst = appendField(dst, e.Metadata.RequestID)
	dst = appendField(dst, e.Metadata.TraceParent)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(e.Data)))
	return append(dst, e.Data...)
}

func appendField(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// EventHash returns the hash of e chained to prev, its predecessor's hash
// (the zero Hash for version 1): SHA-256(AppendCanonical(e) || prev).
func EventHash(e *Event, prev Hash) Hash {
	h := sha256.New()
	return FinishHash(h, AppendCanonical(nil, e), prev)
}

// FinishHash resets h (a SHA-256), writes the canonical encoding canon and
// prev, and returns the sum: EventHash for callers that reuse their hasher
// and buffer.
func FinishHash(h hash.Hash, canon []byte, prev Hash) Hash {
	h.Reset()
	h.Write(canon)
	h.Write(prev[:])
	var out Hash
	h.Sum(out[:0])
	return out
}

// ChainBreak is the first place a stream's chain does not hold.
type ChainBreak struct {
	StreamID string `json:"stream_id"`
	// Version is the version at which the chain breaks (the first missing
	// one when events are missing).
	Version int64 `json:"version"`
	// Reason says what is wrong, in a few words.
	Reason string `json:"reason"`
}

func (b *ChainBreak) Error() string {
	return fmt.Sprintf("eventstore: order %s: chain broken at version %d: %s", b.StreamID, b.Version, b.Reason)
}

// VerifyChain checks the chain of one whole stream as loaded from the store
// (versions from 1, in order, with the stored bytes: never upcast data). It
// returns nil when the chain holds, else the first break: a version missing
// or out of place, an event without a hash, a PrevHash that is not its
// predecessor's Hash, or a Hash that is not the hash of what is stored.
// An empty stream holds trivially.
func VerifyChain(stream string, events []Event) *ChainBreak {
	var prev Hash
	h := sha256.New()
	var buf []byte
	for i := range events {
		e := &events[i]
		want := int64(i + 1)
		brk := func(format string, args ...any) *ChainBreak {
			return &ChainBreak{StreamID: stream, Version: want, Reason: fmt.Sprintf(format, args...)}
		}
		switch {
		case e.StreamID != stream:
			return brk("event of stream %q in its place", e.StreamID)
		case e.Version != want:
			return brk("version %d found where %d belongs", e.Version, want)
		case e.Hash.IsZero():
			return brk("event has no hash (stored before the chain: run ledger audit migrate)")
		case e.PrevHash != prev:
			return brk("prev_hash %s is not the hash of version %d (%s)", short(e.PrevHash), want-1, short(prev))
		}
		buf = AppendCanonical(buf[:0], e)
		if got := FinishHash(h, buf, prev); got != e.Hash {
			return brk("stored hash %s, but what is stored hashes to %s", short(e.Hash), short(got))
		}
		prev = e.Hash
	}
	return nil
}

func short(h Hash) string { return h.String()[:12] }
