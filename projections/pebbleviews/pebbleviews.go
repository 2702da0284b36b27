// Package pebbleviews is the read model of the single-process runtime: order
// views in a pebble database (github.com/cockroachdb/pebble/v2) under the
// data directory's views/ folder, with covering indexes for List, counters
// for Counts, and the projector subscription's checkpoint stored next to the
// views it describes (one atomic batch), so views and checkpoint never
// disagree after a crash.
//
// Generations (blue/green): the directory holds one or more generations,
// gen-000001, gen-000002, ..., each a whole pebble database, and a file
// CURRENT naming the live one. A rebuild folds the event log into a fresh
// generation while readers and the live projector keep using the current
// one; when it has caught up with the log it becomes current by an atomic
// rename of CURRENT, under the writer's exclusion so no projector write is
// lost in between. A rebuild interrupted at any point leaves CURRENT as it
// was; the unfinished generation records how far it got, and the next
// rebuild resumes it. Generations older than CURRENT are deleted.
//
// Rebuild speed: workers read and decode pages of the feed in parallel, the
// fold runs in feed order in memory, and every flush (at most 262,144
// events) becomes five sorted tables (views, the three indexes, and the
// counts with the position) written in parallel in the background while
// the fold goes on, then ingested into the new generation in one step:
// no memtable inserts, no memtable flushes and no compactions while
// rebuilding. See BENCHMARKS.md for the measured rate and CPU cost.
//
// Writes: pebble has no read-check-write transactions, so one owner
// goroutine applies every write: it takes all Puts waiting at that moment
// (no fixed delay), checks each expected version (against the database and
// the earlier Puts of the same group), and commits the group as one synced
// batch; concurrent projector workers therefore share one fsync. A
// PutBatch (projections.CheckpointedWriter, what the subscription writes
// each batch of the feed with) is one synced batch of its own holding the
// batch's views and the subscription's checkpoint, written whole or not at
// all: one fsync per batch of the feed, and a crash leaves both or
// neither. (pebble makes a batch visible a moment before its fsync ends, so
// a reader may see a view that a crash at that instant would lose; the
// subscription then projects it again from the log, its checkpoint not
// having moved.)
//
// Failures: errors of pebble or the disk are domain.Unavailable (HTTP 503),
// and so is a write while the disk has less than pebblelog.Reserve bytes
// free (refused before pebble could fail on it; writes resume once space
// is freed).
// An error pebble cannot survive (a failed log or MANIFEST sync, corruption)
// ends the process, the one policy of internal/pebblelog: a Put or a flush
// cut off by it was never acknowledged, and the restart recovers the live
// generation from its log and resumes an unfinished rebuild from its last
// ingested flush.
package pebbleviews

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/pebblelog"
	"github.com/orderledger/orderledger/projections"
)

var (
	_ projections.ReadModel  = (*Store)(nil)
	_ eventstore.Checkpoints = (*Store)(nil)

	_ projections.CheckpointedWriter = (*Store)(nil)
)

// MaxIDLen is the longest order ID or consumer name, in bytes.
const MaxIDLen = 255

// maxGroup is the most writes committed as one batch.
const maxGroup = 512

// Store is the embedded read model. It is safe for concurrent use.
type Store struct {
	dir   string
	space *pebblelog.Space // the check before each commit

	reqs chan request // served by the owner goroutine
	quit chan struct{}
	done chan struct{}

	mu     sync.RWMutex // readers hold it shared; a switch or Close exclusive
	gen    *generation
	closed bool

	closeOnce sync.Once
	closeErr  error

	rebuilding sync.Mutex // one rebuild at a time

	cursors *projections.Cursors // sealed with the key in cursorKeyFile

	commits atomic.Uint64 // synced commits of views and checkpoints (tests count them)

	// recent holds the views the writer committed last with PutBatch in
	// generation recentGen, so a batch checks its expected versions
	// without reading them back from pebble. Owned by the writer
	// goroutine; emptied by every exclusive function.
	recent    map[string]projections.View
	recentGen *generation
}

// generation is one pebble database of views.
type generation struct {
	id   int
	db   *pebble.DB
	opts *pebble.Options // as opened (defaults filled in)
	// counts is owned by the writer; readers copy it under countsMu.
	countsMu sync.Mutex
	counts   map[order.Status]int64
}

// request is one unit of work for the owner goroutine: a Put, a checkpoint,
// a batch of puts with a checkpoint, or a function run with exclusive write
// access.
type request struct {
	ctx      context.Context
	put      *putReq
	batch    []projections.Put // with consumer and pos: a PutBatch
	consumer string
	pos      uint64
	fn       func() error
	reply    chan error
}

type putReq struct {
	expected int64
	view     projections.View
}

// Open opens (creating if needed) the read model in dir.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, domain.Errorf(domain.Invalid, "projections/pebbleviews: open: empty directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, storageErr("open", err)
	}
	cur, err := readCurrent(dir)
	if err != nil {
		return nil, err
	}
	if cur == 0 {
		// A new read model: generation 1, live and empty.
		cur = 1
		if err := os.RemoveAll(genDir(dir, cur)); err != nil {
			return nil, storageErr("open", err)
		}
		g, err := openGeneration(dir, cur, false)
		if err != nil {
			return nil, err
		}
		if err := g.db.Set(metaStateKey, stateLive, pebble.Sync); err != nil {
			_ = g.db.Close()
			return nil, storageErr("open", err)
		}
		_ = g.db.Close()
		if err := writeCurrent(dir, cur); err != nil {
			return nil, err
		}
	}
	if err := removeGenerations(dir, func(id int) bool { return id < cur }); err != nil {
		return nil, err
	}
	g, err := openGeneration(dir, cur, false)
	if err != nil {
		return nil, err
	}
	cursors, err := openCursors(dir)
	if err != nil {
		_ = g.db.Close()
		return nil, err
	}
	s := &Store{dir: dir, space: pebblelog.NewSpace("projections/pebbleviews", dir), reqs: make(chan request), quit: make(chan struct{}), done: make(chan struct{}), gen: g, cursors: cursors}
	go s.own()
	return s, nil
}

// Close stops the writer and closes the database. Later calls fail with
// eventstore.ErrClosed. Close is idempotent; it waits for a running rebuild's
// current step.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.done
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closed = true
		if err := s.gen.db.Close(); err != nil {
			s.closeErr = storageErr("close", err)
		}
	})
	return s.closeErr
}

// Dir returns the read model's directory.
func (s *Store) Dir() string { return s.dir }

// Generation returns the number of the live generation.
func (s *Store) Generation() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.gen.id
}

// cursorKeyFile, in the read model's directory beside CURRENT, holds the
// key list cursors are sealed with: made once at random, kept across
// restarts and rebuilds (generations come and go, the file stays), so a
// cursor stays good as long as the directory does.
const cursorKeyFile = "CURSOR-KEY"

const cursorKeyLen = 32

// openCursors reads the directory's cursor key, making it first if there
// is none. A new key is written whole to a temporary file and linked into
// place, so a reader never sees part of one and two openers end up with
// the same key.
func openCursors(dir string) (*projections.Cursors, error) {
	path := filepath.Join(dir, cursorKeyFile)
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, cursorKeyLen)
		_, _ = rand.Read(key) // crypto/rand.Read never fails
		if err = writeNewFile(dir, cursorKeyFile, key); errors.Is(err, os.ErrExist) {
			key, err = os.ReadFile(path) // another opener was first
		}
	}
	if err != nil {
		return nil, storageErr("cursor key", err)
	}
	if len(key) != cursorKeyLen {
		return nil, domain.Errorf(domain.Internal, "projections/pebbleviews: open: %s holds %d bytes, not a %d-byte key", path, len(key), cursorKeyLen)
	}
	return projections.NewCursors(key)
}

// writeNewFile durably creates dir/name holding b, or fails with
// os.ErrExist when it exists.
func writeNewFile(dir, name string, b []byte) error {
	f, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp, filepath.Join(dir, name))
	}
	if err == nil {
		err = syncDir(dir)
	}
	return err
}

func genDir(dir string, id int) string { return filepath.Join(dir, fmt.Sprintf("gen-%06d", id)) }

// generations lists the generation numbers present in dir, ascending.
func generations(dir string) ([]int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, storageErr("list generations", err)
	}
	var ids []int
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), "gen-")
		if !ok || !e.IsDir() {
			continue
		}
		if id, err := strconv.Atoi(n); err == nil && id > 0 {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	return ids, nil
}

func removeGenerations(dir string, drop func(int) bool) error {
	ids, err := generations(dir)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if drop(id) {
			if err := os.RemoveAll(genDir(dir, id)); err != nil {
				return storageErr("remove generation", err)
			}
		}
	}
	return nil
}

// readCurrent returns the generation CURRENT names, 0 when there is none.
func readCurrent(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "CURRENT"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, storageErr("read CURRENT", err)
	}
	n, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gen-")
	id, err := strconv.Atoi(n)
	if !ok || err != nil || id <= 0 {
		return 0, domain.Errorf(domain.Internal, "projections/pebbleviews: open: CURRENT holds %q, not a generation", strings.TrimSpace(string(b)))
	}
	if _, err := os.Stat(genDir(dir, id)); err != nil {
		return 0, storageErr("open current generation", err)
	}
	return id, nil
}

// writeCurrent atomically and durably makes generation id the current one.
func writeCurrent(dir string, id int) error {
	tmp := filepath.Join(dir, "CURRENT.tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return storageErr("write CURRENT", err)
	}
	_, err = fmt.Fprintf(f, "gen-%06d\n", id)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, "CURRENT"))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return storageErr("write CURRENT", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// openGeneration opens (creating) generation id and loads its counts. A
// bulk generation (one being rebuilt, not live) has no write-ahead log:
// the rebuild writes it by ingesting sorted tables, each flush's tables in
// one atomic, synced step that carries its own position, so after a crash
// it holds a prefix of the flushes; a rebuild resumes from there. It is
// flushed and reopened with its log before it goes live.
func openGeneration(dir string, id int, bulk bool) (*generation, error) {
	opts := &pebble.Options{
		Logger:       pebblelog.Logger{Prefix: "projections/pebbleviews"},
		MemTableSize: 64 << 20,
		CacheSize:    32 << 20,
	}
	if bulk {
		// No log (see above), and no compactions while rebuilding: the
		// ingested tables stay where ingestion puts them (level 0 when they
		// overlap) and are compacted once the generation is live. The
		// memtable holds only the state marker.
		opts.DisableWAL = true
		opts.MemTableSize = 4 << 20
		opts.MemTableStopWritesThreshold = 8
		opts.L0CompactionThreshold = 1 << 20
		opts.L0CompactionFileThreshold = 1 << 20
		opts.L0StopWritesThreshold = 1 << 20
	}
	opts.EnsureDefaults()
	// Opening writes pebble's MANIFEST, whose failure is fatal to it.
	if err := pebblelog.CheckSpace("projections/pebbleviews", "open generation", dir); err != nil {
		return nil, err
	}
	db, err := pebble.Open(genDir(dir, id), opts)
	if err != nil {
		return nil, storageErr("open generation", err)
	}
	g := &generation{id: id, db: db, opts: opts, counts: map[order.Status]int64{}}
	for _, st := range order.Statuses {
		n, err := getUint64(db, countKey(st))
		if err != nil {
			_ = db.Close()
			return nil, err
		}
		g.counts[st] = int64(n)
	}
	return g, nil
}

// state returns the generation's state marker.
func (g *generation) state() (string, error) {
	v, closer, err := g.db.Get(metaStateKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", storageErr("read state", err)
	}
	defer closer.Close()
	return string(v), nil
}

func getUint64(db *pebble.DB, key []byte) (uint64, error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, storageErr("read", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, domain.Errorf(domain.Internal, "projections/pebbleviews: corrupt counter %q", key)
	}
	return binary.BigEndian.Uint64(v), nil
}

// getView reads the stored view of id (ok false when there is none).
func getView(db *pebble.DB, id string) (projections.View, bool, error) {
	v, closer, err := db.Get(viewKey(nil, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return projections.View{}, false, nil
	}
	if err != nil {
		return projections.View{}, false, storageErr("get", err)
	}
	defer closer.Close()
	view, err := decodeView(v)
	if err != nil {
		return projections.View{}, false, domain.Errorf(domain.Internal, "projections/pebbleviews: get %s: %v", id, err)
	}
	return view, true, nil
}

// writeView adds to b the writes that replace old (when had) by v, whose
// record is rec.
func writeView(b *pebble.Batch, old projections.View, had bool, v projections.View, rec []byte) {
	if had {
		for _, k := range indexKeys(old) {
			_ = b.Delete(k, nil)
		}
	}
	_ = b.Set(viewKey(nil, v.OrderID), rec, nil)
	for _, k := range indexKeys(v) {
		_ = b.Set(k, nil, nil)
	}
}

// storageErr is a failure of the disk or of pebble (HTTP 503).
func storageErr(op string, err error) error {
	return &pebblelog.StorageError{Pkg: "projections/pebbleviews", Op: op, Err: err}
}

// Metrics returns the storage engine's own metrics of the current
// generation's database (for /metrics), or nil once the store is closed.
func (s *Store) Metrics() *pebble.Metrics {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	return s.gen.db.Metrics()
}
