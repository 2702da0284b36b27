package pebblestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"strconv"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/pebblelog"
)

var (
	_ eventstore.Auditable    = (*Store)(nil)
	_ eventstore.FeedDigester = (*Store)(nil)
)

// decodeOne decodes one record into a fresh event that owns its memory.
func decodeOne(v []byte) (eventstore.Event, error) {
	rec := append([]byte(nil), v...)
	var e eventstore.Event
	s := unsafe.String(unsafe.SliceData(rec), len(rec))
	n, err := decodeFields(s, 0, &e)
	if err != nil {
		return e, err
	}
	if n > 0 {
		e.Data = rec[len(rec)-n:]
	}
	return e, nil
}

// streamOf returns the stream ID of a stream key, and the key's prefix up to
// and including it.
func streamOf(k []byte) (string, []byte, bool) {
	if len(k) < 2 || k[0] != prefixStream || len(k) != 2+int(k[1])+8 {
		return "", nil, false
	}
	return string(k[2 : 2+int(k[1])]), k[:2+int(k[1])], true
}

// Heads implements eventstore.Auditable: one seek per stream, never beyond
// the durable feed head.
func (s *Store) Heads(ctx context.Context, fn func(eventstore.Head) error) error {
	return s.read(func() error {
		head := s.head.Load()
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixStream}, UpperBound: []byte{prefixStream + 1}})
		if err != nil {
			return storageErr("heads", err)
		}
		defer it.Close()
		for ok := it.First(); ok; {
			if err := ctx.Err(); err != nil {
				return err
			}
			stream, prefix, valid := streamOf(it.Key())
			if !valid {
				return corruptErr("heads", it.Key())
			}
			// Versions are at most MaxInt64, so no key is the all-ones one.
			end := binary.BigEndian.AppendUint64(bytes.Clone(prefix), ^uint64(0))
			var h eventstore.Head
			for ok = it.SeekLT(end); ok; ok = it.Prev() {
				k := it.Key()
				if !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+8 {
					break
				}
				v, err := it.ValueAndErr()
				if err != nil {
					return storageErr("heads", err)
				}
				pos, err := recordPosition(v)
				if err != nil {
					return corruptErr("heads", k)
				}
				if pos > head {
					continue // not durable yet
				}
				hash, _ := recordHash(v)
				h = eventstore.Head{StreamID: stream, Version: int64(binary.BigEndian.Uint64(k[len(prefix):])), Hash: hash}
				break
			}
			if h.Version > 0 {
				if err := fn(h); err != nil {
					return err
				}
			}
			ok = it.SeekGE(end)
		}
		if err := it.Error(); err != nil {
			return storageErr("heads", err)
		}
		return nil
	})
}

// FeedDigest implements eventstore.FeedDigester: it reads the feed from
// position 1, checking each record's hash, up to upTo (0: the head).
func (s *Store) FeedDigest(ctx context.Context, upTo uint64) (eventstore.FeedDigest, error) {
	var f eventstore.FeedFolder
	err := s.read(func() error {
		head := s.head.Load()
		if upTo == 0 {
			upTo = head
		}
		if upTo > head {
			return &eventstore.FeedBreak{Position: head + 1, Reason: "missing: the feed ends at position " + strconv.FormatUint(head, 10)}
		}
		lo := feedKey(nil, 1)
		hi := feedKey(nil, upTo+1)
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return storageErr("feed digest", err)
		}
		defer it.Close()
		n := 0
		for ok := it.First(); ok; ok = it.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return storageErr("feed digest", err)
			}
			e, err := decodeOne(v)
			if err != nil {
				return corruptErr("feed digest", it.Key())
			}
			if k := it.Key(); binary.BigEndian.Uint64(k[1:]) != e.Position {
				return &eventstore.FeedBreak{Position: binary.BigEndian.Uint64(k[1:]), StreamID: e.StreamID, Version: e.Version,
					Reason: "holds the event of position " + strconv.FormatUint(e.Position, 10)}
			}
			if err := f.Add(&e); err != nil {
				return err
			}
		}
		if err := it.Error(); err != nil {
			return storageErr("feed digest", err)
		}
		if got := f.Digest().Position; got < upTo {
			return &eventstore.FeedBreak{Position: got + 1, Reason: "missing: the feed ends at position " + strconv.FormatUint(got, 10)}
		}
		return nil
	})
	if err != nil {
		return eventstore.FeedDigest{}, err
	}
	return f.Digest(), nil
}

// migrateBatch is how many events Migrate rewrites per durable batch.
var migrateBatch = 1000

// Migrate implements eventstore.Auditable: it rewrites each event stored
// without a hash (format 1, or format 2 with a zero hash) as a hashed
// format 3 record, under its stream key and its feed key in one batch,
// committed with pebble.Sync every migrateBatch events. Run it while no
// other writer appends (ledger audit migrate opens the directory, which
// pebble locks against a running server): an append racing it may store
// an unhashed event after it passed, which a second run hashes.
func (s *Store) Migrate(ctx context.Context, progress func(eventstore.MigrateReport)) (eventstore.MigrateReport, error) {
	var rep eventstore.MigrateReport
	err := s.read(func() error {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixStream}, UpperBound: []byte{prefixStream + 1}})
		if err != nil {
			return storageErr("migrate", err)
		}
		defer it.Close()
		b := s.db.NewBatch()
		defer func() { _ = b.Close() }()
		pending := 0
		commit := func() error {
			if pending == 0 {
				return nil
			}
			if err := pebblelog.CheckSpace("eventstore/pebblestore", "migrate", s.dir); err != nil {
				return err
			}
			if err := b.Commit(pebble.Sync); err != nil {
				return storageErr("migrate: commit", err)
			}
			// Same head, other bytes: pooled iterators must not serve them.
			s.iters.invalidate()
			_ = b.Close()
			b = s.db.NewBatch()
			pending = 0
			return nil
		}
		var (
			stream   string
			prev     eventstore.Hash
			migrated bool
		)
		endStream := func() {
			if stream == "" {
				return
			}
			rep.Streams++
			if migrated {
				rep.MigratedStreams++
			}
			if progress != nil {
				progress(rep)
			}
		}
		for ok := it.First(); ok; ok = it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := it.Key()
			st, _, valid := streamOf(k)
			if !valid {
				return corruptErr("migrate", k)
			}
			if st != stream {
				endStream()
				stream, prev, migrated = st, eventstore.Hash{}, false
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return storageErr("migrate", err)
			}
			e, err := decodeOne(v)
			if err != nil {
				return corruptErr("migrate", k)
			}
			if !e.Hash.IsZero() {
				prev = e.Hash
				continue
			}
			e.PrevHash = prev
			e.Hash = eventstore.EventHash(&e, prev)
			rec := encodeRecord(nil, e.StreamID, &e)
			setRecordPosition(rec, e.Position, e.Version)
			setRecordHashes(rec, e.PrevHash, e.Hash)
			s.set(b, k, rec)
			s.set(b, feedKey(nil, e.Position), rec)
			prev, migrated = e.Hash, true
			rep.Events++
			if pending++; pending >= migrateBatch {
				if err := commit(); err != nil {
					return err
				}
			}
		}
		if err := it.Error(); err != nil {
			return storageErr("migrate", err)
		}
		if err := commit(); err != nil {
			return err
		}
		endStream()
		return nil
	})
	if err != nil {
		return rep, err
	}
	return rep, nil
}
