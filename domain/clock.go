package domain

import (
	"crypto/rand"
	"io"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// Clock returns the current time. Handlers take one instead of calling
// time.Now, so tests and replays control time.
type Clock func() time.Time

// SystemClock is the wall clock in UTC.
func SystemClock() time.Time { return time.Now().UTC() }

// IDSource returns a new unique ID for the given time.
type IDSource func(t time.Time) string

// NewULIDSource returns an IDSource of monotonic ULIDs from entropy (crypto
// random when nil). It is safe for concurrent use.
func NewULIDSource(entropy io.Reader) IDSource {
	if entropy == nil {
		entropy = rand.Reader
	}
	var mu sync.Mutex
	mono := ulid.Monotonic(entropy, 0)
	return func(t time.Time) string {
		mu.Lock()
		defer mu.Unlock()
		return ulid.MustNew(ulid.Timestamp(t), mono).String()
	}
}

// ValidULID reports whether s is a canonical ULID string.
func ValidULID(s string) bool {
	if len(s) != ulid.EncodedSize {
		return false
	}
	_, err := ulid.ParseStrict(s)
	return err == nil
}
