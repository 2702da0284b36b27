// Package eventstore is the event store contract of orderledger: the
// envelope every stored event travels in, the Store port with its typed
// conflict error, and the optional global change feed with consumer
// checkpoints. It knows no aggregate: what an event's Data means belongs to
// the code that owns the event types (package orders holds the order codec
// and its upcasters).
//
// Backends live in sub-packages (pebblestore, dynamostore) and all pass the
// one conformance suite in package storetest.
//
// # The audit chain
//
// Every stream is a hash chain. At append, in the same atomic write as the
// event itself, the store sets the event's PrevHash to the Hash of the
// stream's previous version (the zero hash, 32 zero bytes, for version 1)
// and its Hash to
//
//	Hash = SHA-256( canonical(event) || PrevHash )
//
// where canonical(event) is, byte for byte (integers big endian, "str" a
// 4-byte big-endian length followed by that many bytes):
//
//	21 bytes  "orderledger.event.v1" followed by one zero byte
//	str       stream ID (UTF-8)
//	8 bytes   version (unsigned)
//	str       event ID
//	str       type
//	8 bytes   schema version (unsigned)
//	8 bytes   occurred at: Unix seconds (signed, two's complement)
//	4 bytes   occurred at: nanoseconds within the second (0..999999999)
//	str       metadata correlation ID ("" when absent)
//	str       metadata causation ID
//	str       metadata request ID
//	str       metadata traceparent
//	str       data: the JSON body exactly as stored (never upcast or
//	          re-encoded; DynamoDB stores an empty body as "{}", and that is
//	          what is hashed there)
//
// and PrevHash is its 32 raw bytes. The global feed position is not hashed
// (only the embedded backend has one; its order is proved by the feed
// digest instead). AppendCanonical and EventHash implement exactly this;
// VerifyChain re-checks a stream loaded from the store, from stored bytes:
// upcasting happens in the codec above the store and never changes what is
// verified. Hashes are shown as 64 lowercase hex digits.
//
// What the chain proves: an event changed in place no longer hashes to its
// Hash, and an event removed from or moved within its stream leaves a
// PrevHash that is not its predecessor's Hash, unless whoever changed it
// rewrote every later hash of the stream too. What it cannot prove by
// itself: that a stream's newest events (or the whole stream) were not cut
// off. A digest taken earlier and kept where the ledger's writers cannot
// reach it proves that (Digest, HeadsRoot and FeedDigest state exactly what
// it holds; ledger audit digest takes one, ledger audit verify --digest
// checks the log against it).
//
// Events stored before the chain existed have zero hashes; the store never
// hashes an event after an unhashed one, so unhashed events are always a
// stream's tail, and Auditable.Migrate (ledger audit migrate) hashes them.
package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/orderledger/orderledger/domain"
)

// Event is the envelope of one stored event. Every field is stored forever.
type Event struct {
	// EventID is a ULID unique across the whole log; consumers de-duplicate by it.
	EventID string `json:"event_id"`
	// StreamID is the stream (the order ID) the event belongs to.
	StreamID string `json:"stream_id"`
	// Version is the event's position in its stream: 1..n, gap-free.
	Version int64 `json:"version"`
	// Type is the event type name, e.g. "OrderPlaced".
	Type string `json:"type"`
	// SchemaVersion is the version of Data's shape for Type, from 1.
	SchemaVersion int `json:"schema_version"`
	// OccurredAt is when the event happened (UTC, from the injected clock).
	OccurredAt time.Time `json:"occurred_at"`
	// Data is the event body as JSON.
	Data json.RawMessage `json:"data"`
	// Metadata carries tracing identifiers.
	Metadata Metadata `json:"metadata"`
	// Position is the event's place in the global change feed (from 1,
	// gap-free, commit order). Zero for backends without a global feed.
	// Assigned by the store; ignored on Append.
	Position uint64 `json:"position,omitempty"`
	// PrevHash is the Hash of the event before this one in its stream (the
	// zero Hash for version 1). Assigned by the store; ignored on Append.
	PrevHash Hash `json:"prev_hash,omitzero"`
	// Hash is the event's own hash over what is stored, chained to
	// PrevHash (see "The audit chain" above). Assigned by the store at
	// append, in the same atomic write; ignored on Append. Zero for an
	// event stored before the chain existed and not yet migrated.
	Hash Hash `json:"hash,omitzero"`
}

// Metadata carries the identifiers that tie an event to its cause.
type Metadata struct {
	// CorrelationID ties together every event of one business flow.
	CorrelationID string `json:"correlation_id,omitempty"`
	// CausationID is the ID of the event or message that caused this one.
	CausationID string `json:"causation_id,omitempty"`
	// RequestID is the X-Request-ID of the HTTP request that caused it.
	RequestID string `json:"request_id,omitempty"`
	// TraceParent is the W3C Trace Context traceparent of the span that
	// appended the event ("00-<trace ID>-<span ID>-<flags>"), so that the
	// work an event causes (the saga's steps, the notification) continues
	// the trace of the request that started it. Empty when there was no
	// trace (tracing off and no traceparent in the request).
	TraceParent string `json:"traceparent,omitempty"`
}

// Result is the outcome of an append.
type Result struct {
	// StreamID is the stream appended to. For a repeated idempotency key it is
	// the stream of the original append, which may differ from the one asked.
	StreamID string `json:"stream_id"`
	// Version is the stream's version after the append.
	Version int64 `json:"version"`
	// Duplicate is true when the idempotency key had been used: nothing was
	// appended and StreamID/Version are those of the original append.
	Duplicate bool `json:"duplicate,omitempty"`
}

// Store is the event store port.
type Store interface {
	// Append appends events to streamID if the stream's current version is
	// expected (0 for a new stream), atomically: all or none. It returns a
	// *ConflictError when the version differs. The store fills in Version and
	// Position; callers set everything else.
	Append(ctx context.Context, streamID string, expected int64, events ...Event) (Result, error)
	// AppendIdempotent is Append carrying an idempotency key: when key has
	// been used before, it appends nothing and returns the original Result
	// with Duplicate set, whatever streamID and events say now.
	AppendIdempotent(ctx context.Context, key, streamID string, expected int64, events ...Event) (Result, error)
	// Load returns the events of streamID with Version >= from, in order;
	// an unknown stream has none.
	Load(ctx context.Context, streamID string, from int64) ([]Event, error)
}

// Feed is the global change feed of backends that have one: every event in
// commit order, positions 1..n without gaps.
type Feed interface {
	// ReadFeed returns up to limit events with Position > after, in order.
	ReadFeed(ctx context.Context, after uint64, limit int) ([]Event, error)
	// Head returns the position of the last committed event (0 when empty).
	Head(ctx context.Context) (uint64, error)
	// WaitFeed blocks until Head > after or ctx ends.
	WaitFeed(ctx context.Context, after uint64) error
}

// Checkpoints stores durable consumer positions in the feed.
type Checkpoints interface {
	// Checkpoint returns the last position consumer saved (0 when none).
	Checkpoint(ctx context.Context, consumer string) (uint64, error)
	// SaveCheckpoint durably records that consumer has handled every event
	// up to and including pos.
	SaveCheckpoint(ctx context.Context, consumer string, pos uint64) error
}

// ConflictError reports that an append expected a stream version that was
// not the current one. Check for it with errors.As.
type ConflictError struct {
	StreamID string
	Expected int64
	Actual   int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("eventstore: conflict on stream %s: expected version %d, actual %d", e.StreamID, e.Expected, e.Actual)
}

// DomainCode makes a conflict a precondition failure for the API (HTTP 412
// when the client sent If-Match; callers that retry reload and decide again).
func (e *ConflictError) DomainCode() domain.Code { return domain.PreconditionFailed }

// ErrClosed is returned by a store used after Close.
var ErrClosed = domain.Errorf(domain.Unavailable, "eventstore: store is closed")
