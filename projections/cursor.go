package projections

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
)

// Cursors seals list cursors for a read model and opens them again. A
// cursor is the read model's position after the last item of a page (its
// own bytes) with an HMAC-SHA256 over the position and the query's filters,
// so a cursor with a character changed, or reused with another status or
// customer, is ErrBadCursor rather than some other page. The page size is
// not bound: a client may change it between pages.
//
// The key decides who can make cursors: an adapter keeps one per store,
// where every server of that store finds the same one without
// configuration, so a cursor still works after a restart.
type Cursors struct {
	key []byte
}

// MinCursorKey is the shortest key NewCursors takes, in bytes.
const MinCursorKey = 16

const (
	cursorFormat1 = 1
	cursorMACLen  = 16 // bytes of the HMAC kept: 128 bits
)

var cursorEncoding = base64.RawURLEncoding.Strict()

// NewCursors returns the cursors sealed with key (at least MinCursorKey bytes).
func NewCursors(key []byte) (*Cursors, error) {
	if len(key) < MinCursorKey {
		return nil, errors.New("projections: new cursors: the key is shorter than 16 bytes")
	}
	return &Cursors{key: append([]byte(nil), key...)}, nil
}

// Seal returns the cursor of position for the filters of q.
func (c *Cursors) Seal(q ListQuery, position []byte) string {
	b := make([]byte, 0, 1+len(position)+cursorMACLen)
	b = append(b, cursorFormat1)
	b = append(b, position...)
	return cursorEncoding.EncodeToString(append(b, c.mac(q, position)...))
}

// Open returns the position a cursor from Seal holds, or ErrBadCursor when
// the cursor was not sealed for the filters of q with this key.
func (c *Cursors) Open(q ListQuery, cursor string) ([]byte, error) {
	b, err := cursorEncoding.DecodeString(cursor)
	if err != nil || len(b) < 1+cursorMACLen || b[0] != cursorFormat1 {
		return nil, ErrBadCursor
	}
	position, sum := b[1:len(b)-cursorMACLen], b[len(b)-cursorMACLen:]
	if !hmac.Equal(sum, c.mac(q, position)) {
		return nil, ErrBadCursor
	}
	return position, nil
}

// mac is the truncated HMAC of the filters and the position, each
// length-prefixed so that no two inputs run together.
func (c *Cursors) mac(q ListQuery, position []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	var b []byte
	b = append(b, "orderledger list cursor 1\x00"...)
	for _, part := range [...][]byte{[]byte(q.Status), []byte(q.Customer), position} {
		b = binary.AppendUvarint(b, uint64(len(part)))
		b = append(b, part...)
	}
	m.Write(b)
	return m.Sum(nil)[:cursorMACLen]
}
