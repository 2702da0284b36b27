package pebblequeue

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
)

// A record is stored in a compact binary form, version recordV1:
//
//	0x01
//	id             uvarint length, bytes
//	body           uvarint length, bytes
//	attributes     uvarint count, then each key and value (uvarint
//	               length, bytes), keys ascending
//	receive count  uvarint
//	visible at     varint (unix ns)
//	sent at        varint (unix ns)
//	flags          one byte: 1 returned, 2 forgiven
//	dead-lettered  uvarint length, bytes (the queue; empty when not)
//	dead count     uvarint
//
// It replaced JSON (where the body was base64), which cost a quarter of the
// broker's CPU, all of it under the broker's mutex. Records written as JSON
// by earlier versions (they begin with '{') are still read; every write
// stores the binary form.
const recordV1 = 0x01

const (
	flagReturned = 1 << iota
	flagForgiven
)

// encodeRecord appends the stored form of rec to dst.
func encodeRecord(dst []byte, rec *record) []byte {
	dst = append(dst, recordV1)
	dst = appendBytes(dst, rec.ID)
	dst = appendBytes(dst, rec.Body)
	dst = binary.AppendUvarint(dst, uint64(len(rec.Attributes)))
	keys := make([]string, 0, len(rec.Attributes))
	for k := range rec.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		dst = appendBytes(dst, k)
		dst = appendBytes(dst, rec.Attributes[k])
	}
	dst = binary.AppendUvarint(dst, uint64(max(rec.ReceiveCount, 0)))
	dst = binary.AppendVarint(dst, rec.VisibleAt)
	dst = binary.AppendVarint(dst, rec.SentAt)
	var flags byte
	if rec.Returned {
		flags |= flagReturned
	}
	if rec.Forgiven {
		flags |= flagForgiven
	}
	dst = append(dst, flags)
	dst = appendBytes(dst, rec.DeadLetteredFrom)
	return binary.AppendUvarint(dst, uint64(max(rec.DeadReceiveCount, 0)))
}

func appendBytes[T string | []byte](dst []byte, b T) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

var errCorrupt = errors.New("corrupt record")

// decodeRecord decodes a stored record, binary or (from earlier versions)
// JSON. The record does not alias b.
func decodeRecord(b []byte) (*record, error) {
	if len(b) > 0 && b[0] == '{' {
		var rec record
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, err
		}
		return &rec, nil
	}
	if len(b) == 0 || b[0] != recordV1 {
		return nil, errCorrupt
	}
	d := decoder{b: b[1:]}
	rec := &record{ID: string(d.bytes())}
	if body := d.bytes(); body != nil {
		rec.Body = slices.Clone(body)
	} else {
		rec.Body = []byte{}
	}
	if n := d.uvarint(); n > 0 && d.err == nil {
		if n > uint64(len(d.b)) {
			return nil, errCorrupt
		}
		rec.Attributes = make(map[string]string, n)
		for range n {
			k := string(d.bytes())
			rec.Attributes[k] = string(d.bytes())
		}
	}
	rec.ReceiveCount = int(d.uvarint())
	rec.VisibleAt = d.varint()
	rec.SentAt = d.varint()
	flags := d.byte()
	rec.Returned, rec.Forgiven = flags&flagReturned != 0, flags&flagForgiven != 0
	rec.DeadLetteredFrom = string(d.bytes())
	rec.DeadReceiveCount = int(d.uvarint())
	if d.err != nil || len(d.b) != 0 {
		return nil, errCorrupt
	}
	return rec, nil
}

// decoder reads the fields of a binary record; the first failure sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err, d.b = errCorrupt, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err, d.b = errCorrupt, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.err = errCorrupt
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// bytes returns the next length-prefixed field, aliasing the input.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err, d.b = errCorrupt, nil
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
