// Package pebblequeue is the messaging adapter of the embedded runtime: durable
// queues and topics in one pebble database (DIR/queue).
//
// A Broker owns the database. Queues are declared with Broker.Queue (a
// visibility timeout and optionally a dead-letter queue reached after
// MaxReceiveCount receives); topics with Broker.Topic, and Topic.Subscribe
// fans every published message out to queues, with an optional attribute
// filter. Message attributes are stored with the message; Send and
// Publish add the traceparent of the span in ctx as the traceparent
// attribute (messaging.AttrTraceParent) when the caller's carry none, so a
// consumer continues the sender's trace. Every state change (send, publish to all matching subscriptions,
// receive, delete, visibility change, dead-lettering) is one atomic pebble
// batch, durable before the call returns, so nothing acknowledged is lost on
// kill -9; messages in flight when the process died become visible again as
// soon as the queue is declared after the next Open (see releaseInFlight).
//
// Concurrency: pebble has no read-check-write transactions, so one mutex
// serialises the broker's read-modify-writes. A batch is applied under the
// mutex in WAL order, and the operation then waits for a synced WAL write
// after releasing it (see Broker.do): concurrent operations share fsyncs
// instead of taking turns for one each, yet none returns before its own write
// and every earlier one are on disk.
//
// Keys: "m\x00<queue>\x00<id>" holds a message record (a compact binary
// form, see encodeRecord; JSON records of earlier versions are still read);
// "v\x00<queue>\x00<visible-at, 8 bytes big-endian unix ns><id>" indexes it by the time it
// becomes visible, so a receive is a short range scan. Every message received
// or deleted leaves a deletion tombstone in that index until pebble compacts
// it away, so a receive does not scan from the start of the index: each queue
// keeps scanFrom, a lower bound of its live index keys, and a range known to
// hold none (see Queue.scanFrom and Queue.gapStart), and seeks past both.
//
// Failures: errors of pebble or the disk are domain.Unavailable (HTTP 503),
// as in the other embedded databases (pebblelog.StorageError), and so is a
// write while the disk has less than pebblelog.Reserve bytes free (refused
// before pebble could fail on it; writes resume once space is freed). An error
// pebble cannot survive (a failed WAL write or sync) ends the process, the
// one policy of internal/pebblelog: the operation it cut off was never
// acknowledged, and after the restart its queue's in-flight messages are
// released as after any crash.
package pebblequeue

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/internal/pebblelog"
	"github.com/orderledger/orderledger/internal/walfs"
	"github.com/orderledger/orderledger/messaging"
)

// DefaultVisibilityTimeout is used when QueueConfig.VisibilityTimeout is 0.
const DefaultVisibilityTimeout = 30 * time.Second

// Options tune a Broker.
type Options struct {
	// Clock is the time source (nil: domain.SystemClock).
	Clock domain.Clock
	// Logger receives pebble's log lines (nil: slog.Default()); a fatal
	// engine error is logged and ends the process (internal/pebblelog).
	Logger *slog.Logger
}

// Broker holds the queues and topics of one database.
type Broker struct {
	db     *pebble.DB
	wfs    *walfs.FS
	dir    string
	space  *pebblelog.Space // the check before each commit
	clock  domain.Clock
	ids    domain.IDSource
	mu     sync.Mutex   // serialises every read-modify-write
	life   sync.RWMutex // held shared by every operation, exclusively by Close
	queues map[string]*Queue
	topics map[string]*Topic
	closed bool
}

// Open opens (creating if needed) the broker database in dir.
func Open(dir string, opts Options) (*Broker, error) {
	return open(dir, opts, nil)
}

// open is Open with tune, when set, adjusting pebble's options (a
// filesystem for tests).
func open(dir string, opts Options, tune func(*pebble.Options)) (*Broker, error) {
	po := &pebble.Options{Logger: pebblelog.Logger{Prefix: "messaging/pebblequeue", Log: opts.Logger}}
	if tune != nil {
		tune(po)
	}
	// Opening writes pebble's MANIFEST, whose failure is fatal to it.
	if err := pebblelog.CheckSpace("messaging/pebblequeue", "open "+dir, dir); err != nil {
		return nil, err
	}
	po.EnsureDefaults()
	// The broker's first log takes a prewritten file (internal/walfs), so
	// its syncs write no file metadata; pebble recycles its later ones.
	wfs, err := walfs.New(po.FS, dir, int64(po.MemTableSize+po.MemTableSize/8))
	if err != nil {
		return nil, storageErr("open "+dir, err)
	}
	po.FS = wfs
	db, err := pebble.Open(dir, po)
	if err != nil {
		_ = wfs.Close()
		return nil, storageErr("open "+dir, err)
	}
	clock := opts.Clock
	if clock == nil {
		clock = domain.SystemClock
	}
	return &Broker{db: db, wfs: wfs, dir: dir, space: pebblelog.NewSpace("messaging/pebblequeue", dir), clock: clock, ids: domain.NewULIDSource(nil),
		queues: map[string]*Queue{}, topics: map[string]*Topic{}}, nil
}

// Close closes the database; later calls return messaging.ErrClosed.
func (b *Broker) Close() error {
	b.life.Lock()
	defer b.life.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	for _, q := range b.queues {
		q.signal()
	}
	err := b.db.Close()
	_ = b.wfs.Close() // a spare that could not be written cost only speed
	if err != nil {
		return storageErr("close", err)
	}
	return nil
}

// do runs f with b.mu held. f stages its changes with b.commit, which
// applies them in WAL order without waiting for the disk; do then releases
// the lock and waits until the WAL is synced up to and including them. An
// operation therefore returns only once its own write and every write before
// it are durable (no acknowledgement ever precedes its fsync), while
// concurrent operations on any queue share fsyncs instead of queueing for
// one each behind the lock.
func (b *Broker) do(f func() (wrote bool, err error)) error {
	b.life.RLock()
	defer b.life.RUnlock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return messaging.ErrClosed
	}
	wrote, err := f()
	b.mu.Unlock()
	if err != nil || !wrote {
		return err
	}
	// A log-only record with Sync: the WAL is sequential, so syncing it
	// syncs every batch committed before it.
	if err := b.db.LogData(nil, pebble.Sync); err != nil {
		return storageErr("sync", err)
	}
	return nil
}

// commit applies batch to the WAL and memtable; call inside do, which makes
// it durable before the operation returns.
func (b *Broker) commit(batch *pebble.Batch) error {
	// A nearly full disk refuses the write (503) rather than let pebble's
	// log write fail, which would end the process.
	if err := b.space.Check("commit"); err != nil {
		return err
	}
	if err := batch.Commit(pebble.NoSync); err != nil {
		return storageErr("commit", err)
	}
	return nil
}

// storageErr is a failure of the disk or of pebble (HTTP 503).
func storageErr(op string, err error) error {
	return &pebblelog.StorageError{Pkg: "messaging/pebblequeue", Op: op, Err: err}
}

func validName(name string) error {
	if name == "" || len(name) > 80 {
		return fmt.Errorf("messaging/pebblequeue: invalid name %q: 1..80 characters", name)
	}
	for _, r := range name {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("messaging/pebblequeue: invalid name %q: letters, digits, '-', '_' and '.' only", name)
		}
	}
	return nil
}

// Metrics returns the storage engine's own metrics (for /metrics), or nil
// once the broker is closed.
func (b *Broker) Metrics() *pebble.Metrics {
	b.life.RLock()
	defer b.life.RUnlock()
	if b.closed {
		return nil
	}
	return b.db.Metrics()
}
