// Package pebblestore is the durable event store of the single-process runtime:
// one pebble database (github.com/cockroachdb/pebble/v2, the storage engine
// of CockroachDB) in a directory, holding every stream, the global change
// feed and the consumers' checkpoints.
//
// Why pebble: its write-ahead log groups concurrent synced commits into
// one fsync, so durable appends scale with concurrent writers, where bbolt
// commits one writer at a time with two fsyncs (the measurements behind the
// choice are in BENCHMARKS.md, "Why pebble").
//
// How an append works: Append validates its input and encodes the records in
// the caller's goroutine, then hands them to the sequencer, the one goroutine
// that writes events. The sequencer takes every append waiting at that moment
// (no fixed delay: a lone writer is committed at once), checks each expected
// version against an in-memory map of stream heads (filled lazily from disk),
// assigns versions and global positions and builds the whole group as one
// pebble batch. The batch is made durable in the store's own log
// (durable.log, see durable.go): the sequencer writes it there and
// fdatasyncs the file itself while an applier goroutine applies it to pebble
// without a sync, then publishes the new feed head and answers the
// appenders. Concurrent appenders therefore share one fsync, and positions
// are gap-free and in commit order by construction. Readers never look past
// the published head, which moves only once the sync has returned, so no
// reader (Load, ReadFeed) can observe an event that is not yet durable.
//
// Why a log of its own: committing with pebble.Sync hands each batch to
// pebble's log writer goroutine and waits to be woken; on two cores those
// hand-offs cost a quarter of a lone append's time and more with eight
// writers. The durable log is one prewritten file (16 MiB of zeros,
// synced, when the disk has room) reused from its start once full, after a
// sync of pebble's log has made every batch applied so far durable in
// pebble too. Open replays the records past pebble's feed head (what a
// power loss took from pebble's unsynced log) before anything is read;
// the kill -9, fsync-failure and power-loss tests cover it.
//
// Forming a group never waits on a timer. When fewer appends are waiting
// than in the previous group, the sequencer yields the processor a few times
// (runtime.Gosched) so that writers just answered can join; see yieldMax.
// GroupStats counts the groups and their events (the metrics export it):
// events per group near the number of concurrent writers means the store
// keeps up with the disk. Writers that each wait for their own answer move
// in lock step, so their rate is writers / (sync + the work between
// syncs), and on two cores every append's work, the caller's encoding as
// much as the sequencer's, lies on that path (BENCHMARKS.md, "Applying
// while the log syncs").
//
// Pipelining (writing the next group with pebble's ApplyNoSyncWait while the
// previous one fsyncs, a completer goroutine answering groups in order) was
// built and measured side by side with this design: no difference beyond
// the disk's noise (BENCHMARKS.md, "Why pebble"). Every writer has one
// append in flight, so an overlapping group
// can only hold writers not waiting on the fsync, which the next group
// collects anyway. It was left out as complexity without gain.
//
// Durability is never relaxed: an acknowledged append has been fsynced, and
// so has a saved checkpoint. A failed write or sync of the durable log, or
// of pebble's own log, is fatal: the process logs it and exits (the one
// policy of internal/pebblelog), so the appends of that group are never
// answered, and the next start replays the logs. While the disk has less
// than pebblelog.Reserve bytes free, appends and checkpoints are refused
// with a domain.Unavailable error instead (the check reads the free space
// at most every 10 ms while there is plenty, pebblelog.Space), so that a
// full disk is an outage (503), not a crash; they succeed again once space
// is freed. If a commit fails with an error pebble
// survives, the group's record in the durable log is taken back (so no
// reopen replays it), the appends of that group fail with a
// domain.Unavailable error, and the store refuses every later append until
// it is reopened.
//
// Reads (Load, ReadFeed) reuse pooled iterators while no commit intervenes,
// and decode a whole page of records with a few allocations (see records).
// The events' strings and Data share their page's memory, so keeping one
// keeps the page alive. ReadFeedInto reuses memory the caller hands back
// for the next page's Data only: the Data of a page read into it changes
// when that memory is passed back (copy what must outlive it), while the
// strings of every page are never overwritten and may be kept.
package pebblestore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/pebblelog"
	"github.com/orderledger/orderledger/internal/walfs"
)

var (
	_ eventstore.Store       = (*Store)(nil)
	_ eventstore.Feed        = (*Store)(nil)
	_ eventstore.Checkpoints = (*Store)(nil)
)

// Limits on input. Larger values are rejected with a domain.Invalid error.
const (
	// MaxIDLen is the longest stream ID, idempotency key or consumer name, in bytes.
	MaxIDLen = 255
	// MaxEventSize is the largest event body (Data), in bytes.
	MaxEventSize = 1 << 20
	// MaxEventsPerAppend is the most events one append may carry.
	MaxEventsPerAppend = 1000
	// MaxFeedPage is the most events ReadFeed returns at once.
	MaxFeedPage = 10000
)

// Store is the embedded event store. It is safe for concurrent use.
type Store struct {
	db    *pebble.DB
	dir   string
	space *pebblelog.Space // the check before each group
	cfg   config

	reqs chan *request // appends waiting for the sequencer (unbuffered)
	quit chan struct{} // closed by Close
	done chan struct{} // closed when the sequencer has stopped

	apply   chan *pebble.Batch // the sequencer's batches, to the applier
	applied chan error         // the applier's answer to each
	// refuseApply, when set, is what the applier answers instead of
	// applying (tests only: export_test.go).
	refuseApply atomic.Pointer[error]

	// head is the position of the last durable event: the feed ends there and
	// readers ignore any record beyond it.
	head   atomic.Uint64
	notify atomic.Pointer[chan struct{}] // closed and replaced on every commit

	groups groupCounters // what the sequencer committed, for GroupStats

	// failed is set when a commit failed; the store then refuses appends.
	failed atomic.Pointer[error]

	iters iterPool

	wfs *walfs.FS // nil with WithoutPrewrittenWAL
	log *durableLog

	mu        sync.RWMutex // readers hold it shared; Close exclusive
	closed    bool
	closeOnce sync.Once
	closeErr  error

	// Owned by the sequencer goroutine.
	heads map[string]streamHead
	seq   sequencerState
}

type config struct {
	maxHeads   int
	tune       func(*pebble.Options)
	noPrewrite bool
	logSize    int64 // the durable log's size (durable.go); tests set it smaller
}

// Option configures Open.
type Option func(*config)

// WithHeadCache sets how many stream heads the sequencer keeps in memory
// (default 1,000,000; about 130 bytes each). On overflow the map is emptied
// and heads are read again from disk as streams are written.
func WithHeadCache(n int) Option {
	return func(c *config) { c.maxHeads = max(n, 1) }
}

// WithPebbleOptions lets the caller adjust pebble's options before the
// database is opened (cache and memtable sizes, a filesystem for tests).
// Options that would relax durability must not be set: DisableWAL is
// rejected by Open.
func WithPebbleOptions(f func(*pebble.Options)) Option {
	return func(c *config) { c.tune = f }
}

// WithoutPrewrittenWAL makes pebble append into new log files, as it does by
// default, instead of into files written in advance (internal/walfs), which
// Open uses unless told otherwise: appends then wait on syncs that also
// write file metadata, about half as many per second on ext4. For
// measuring the difference.
func WithoutPrewrittenWAL() Option {
	return func(c *config) { c.noPrewrite = true }
}

// Open opens (creating if needed) the event store in dir.
func Open(dir string, opts ...Option) (*Store, error) {
	if dir == "" {
		return nil, domain.Errorf(domain.Invalid, "eventstore/pebblestore: open: empty directory")
	}
	cfg := config{maxHeads: 1_000_000, logSize: durableLogSize}
	for _, o := range opts {
		o(&cfg)
	}
	po := &pebble.Options{
		Logger:       pebblelog.Logger{Prefix: "eventstore/pebblestore"},
		MemTableSize: 64 << 20,
		CacheSize:    64 << 20,
	}

	if cfg.tune != nil {
		cfg.tune(po)
	}
	if po.DisableWAL {
		return nil, domain.Errorf(domain.Invalid, "eventstore/pebblestore: open: the WAL cannot be disabled")
	}
	// Opening writes pebble's MANIFEST, whose failure is fatal to it.
	if err := pebblelog.CheckSpace("eventstore/pebblestore", "open "+dir, dir); err != nil {
		return nil, err
	}
	var wfs *walfs.FS
	if !cfg.noPrewrite {
		// Pebble rotates its log when the memtable is full; an eighth more
		// covers the batches' overhead in the log.
		var err error
		if wfs, err = walfs.New(po.FS, dir, int64(po.MemTableSize+po.MemTableSize/8)); err != nil {
			return nil, storageErr("open "+dir, err)
		}
		po.FS = wfs
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		if wfs != nil {
			_ = wfs.Close()
		}
		return nil, storageErr("open "+dir, err)
	}
	fs := po.FS
	if fs == nil {
		fs = vfs.Default
	}
	logger := po.Logger
	if logger == nil {
		logger = pebblelog.Logger{Prefix: "eventstore/pebblestore"}
	}
	// Appends become durable in the store's own log (durable.go); what it
	// holds past pebble's feed head is applied before anything is read.
	var dl *durableLog
	head, err := feedHead(db)
	if err == nil {
		dl, _, err = openDurableLog(fs, dir, db, head, cfg.logSize, logger.Fatalf)
	}
	if err != nil {
		_ = db.Close()
		if wfs != nil {
			_ = wfs.Close()
		}
		return nil, err
	}
	s := &Store{
		db:    db,
		wfs:   wfs,
		log:   dl,
		dir:   dir,
		space: pebblelog.NewSpace("eventstore/pebblestore", dir),
		cfg:   cfg,
		reqs:  make(chan *request),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
		heads: make(map[string]streamHead),

		apply:   make(chan *pebble.Batch, 1),
		applied: make(chan error, 1),
	}
	if err := s.init(); err != nil {
		_ = dl.close()
		_ = db.Close()
		if wfs != nil {
			_ = wfs.Close()
		}
		return nil, err
	}
	ch := make(chan struct{})
	s.notify.Store(&ch)
	go s.applier()
	go s.sequence()
	return s, nil
}

// init checks the format marker (writing it into a new database) and finds
// the feed head.
func (s *Store) init() error {
	v, closer, err := s.db.Get(metaFormatKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := s.db.Set(metaFormatKey, metaFormatValue, pebble.Sync); err != nil {
			return storageErr("open: write format", err)
		}
	case err != nil:
		return storageErr("open: read format", err)
	default:
		ok := string(v) == string(metaFormatValue)
		got := string(v)
		_ = closer.Close()
		if !ok {
			return domain.Errorf(domain.Internal, "eventstore/pebblestore: open: unknown data format %q", got)
		}
	}
	head, err := feedHead(s.db)
	if err != nil {
		return err
	}
	s.head.Store(head)
	s.seq.next = head + 1
	return nil
}

// feedHead returns the position of the last event in the feed (0: none).
func feedHead(db *pebble.DB) (uint64, error) {
	it, err := db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixFeed},
		UpperBound: []byte{prefixFeed + 1},
	})
	if err != nil {
		return 0, storageErr("open: feed head", err)
	}
	defer it.Close()
	var head uint64
	if it.Last() {
		pos, err := recordPosition(it.Value())
		if err != nil {
			return 0, corruptErr("open: feed head", it.Key())
		}
		head = pos
	}
	if err := it.Error(); err != nil {
		return 0, storageErr("open: feed head", err)
	}
	return head, nil
}

// Close stops the sequencer (appends already handed to it are committed and
// answered first) and closes the database. Every later call returns
// eventstore.ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.done
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closed = true
		s.iters.closeAll()
		s.closeErr = closePebble(s.db)
		_ = s.log.close()
		if s.wfs != nil {
			// A spare that could not be written cost only speed.
			_ = s.wfs.Close()
		}
	})
	return s.closeErr
}

func closePebble(db *pebble.DB) error {
	if err := db.Close(); err != nil {
		return storageErr("close", err)
	}
	return nil
}

// read runs f with the database held open, or returns ErrClosed.
func (s *Store) read(f func() error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return eventstore.ErrClosed
	}
	return f()
}

// storageErr is a failure of the disk or of pebble (HTTP 503).
func storageErr(op string, err error) error {
	return &pebblelog.StorageError{Pkg: "eventstore/pebblestore", Op: op, Err: err}
}

func corruptErr(op string, key []byte) error {
	return domain.Errorf(domain.Internal, "eventstore/pebblestore: %s: corrupt record at key %q", op, key)
}

func (s *Store) checkOpen(ctx context.Context) error {
	select {
	case <-s.quit:
		return eventstore.ErrClosed
	default:
	}
	return ctx.Err()
}

// Metrics returns the storage engine's own metrics (for /metrics), or nil
// once the store is closed.
func (s *Store) Metrics() *pebble.Metrics {
	var m *pebble.Metrics
	_ = s.read(func() error { m = s.db.Metrics(); return nil })
	return m
}
