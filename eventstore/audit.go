package eventstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strconv"
	"time"
)

// Head is a stream's last version and that event's hash.
type Head struct {
	StreamID string `json:"stream_id"`
	Version  int64  `json:"version"`
	Hash     Hash   `json:"hash"`
}

// Auditable is implemented by stores whose every stream can be listed and
// whose events stored before the audit chain can be hashed: what ledger
// audit needs besides Load.
type Auditable interface {
	// Heads calls fn with the head of every stream, once each, in no
	// particular order (never concurrently).
	Heads(ctx context.Context, fn func(Head) error) error
	// Migrate hashes every event stored without a hash, oldest first in
	// each stream, so that every stream's chain holds. It is resumable:
	// what it wrote survives an interruption, and a second run carries on
	// from there (nothing left to do: a report of zero events). It never
	// rewrites an event that has a hash. progress, when not nil, is called
	// after each stream it looked at.
	Migrate(ctx context.Context, progress func(MigrateReport)) (MigrateReport, error)
}

// MigrateReport says what Migrate did.
type MigrateReport struct {
	// Streams is how many streams were looked at.
	Streams int `json:"streams"`
	// MigratedStreams is how many of them had events without a hash.
	MigratedStreams int `json:"migrated_streams"`
	// Events is how many events were hashed.
	Events int64 `json:"events"`
}

// FeedDigester is implemented by stores with a global feed (the embedded
// one): the running digest over the feed proves that no event was removed
// from it, reordered in it or changed in place.
type FeedDigester interface {
	// FeedDigest folds the feed from position 1 to upTo (0: to the head)
	// into one hash (see FeedDigest). It fails with a *FeedBreak when the
	// feed has a gap or a record whose hash is not the hash of what it
	// holds.
	FeedDigest(ctx context.Context, upTo uint64) (FeedDigest, error)
}

// FeedDigest is the running digest of the feed up to Position:
//
//	D(0) = 32 zero bytes
//	D(p) = SHA-256( "orderledger.feed.v1" 0x00 || D(p-1) || p (8 bytes, big endian) || Hash(p) )
//
// where Hash(p) is the Hash of the event at position p, recomputed from
// what the feed record holds (EventHash with its PrevHash). An unhashed
// event (not yet migrated) counts with the hash it would have as a first
// version (EventHash with the zero PrevHash).
type FeedDigest struct {
	Position uint64 `json:"position"`
	Digest   Hash   `json:"digest"`
}

// FeedBreak reports where the feed does not hold.
type FeedBreak struct {
	Position uint64 `json:"position"`
	StreamID string `json:"stream_id,omitempty"`
	Version  int64  `json:"version,omitempty"`
	Reason   string `json:"reason"`
}

func (b *FeedBreak) Error() string {
	if b.StreamID != "" {
		return "eventstore: feed position " + strconv.FormatUint(b.Position, 10) + " (order " + b.StreamID + " version " + strconv.FormatInt(b.Version, 10) + "): " + b.Reason
	}
	return "eventstore: feed position " + strconv.FormatUint(b.Position, 10) + ": " + b.Reason
}

// FeedFolder folds feed events into a FeedDigest, one position at a time.
type FeedFolder struct {
	d   FeedDigest
	buf []byte
}

// Add folds the event at the next position into the digest. It returns a
// *FeedBreak when e is not at that position or its Hash is not the hash of
// what it holds.
func (f *FeedFolder) Add(e *Event) error {
	next := f.d.Position + 1
	if e.Position != next {
		return &FeedBreak{Position: next, Reason: "missing: the feed goes on at position " + strconv.FormatUint(e.Position, 10)}
	}
	h := e.Hash
	if h.IsZero() {
		h = EventHash(e, Hash{})
	} else if got := EventHash(e, e.PrevHash); got != h {
		return &FeedBreak{Position: next, StreamID: e.StreamID, Version: e.Version, Reason: "stored hash " + short(h) + ", but what is stored hashes to " + short(got)}
	}
	f.buf = append(f.buf[:0], feedDomain...)
	f.buf = append(f.buf, f.d.Digest[:]...)
	f.buf = binary.BigEndian.AppendUint64(f.buf, next)
	f.buf = append(f.buf, h[:]...)
	f.d = FeedDigest{Position: next, Digest: sha256.Sum256(f.buf)}
	return nil
}

// Digest returns the digest of every event added so far.
func (f *FeedFolder) Digest() FeedDigest { return f.d }

const feedDomain = "orderledger.feed.v1\x00"

// DigestFormat names the layout of a Digest.
const DigestFormat = "orderledger.digest.v1"

// Digest is a snapshot of the whole log to keep where the ledger's writers
// cannot reach it (ledger audit digest writes one; ledger audit verify
// --digest checks the log against it): every stream's head and, on a store
// with a global feed, the feed's running digest. Any event removed, cut off
// or changed since, a whole stream included, shows against it.
type Digest struct {
	Format  string    `json:"format"`
	Backend string    `json:"backend"`
	TakenAt time.Time `json:"taken_at"`
	// Streams is how many streams there were; Events how many events
	// (the sum of the heads' versions).
	Streams int   `json:"streams"`
	Events  int64 `json:"events"`
	// Root is HeadsRoot(Heads): one hash for the record a store keeps.
	Root Hash `json:"root"`
	// Feed is the feed's running digest (stores with a global feed).
	Feed *FeedDigest `json:"feed,omitempty"`
	// Heads holds every stream's head, ordered by stream ID.
	Heads []Head `json:"heads"`
}

// HeadsRoot sorts heads by stream ID (in place) and returns
//
//	SHA-256( "orderledger.heads.v1" 0x00 || for each head: str(stream ID) || version (8 bytes) || hash )
//
// with str as in the canonical encoding (4-byte big-endian length, bytes).
func HeadsRoot(heads []Head) Hash {
	slices.SortFunc(heads, func(a, b Head) int { return cmp.Compare(a.StreamID, b.StreamID) })
	h := sha256.New()
	h.Write([]byte("orderledger.heads.v1\x00"))
	var buf []byte
	for _, hd := range heads {
		buf = appendField(buf[:0], hd.StreamID)
		buf = binary.BigEndian.AppendUint64(buf, uint64(hd.Version))
		buf = append(buf, hd.Hash[:]...)
		h.Write(buf)
	}
	var out Hash
	h.Sum(out[:0])
	return out
}

// DigestRecorder is implemented by stores that keep the digests they are
// asked to take as records of their own (DynamoDB: one item per digest).
type DigestRecorder interface {
	RecordDigest(ctx context.Context, d Digest) error
}
