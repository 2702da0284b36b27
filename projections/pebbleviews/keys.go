package pebbleviews

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/projections"
)

// On-disk layout of one generation (one pebble database). The first byte of
// a key names its keyspace. Stored formats change only by adding a format.
//
//	'v' orderID                          -> view record
//	'a' order                            -> empty (every order, newest first)
//	's' status order                     -> empty (by status)
//	'u' string(customer) order           -> empty (by customer; with a status
//	                                        filter too, the views are checked)
//	'n' status                           -> count of orders in status (8 bytes, big endian)
//	'c' consumer                         -> checkpoint: feed position (8 bytes, big endian)
//	'm' "state"                          -> "building" or "live"
//
// status is one byte (P, C, F, X; '?' for a view without a valid status).
// order sorts newest first: ^(unix seconds ^ 1<<63) (8 bytes, big endian),
// ^nanoseconds (4 bytes, big endian), every byte of the order ID inverted,
// then 0xFF; so a List is one forward scan of an index, a cursor is the
// order part of the last key returned, and the order ID is read back from
// the key. Indexes hold keys only: a view is written once in full, which
// keeps rebuilds fast, and a page costs one point lookup per item.
//
// View record, format 1: byte 1, then uvarint version, strings order ID,
// customer, product, status, failure reason, payment ID, reservation ID,
// varint quantity, varint amount, varint/uvarint created at (Unix seconds,
// nanoseconds), varint/uvarint updated at; a string is uvarint length and
// bytes.
const (
	keyView       = 'v'
	keyAll        = 'a'
	keyStatus     = 's'
	keyCustomer   = 'u'
	keyCount      = 'n'
	keyCheckpoint = 'c'
	keyMeta       = 'm'

	viewFormat1 = 1
)

var (
	metaStateKey  = []byte{keyMeta, 's', 't', 'a', 't', 'e'}
	stateBuilding = []byte("building")
	stateLive     = []byte("live")
)

func statusByte(s order.Status) byte {
	switch s {
	case order.StatusPending:
		return 'P'
	case order.StatusCompleted:
		return 'C'
	case order.StatusFailed:
		return 'F'
	case order.StatusCancelled:
		return 'X'
	}
	return '?'
}

func viewKey(dst []byte, id string) []byte { return append(append(dst, keyView), id...) }

func countKey(s order.Status) []byte { return []byte{keyCount, statusByte(s)} }

func checkpointKey(consumer string) []byte { return append([]byte{keyCheckpoint}, consumer...) }

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// appendOrder appends the newest-first sort key of v.
func appendOrder(dst []byte, createdAt time.Time, id string) []byte {
	dst = binary.BigEndian.AppendUint64(dst, ^(uint64(createdAt.Unix()) ^ 1<<63))
	dst = binary.BigEndian.AppendUint32(dst, ^uint32(createdAt.Nanosecond()))
	i := 0
	for ; i+8 <= len(id); i += 8 {
		x := uint64(id[i]) | uint64(id[i+1])<<8 | uint64(id[i+2])<<16 | uint64(id[i+3])<<24 |
			uint64(id[i+4])<<32 | uint64(id[i+5])<<40 | uint64(id[i+6])<<48 | uint64(id[i+7])<<56
		dst = binary.LittleEndian.AppendUint64(dst, ^x)
	}
	for ; i < len(id); i++ {
		dst = append(dst, ^id[i])
	}
	return append(dst, 0xFF)
}

// indexPrefix returns the prefix of the index that serves a query on status
// and customer (either may be empty; with both, the customer index).
func indexPrefix(dst []byte, status order.Status, customer string) []byte {
	switch {
	case customer != "":
		return appendString(append(dst, keyCustomer), customer)
	case status != "":
		return append(dst, keyStatus, statusByte(status))
	}
	return append(dst, keyAll)
}

// indexSpaces are the keyspaces of the three indexes, in the order of
// indexKeys.
var indexSpaces = [3]byte{keyAll, keyStatus, keyCustomer}

// indexKeys returns the three index keys of v.
func indexKeys(v projections.View) [3][]byte {
	var ks [3][]byte
	for i := range ks {
		ks[i] = appendIndexKey(nil, i, v)
	}
	return ks
}

// appendIndexKey appends the key of v in index i (see indexSpaces).
func appendIndexKey(dst []byte, i int, v projections.View) []byte {
	switch i {
	case 0:
		dst = append(dst, keyAll)
	case 1:
		dst = append(dst, keyStatus, statusByte(v.Status))
	default:
		dst = appendString(append(dst, keyCustomer), v.CustomerName)
	}
	return appendOrder(dst, v.CreatedAt, v.OrderID)
}

// orderLen is the length of the order part of an index key for an ID of n bytes.
func orderLen(n int) int { return 12 + n + 1 }

// orderID reads the order ID back from the order part of an index key.
func orderID(order []byte) (string, bool) {
	if len(order) < orderLen(1) || order[len(order)-1] != 0xFF {
		return "", false
	}
	id := make([]byte, len(order)-orderLen(0))
	for i := range id {
		id[i] = ^order[12+i]
	}
	return string(id), true
}

func appendTime(dst []byte, t time.Time) []byte {
	return binary.AppendUvarint(binary.AppendVarint(dst, t.Unix()), uint64(t.Nanosecond()))
}

// encodeView appends the view record of v.
func encodeView(dst []byte, v projections.View) []byte {
	dst = append(dst, viewFormat1)
	dst = binary.AppendUvarint(dst, uint64(v.Version))
	for _, s := range [...]string{v.OrderID, v.CustomerName, v.ProductName, string(v.Status), v.FailureReason, v.PaymentID, v.ReservationID} {
		dst = appendString(dst, s)
	}
	dst = binary.AppendVarint(dst, int64(v.Quantity))
	dst = binary.AppendVarint(dst, v.Amount)
	dst = appendTime(dst, v.CreatedAt)
	return appendTime(dst, v.UpdatedAt)
}

var errCorrupt = errors.New("corrupt view record")

type reader struct {
	b   []byte
	bad bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) time() time.Time {
	sec := r.varint()
	ns := r.uvarint()
	if ns >= 1e9 {
		r.bad = true
	}
	return time.Unix(sec, int64(ns)).UTC()
}

// decodeView decodes a view record (copying what it keeps).
func decodeView(b []byte) (projections.View, error) {
	if len(b) == 0 || b[0] != viewFormat1 {
		return projections.View{}, errCorrupt
	}
	r := reader{b: b[1:]}
	var v projections.View
	ver := r.uvarint()
	if ver > math.MaxInt64 {
		r.bad = true
	}
	v.Version = int64(ver)
	v.OrderID = r.string()
	v.CustomerName = r.string()
	v.ProductName = r.string()
	v.Status = order.Status(r.string())
	v.FailureReason = r.string()
	v.PaymentID = r.string()
	v.ReservationID = r.string()
	v.Quantity = int(r.varint())
	v.Amount = r.varint()
	v.CreatedAt = r.time()
	v.UpdatedAt = r.time()
	if r.bad || len(r.b) != 0 {
		return projections.View{}, errCorrupt
	}
	return v, nil
}
