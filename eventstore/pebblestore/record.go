package pebblestore

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
	"unsafe"

	"github.com/orderledger/orderledger/eventstore"
)

// On-disk layout. One pebble database holds everything; the first byte of a
// key names its keyspace. These formats are stored forever: change them only
// by adding a new record format byte and keeping the old decoder.
//
//	's' len(stream) stream version(8, big endian)  -> event record
//	'f' position(8, big endian)                     -> event record (the same bytes)
//	'i' idempotency key                             -> idempotency record
//	'c' consumer                                    -> checkpoint: position(8, big endian)
//	'm' "format"                                    -> "1"
//
// Every event is written twice in the same atomic batch, under its stream key
// and under its feed key, so that both Load (one stream) and the change feed
// (every stream in commit order) are sequential scans with no second lookup:
// that costs disk space and write bandwidth, which fsync latency dwarfs, and
// buys the load and replay rates. len(stream) is one byte, so stream IDs are
// at most 255 bytes and no stream's keys can be a prefix of another's.
//
// Event record, format 1 (integers are unsigned varints unless stated):
//
//	byte     format = 1
//	8 bytes  position, big endian
//	8 bytes  version, big endian
//	string   stream ID
//	string   event ID
//	string   type
//	uvarint  schema version
//	varint   occurred at, Unix seconds (signed)
//	uvarint  occurred at, nanoseconds within the second
//	string   correlation ID
//	string   causation ID
//	string   request ID
//	string   data (the JSON body, byte for byte)
//
// where string is uvarint length then the bytes. Position and version are
// fixed-width so the appender can encode a record before the sequencer knows
// them and the sequencer patches them in place.
//
// Event record, format 2 (written since the audit chain): format 1 with the
// format byte 2 and, right after the version,
//
//	32 bytes prev hash (eventstore.Event.PrevHash)
//	32 bytes hash (eventstore.Event.Hash; all zero: not hashed)
//
// both patched in place by the sequencer like the position. A format 1
// record reads with zero hashes; ledger audit migrate rewrites it as format
// 2 (Store.Migrate).
//
// Event record, format 3 (written since events carry a traceparent): format
// 2 with the format byte 3 and, right after the request ID,
//
//	string   traceparent (eventstore.Metadata.TraceParent)
//
// Formats 1 and 2 read with an empty traceparent. Store.Migrate writes
// format 3.
//
// Idempotency record, format 1: byte 1, uvarint version, then the stream ID.
const (
	prefixStream     = 's'
	prefixFeed       = 'f'
	prefixIdem       = 'i'
	prefixCheckpoint = 'c'
	prefixMeta       = 'm'

	recordFormat1 = 1
	recordFormat2 = 2
	recordFormat3 = 3
	// offsets of the fixed-width fields patched by the sequencer.
	offPosition = 1
	offVersion  = 9
	recordHead  = 17 // the fixed head of format 1
	offPrevHash = 17 // format 2 only
	offHash     = offPrevHash + eventstore.HashSize
	record2Head = offHash + eventstore.HashSize
)

var (
	metaFormatKey   = []byte{prefixMeta, 'f', 'o', 'r', 'm', 'a', 't'}
	metaFormatValue = []byte("1")
	errCorrupt      = errors.New("corrupt record")
)

// streamKey appends the key of (stream, version) to dst.
func streamKey(dst []byte, stream string, version uint64) []byte {
	dst = append(dst, prefixStream, byte(len(stream)))
	dst = append(dst, stream...)
	return binary.BigEndian.AppendUint64(dst, version)
}

// feedKey appends the key of a feed position to dst.
func feedKey(dst []byte, pos uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, prefixFeed), pos)
}

func idemKey(key string) []byte {
	return append([]byte{prefixIdem}, key...)
}

func checkpointKey(consumer string) []byte {
	return append([]byte{prefixCheckpoint}, consumer...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// encodeRecord appends e's record (format 3) to dst with position, version
// and hashes zero; the sequencer patches them (setRecordPosition,
// setRecordHashes).
func encodeRecord(dst []byte, stream string, e *eventstore.Event) []byte {
	dst = append(dst, recordFormat3)
	dst = append(dst, make([]byte, record2Head-1)...)
	return encodeRecordTail(dst, recordFormat3, stream, e)
}

// encodeRecordTail appends the fields of format after its head (format 3
// has the traceparent; 1 and 2 do not).
func encodeRecordTail(dst []byte, format byte, stream string, e *eventstore.Event) []byte {
	dst = appendString(dst, stream)
	dst = appendString(dst, e.EventID)
	dst = appendString(dst, e.Type)
	dst = binary.AppendUvarint(dst, uint64(e.SchemaVersion))
	dst = binary.AppendVarint(dst, e.OccurredAt.Unix())
	dst = binary.AppendUvarint(dst, uint64(e.OccurredAt.Nanosecond()))
	dst = appendString(dst, e.Metadata.CorrelationID)
	dst = appendString(dst, e.Metadata.CausationID)
	dst = appendString(dst, e.Metadata.RequestID)
	if format == recordFormat3 {
		dst = appendString(dst, e.Metadata.TraceParent)
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.Data)))
	return append(dst, e.Data...)
}

func setRecordPosition(rec []byte, pos uint64, version int64) {
	binary.BigEndian.PutUint64(rec[offPosition:], pos)
	binary.BigEndian.PutUint64(rec[offVersion:], uint64(version))
}

// setRecordHashes patches a format 2 or 3 record's hashes.
func setRecordHashes(rec []byte, prev, h eventstore.Hash) {
	copy(rec[offPrevHash:], prev[:])
	copy(rec[offHash:], h[:])
}

// recordPosition returns the feed position of a record without decoding it.
func recordPosition(rec []byte) (uint64, error) {
	if len(rec) < recordHead || (rec[0] != recordFormat1 && (!hashed(rec[0]) || len(rec) < record2Head)) {
		return 0, errCorrupt
	}
	return binary.BigEndian.Uint64(rec[offPosition:]), nil
}

// recordHash returns a record's own hash without decoding it (zero for
// format 1).
func recordHash(rec []byte) (eventstore.Hash, error) {
	var h eventstore.Hash
	if _, err := recordPosition(rec); err != nil {
		return h, err
	}
	if hashed(rec[0]) {
		copy(h[:], rec[offHash:record2Head])
	}
	return h, nil
}

// records collects records as an iterator yields them (pebble's value
// slices are only valid until the iterator moves) and decodes them all at
// once with a handful of allocations instead of two per event: every event
// points into one shared buffer, its string fields as strings and its Data
// as a sub-slice with capped capacity. No string covers a Data field's
// bytes, so the caller may change Data (or append to it, which copies)
// without changing any string. A retained string or Data keeps the whole
// buffer alive: that is the price of the speed.
//
// The aliasing rule: a string may point into the buffer only when the
// buffer is never written again (decode, for Load and ReadFeed, whose
// buffers are fresh). A buffer the caller hands back for reuse
// (ReadFeedInto) holds Data only: decodeOwned copies the page's strings
// into one fresh allocation of their own.
type records struct {
	raw  []byte
	ends []int
}

func (r *records) add(v []byte) {
	r.raw = append(r.raw, v...)
	r.ends = append(r.ends, len(r.raw))
}

// decode decodes the collected records into out[len(out):]. The strings
// point into r.raw, which must never be written again (see records).
func (r *records) decode(out []eventstore.Event) ([]eventstore.Event, error) {
	if len(r.ends) == 0 {
		return out, nil
	}
	// The strings are taken from bytes never written again; the Data
	// fields are the only bytes a caller may write, and no string covers
	// them.
	s := unsafe.String(unsafe.SliceData(r.raw), len(r.raw))
	start := 0
	for _, end := range r.ends {
		out = append(out, eventstore.Event{})
		e := &out[len(out)-1]
		n, err := decodeFields(s[:end], start, e)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			e.Data = r.raw[end-n : end : end]
		}
		start = end
	}
	return out, nil
}

// decodeOwned decodes the collected records into out[len(out):] as decode
// does, but with no string pointing into r.raw, which the caller may reuse:
// the page's strings are copied into one fresh buffer of exactly their size,
// which is never written again once a string covers it. Data still points
// into r.raw.
func (r *records) decodeOwned(out []eventstore.Event) ([]eventstore.Event, error) {
	first := len(out)
	out, err := r.decode(out)
	if err != nil {
		return nil, err
	}
	page := out[first:]
	n := 0
	for i := range page {
		e := &page[i]
		n += len(e.StreamID) + len(e.EventID) + len(e.Type) +
			len(e.Metadata.CorrelationID) + len(e.Metadata.CausationID) + len(e.Metadata.RequestID) +
			len(e.Metadata.TraceParent)
	}
	buf := make([]byte, 0, n) // never grows: every string below stays where it is
	own := func(f *string) {
		if len(*f) == 0 {
			return
		}
		at := len(buf)
		buf = append(buf, *f...)
		*f = unsafe.String(&buf[at], len(*f))
	}
	for i := range page {
		e := &page[i]
		own(&e.StreamID)
		own(&e.EventID)
		own(&e.Type)
		own(&e.Metadata.CorrelationID)
		own(&e.Metadata.CausationID)
		own(&e.Metadata.RequestID)
		own(&e.Metadata.TraceParent)
	}
	return out, nil
}

// decodeFields decodes the record s[start:] into e, all but Data, and returns
// the length of Data (the record's tail).
func decodeFields(s string, start int, e *eventstore.Event) (int, error) {
	head := recordHead
	switch {
	case len(s)-start < recordHead:
		return 0, errCorrupt
	case s[start] == recordFormat1:
	case hashed(s[start]) && len(s)-start >= record2Head:
		head = record2Head
		copy(e.PrevHash[:], s[start+offPrevHash:])
		copy(e.Hash[:], s[start+offHash:])
	default:
		return 0, errCorrupt
	}
	e.Position = be64(s[start+offPosition:])
	e.Version = int64(be64(s[start+offVersion:]))
	d := decoder{s: s, i: start + head}
	e.StreamID = d.str()
	e.EventID = d.str()
	e.Type = d.str()
	sv := d.uvarint()
	if sv > math.MaxInt32 {
		return 0, errCorrupt
	}
	e.SchemaVersion = int(sv)
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= 1e9 {
		return 0, errCorrupt
	}
	e.OccurredAt = time.Unix(sec, int64(nsec)).UTC()
	e.Metadata.CorrelationID = d.str()
	e.Metadata.CausationID = d.str()
	e.Metadata.RequestID = d.str()
	if s[start] == recordFormat3 {
		e.Metadata.TraceParent = d.str()
	}
	n := d.uvarint()
	if d.err != nil || n != uint64(len(s)-d.i) {
		return 0, errCorrupt
	}
	return int(n), nil
}

// hashed reports whether a record of format f carries the hashes (2 and 3).
func hashed(f byte) bool { return f == recordFormat2 || f == recordFormat3 }

func be64(s string) uint64 {
	_ = s[7]
	return uint64(s[7]) | uint64(s[6])<<8 | uint64(s[5])<<16 | uint64(s[4])<<24 |
		uint64(s[3])<<32 | uint64(s[2])<<40 | uint64(s[1])<<48 | uint64(s[0])<<56
}

type decoder struct {
	s   string
	i   int
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var v uint64
	var shift uint
	for j := 0; j < binary.MaxVarintLen64; j++ {
		if d.i >= len(d.s) {
			break
		}
		b := d.s[d.i]
		d.i++
		if b < 0x80 {
			return v | uint64(b)<<shift
		}
		v |= uint64(b&0x7f) << shift
		shift += 7
	}
	d.err = errCorrupt
	return 0
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.s)-d.i) {
		d.err = errCorrupt
		return ""
	}
	s := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return s
}

// encodeIdem and decodeIdem store the result of an idempotent append.
func encodeIdem(stream string, version int64) []byte {
	b := binary.AppendUvarint([]byte{recordFormat1}, uint64(version))
	return append(b, stream...)
}

func decodeIdem(v []byte) (string, int64, error) {
	if len(v) < 2 || v[0] != recordFormat1 {
		return "", 0, errCorrupt
	}
	ver, n := binary.Uvarint(v[1:])
	if n <= 0 || ver > math.MaxInt64 {
		return "", 0, errCorrupt
	}
	return string(v[1+n:]), int64(ver), nil
}
