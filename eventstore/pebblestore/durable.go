package pebblestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orderledger/orderledger/internal/walfs"
)

// The durable log is where an append becomes durable: the sequencer writes
// each group's pebble batch to it and syncs it (fdatasync) itself while the
// applier goroutine applies the same batch to pebble without a sync, then,
// once both are done, publishes the feed head and answers. Readers look no
// further than the published head, so an applied group is not seen before
// its sync has returned. Pebble's own
// commit path hands every synced batch to its log writer's goroutine and
// waits to be woken, which cost a quarter of each append's time here
// (BENCHMARKS.md, "Prewritten logs"); this log has no goroutine of its own.
//
// One file, durableLogName in the store's directory, of durableLogSize (16
// MiB) bytes written in advance (zeros, synced) when the disk has room, so that
// a sync writes no file metadata. Records follow each other from offset 0:
//
//	[0:4]   CRC-32C (Castagnoli) of bytes 4 to the end of the payload
//	[4:8]   payload length
//	[8:16]  epoch
//	[16:24] first feed position of the group
//	[24:32] last feed position of the group
//	[32:]   payload: the group's pebble batch (Batch.Repr)
//
// When the next record would pass the end, pebble's log is synced (every
// batch applied so far is then durable in pebble) and writing starts again
// at offset 0 with the next epoch. Reading stops at the first record that
// is torn (its CRC fails), empty, or of another epoch than the first: the
// rest of the file is an older epoch's, whose groups pebble already holds.
//
// Recovery (Open): pebble replays its own log, which holds every batch
// applied before a process crash (kill -9 leaves the page cache) but may
// lack an unsynced tail after a power loss; then each record whose first
// position follows pebble's feed head is applied, in order, and pebble is
// flushed (what it replayed from an unsynced log of its own is then
// durable too); the next record starts a new epoch at offset 0. A record
// at or below the head is already in pebble (a batch is atomic there) and
// is skipped, so a replay never applies a group twice or over a later
// write of the same keys (ledger audit migrate rewrites old records).
//
// A failed write or sync of this log is fatal, as a failed sync of
// pebble's log is (internal/pebblelog): the process ends and the append is
// never answered.
const (
	durableLogName   = "durable.log"
	durableLogSize   = 16 << 20
	durableHeader    = 32
	durablePrewrite  = 1 << 20 // the zeros are written in chunks of this size
	durableMaxRecord = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type durableLog struct {
	f     vfs.File
	size  int64
	off   int64
	epoch uint64
	// last and pending are the offset and size of the record written last;
	// pending is 0 once it is synced.
	last, pending int64
	buf           []byte
	db            *pebble.DB
	fatal         func(format string, args ...any)
}

// openDurableLog replays the log in dir into db past the feed head head
// (returning the new head) and opens it for the next epoch.
func openDurableLog(fs vfs.FS, dir string, db *pebble.DB, head uint64, size int64, fatal func(string, ...any)) (*durableLog, uint64, error) {
	path := fs.PathJoin(dir, durableLogName)
	var epoch uint64
	if _, err := fs.Stat(path); err == nil {
		var err error
		if epoch, head, err = replayDurableLog(fs, path, db, head); err != nil {
			return nil, 0, err
		}
		// Before the records are overwritten, everything pebble holds must
		// be durable in pebble: what it replayed from its own log after a
		// process crash sits in a log file nobody synced (the page cache
		// kept it), and what was just applied is unsynced. A flush writes
		// the memtables to synced tables.
		if err := db.Flush(); err != nil {
			return nil, 0, storageErr("open: flush what the logs replayed", err)
		}
		// Reopened through ReuseForWrite (a rename onto itself), as pebble
		// reopens a log, so that a filesystem wrapping pebble's logs wraps
		// this one too.
		f, err := fs.ReuseForWrite(path, path, "durable-log")
		if err != nil {
			return nil, 0, storageErr("open the durable log", err)
		}
		return &durableLog{f: f, size: size, epoch: epoch + 1, db: db, fatal: fatal}, head, nil
	}
	f, err := fs.Create(path, "durable-log")
	if err != nil {
		return nil, 0, storageErr("create the durable log", err)
	}
	if walfs.HasRoom(dir, size) {
		zeros := make([]byte, durablePrewrite)
		for off := int64(0); off < size; off += durablePrewrite {
			if _, err := f.WriteAt(zeros[:min(durablePrewrite, size-off)], off); err != nil {
				_ = f.Close()
				return nil, 0, storageErr("prewrite the durable log", err)
			}
		}
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return nil, 0, storageErr("sync the durable log", err)
	}
	if d, err := fs.OpenDir(dir); err == nil {
		err = d.Sync()
		_ = d.Close()
		if err != nil {
			_ = f.Close()
			return nil, 0, storageErr("sync the store's directory", err)
		}
	}
	return &durableLog{f: f, size: size, epoch: 1, db: db, fatal: fatal}, head, nil
}

// replayDurableLog applies the records of path past head to db, without a
// sync, and returns the file's epoch and the new head.
func replayDurableLog(fs vfs.FS, path string, db *pebble.DB, head uint64) (epoch, newHead uint64, err error) {
	f, err := fs.Open(path)
	if err != nil {
		return 0, 0, storageErr("open the durable log", err)
	}
	defer f.Close()
	var hdr [durableHeader]byte
	var payload []byte
	for off := int64(0); ; {
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return 0, 0, storageErr("read the durable log", err)
		}
		n := binary.LittleEndian.Uint32(hdr[4:8])
		e := binary.LittleEndian.Uint64(hdr[8:16])
		first := binary.LittleEndian.Uint64(hdr[16:24])
		last := binary.LittleEndian.Uint64(hdr[24:32])
		if n == 0 || n > durableMaxRecord || e == 0 || (epoch != 0 && e != epoch) || last < first {
			break
		}
		if cap(payload) < int(n) {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := f.ReadAt(payload, off+durableHeader); err != nil {
			break // a record cut short by the end of the file: torn
		}
		crc := crc32.Update(crc32.Checksum(hdr[4:], castagnoli), castagnoli, payload)
		if crc != binary.LittleEndian.Uint32(hdr[0:4]) {
			break // torn
		}
		epoch = e
		off += durableHeader + int64(n)
		if first <= head {
			continue // pebble has it
		}
		if first != head+1 {
			return 0, 0, corruptErr(fmt.Sprintf("open: the durable log's group at %d does not follow the feed head %d", first, head), nil)
		}
		b := db.NewBatch()
		if err := b.SetRepr(append([]byte(nil), payload...)); err != nil {
			return 0, 0, corruptErr("open: a durable log record", nil)
		}
		if err := db.Apply(b, pebble.NoSync); err != nil {
			return 0, 0, storageErr("open: replay the durable log", err)
		}
		head = last
	}
	return epoch, head, nil
}

// write writes the group in b, feed positions first to last, at the log's
// end; sync makes it durable and revoke, instead, takes it back. Failures
// end the process (see above).
func (l *durableLog) write(b *pebble.Batch, first, last uint64) {
	repr := b.Repr()
	n := durableHeader + len(repr)
	if l.off > 0 && l.off+int64(n) > l.size {
		// Every batch applied so far becomes durable in pebble; the
		// records can be overwritten.
		if err := l.db.LogData(nil, pebble.Sync); err != nil {
			l.fatal("durable log: sync pebble's log before reuse: %v", err)
		}
		l.off = 0
		l.epoch++
	}
	if cap(l.buf) < n {
		l.buf = make([]byte, n, max(n, 64<<10))
	}
	buf := l.buf[:n]
	binary.LittleEndian.PutUint32(buf[4:8], uint32(len(repr)))
	binary.LittleEndian.PutUint64(buf[8:16], l.epoch)
	binary.LittleEndian.PutUint64(buf[16:24], first)
	binary.LittleEndian.PutUint64(buf[24:32], last)
	copy(buf[durableHeader:], repr)
	binary.LittleEndian.PutUint32(buf[0:4], crc32.Checksum(buf[4:], castagnoli))
	if _, err := l.f.WriteAt(buf, l.off); err != nil {
		l.fatal("durable log: write: %v", err)
	}
	l.last, l.pending = l.off, int64(n)
}

// sync makes the record written last durable.
func (l *durableLog) sync() {
	if err := l.f.SyncData(); err != nil {
		l.fatal("durable log: sync: %v", err)
	}
	l.off += l.pending
	l.pending = 0
}

// revoke undoes the record written (and perhaps synced) last, for a group
// that pebble refused: its header is zeroed, which a replay reads as the
// log's end.
func (l *durableLog) revoke() {
	var zero [durableHeader]byte
	if _, err := l.f.WriteAt(zero[:], l.last); err != nil {
		l.fatal("durable log: revoke: %v", err)
	}
	if err := l.f.SyncData(); err != nil {
		l.fatal("durable log: revoke: %v", err)
	}
	l.off, l.pending = l.last, 0
}

func (l *durableLog) close() error { return l.f.Close() }
