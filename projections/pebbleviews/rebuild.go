package pebbleviews

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/pebblelog"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
)

// RebuildOptions tunes Rebuild. The zero value is ready to use.
type RebuildOptions struct {
	// Consumer is the checkpoint the new generation starts with (the feed
	// position it reflects); projections.Consumer when empty.
	Consumer string
	// Progress, when set, is called from the rebuilding goroutine after each
	// page of the feed.
	Progress func(projections.Progress)
	// FlushEvery is the most events folded between durable flushes of the
	// new generation (each one a point a rerun resumes from); 262,144 when
	// 0. A flush starts sooner, after an eighth of that, when the previous
	// one is already in.
	FlushEvery int
	// Workers is how many goroutines decode events; GOMAXPROCS when 0.
	Workers int
	// PageSize is how many events are read from the feed at once; 8,192 when 0.
	PageSize int
}

// RebuildResult describes a finished rebuild.
type RebuildResult struct {
	// Generation is the new live generation.
	Generation int
	// From is the feed position the rebuild started at: 0, or where an
	// interrupted rebuild had got to when this one resumed it.
	From uint64
	// Position is the feed position the new generation reflects.
	Position uint64
	// Events is how many events this run folded.
	Events uint64
	// Elapsed is how long the run took.
	Elapsed time.Duration
}

// Rebuild folds the whole event log from feed into a fresh generation and
// makes it the live one atomically. Readers and Puts are served by the old
// generation until the switch; the last events are folded with writes held
// off, so none is lost. If it fails or is interrupted (ctx, crash), the old
// generation stays live and the next Rebuild resumes from the last flush.
// Only one rebuild runs at a time (projections.ErrRebuildRunning).
func (s *Store) Rebuild(ctx context.Context, feed eventstore.Feed, codec *orders.Codec, opts RebuildOptions) (RebuildResult, error) {
	if feed == nil || codec == nil {
		return RebuildResult{}, errors.New("projections/pebbleviews: rebuild: feed and codec are required")
	}
	if !s.rebuilding.TryLock() {
		return RebuildResult{}, projections.ErrRebuildRunning
	}
	defer s.rebuilding.Unlock()
	if opts.Consumer == "" {
		opts.Consumer = projections.Consumer
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = 1 << 18
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 8192
	}
	start := time.Now()
	var live int
	if err := s.read(ctx, func(g *generation) error { live = g.id; return nil }); err != nil {
		return RebuildResult{}, err
	}
	b, err := s.openBuild(live, opts.Consumer)
	if err != nil {
		return RebuildResult{}, err
	}
	b.codec = codec
	// Room for about the orders of a flush and the one before (the
	// terminal ones leave after their flush).
	b.mapSize = opts.FlushEvery / 2
	b.views = make(map[string]*entry, b.mapSize)
	b.shards = opts.Workers
	b.dir = s.dir
	switched := false
	defer func() {
		if !switched {
			// Keep what was folded for the next run to resume from.
			_ = b.wait()
			_ = b.g.db.Flush()
			_ = b.g.db.Close()
		}
	}()
	res := RebuildResult{Generation: b.g.id, From: b.pos}
	head, err := feed.Head(ctx)
	if err != nil {
		return res, fmt.Errorf("projections/pebbleviews: rebuild: %w", err)
	}
	report := func() {
		if opts.Progress != nil {
			total := max(head, b.pos) - res.From
			opts.Progress(projections.Progress{Done: b.pos - res.From, Total: total, Elapsed: time.Since(start)})
		}
	}
	report()
	if err := b.bulk(ctx, feed, head, opts, report); err != nil {
		return res, err
	}
	// The tail, and the switch, with writes to the old generation held off.
	err = s.exclusive(ctx, func() error {
		for {
			envs, err := feed.ReadFeed(ctx, b.pos, opts.PageSize)
			if err != nil {
				return fmt.Errorf("projections/pebbleviews: rebuild: read feed: %w", err)
			}
			if len(envs) == 0 {
				break
			}
			evs, err := decodePage(codec, envs, nil)
			if err != nil {
				return err
			}
			if err := b.apply(envs, evs); err != nil {
				return err
			}
		}
		if err := b.flush(true); err != nil {
			return err
		}
		// Make the generation durable, then reopen it with its log.
		if err := b.g.db.Flush(); err != nil {
			return storageErr("rebuild: flush", err)
		}
		if err := b.g.db.Close(); err != nil {
			return storageErr("rebuild: close", err)
		}
		switched = true // closed: nothing left for the deferred cleanup
		g, err := openGeneration(s.dir, b.g.id, false)
		if err != nil {
			return err
		}
		if err := writeCurrent(s.dir, g.id); err != nil {
			_ = g.db.Close()
			return err
		}
		s.mu.Lock()
		old := s.gen
		s.gen = g
		s.mu.Unlock()
		_ = old.db.Close()
		_ = os.RemoveAll(genDir(s.dir, old.id))
		return nil
	})
	res.Position, res.Events, res.Elapsed = b.pos, b.pos-res.From, time.Since(start)
	report()
	if err != nil {
		return res, err
	}
	return res, nil
}

// RebuildFunc returns Rebuild bound to feed and codec, for
// projections.NewRebuilds.
func (s *Store) RebuildFunc(feed eventstore.Feed, codec *orders.Codec) projections.RebuildFunc {
	return func(ctx context.Context, progress func(projections.Progress)) error {
		_, err := s.Rebuild(ctx, feed, codec, RebuildOptions{Progress: progress})
		return err
	}
}

// build is a generation being rebuilt.
type build struct {
	g        *generation
	codec    *orders.Codec
	consumer string
	pos      uint64            // feed position folded so far
	views    map[string]*entry // non-terminal views, and those being flushed
	last     *entry            // the entry of the last event folded
	mapSize  int               // the initial size of views
	dirty    []*entry
	pending  int // events folded since the last flush
	counts   map[order.Status]int64
	// resumed: the generation may hold views written after its checkpoint
	// (see flush), so every view is looked up and events it already
	// reflects are skipped.
	resumed bool
	// shards is how many tables a flush writes at once.
	shards int
	// dir is the read model's directory; flushes counts the flushes.
	dir     string
	flushes int
	// inflight is the result of the flush being written, when one is;
	// leaving are the terminal views it writes; failed is the first
	// failure of a flush.
	inflight chan error
	leaving  []string
	failed   error
	changes  []change           // the dirty views a flush writes
	olds     []projections.View // their views stored before
}

// entry is one order's view in memory: cur folded so far, flushed as stored.
type entry struct {
	cur, flushed projections.View
	stored       bool
	dirty        bool
}

// openBuild resumes the newest unfinished generation after live, or
// creates live+1.
func (s *Store) openBuild(live int, consumer string) (*build, error) {
	ids, err := generations(s.dir)
	if err != nil {
		return nil, err
	}
	newest := 0
	for _, id := range ids {
		if id > live {
			newest = id
		}
	}
	// Older unfinished generations are abandoned.
	if err := removeGenerations(s.dir, func(id int) bool { return id > live && id != newest }); err != nil {
		return nil, err
	}
	if newest != 0 {
		if g, err := openGeneration(s.dir, newest, true); err == nil {
			pos, err := getUint64(g.db, checkpointKey(consumer))
			st, serr := g.state()
			var counts map[order.Status]int64
			if err == nil && serr == nil && st != "" {
				counts, err = recount(g.db)
			}
			if err == nil && serr == nil && st != "" {
				g.counts = copyCounts(counts)
				return &build{g: g, consumer: consumer, pos: pos, counts: counts, resumed: true}, nil
			}
			_ = g.db.Close()
		}
		// Unreadable: start over.
	}
	id := max(newest, live) + 1
	if newest != 0 {
		id = newest
	}
	if err := os.RemoveAll(genDir(s.dir, id)); err != nil {
		return nil, storageErr("rebuild", err)
	}
	g, err := openGeneration(s.dir, id, true)
	if err != nil {
		return nil, err
	}
	if err := g.db.Set(metaStateKey, stateBuilding, pebble.NoSync); err != nil {
		_ = g.db.Close()
		return nil, storageErr("rebuild", err)
	}
	return &build{g: g, consumer: consumer, counts: copyCounts(g.counts)}, nil
}

func copyCounts(m map[order.Status]int64) map[order.Status]int64 {
	out := make(map[order.Status]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// page is one page of the feed: positions after+1 .. after+n.
type page struct {
	after uint64
	n     int
	envs  []eventstore.Event
	evs   []order.Event
	raw   []byte // the memory envs share, with a feedInto
	err   error
	done  chan struct{}
}

// feedInto is a feed that can read a page into the memory of an earlier
// one (eventstore/pebblestore's Store): a rebuild reads the whole feed, and
// reusing a few pages' memory instead of allocating every page spares the
// garbage collector most of its work. Reuse overwrites the events' Data
// only (their strings are never overwritten: see ReadFeedInto), and nothing
// keeps a page's Data once it is decoded (the decoded events' strings are
// their own), so a page's memory is free once applied.
type feedInto interface {
	ReadFeedInto(ctx context.Context, after uint64, limit int, events []eventstore.Event, raw []byte) ([]eventstore.Event, []byte, error)
}

// bulk folds the feed up to head. Workers each read and decode whole pages
// (the positions of page j are known in advance, the feed being gap-free),
// so reading and decoding run in parallel; pages are folded in order. The
// dispatcher and the workers are joined before bulk returns, whatever it
// returns: no read of the feed outlives the rebuild.
func (b *build) bulk(ctx context.Context, feed eventstore.Feed, head uint64, opts RebuildOptions, report func()) error {
	if b.pos >= head {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	var readers sync.WaitGroup // the dispatcher and the workers
	defer func() {
		cancel()
		readers.Wait()
	}()
	todo := make(chan *page, opts.Workers)
	ordered := make(chan *page, 2*opts.Workers)
	into, _ := feed.(feedInto)
	// Applied pages whose memory the workers may reuse.
	free := make(chan *page, 4*opts.Workers)
	readers.Go(func() { // dispatcher: pages in order, to the workers and the folder
		defer close(todo)
		defer close(ordered)
		for after := b.pos; after < head; after += uint64(opts.PageSize) {
			p := &page{after: after, n: int(min(uint64(opts.PageSize), head-after)), done: make(chan struct{})}
			select {
			case ordered <- p:
			case <-ctx.Done():
				return
			}
			select {
			case todo <- p:
			case <-ctx.Done():
				return
			}
		}
	})
	for range opts.Workers {
		readers.Go(func() {
			for p := range todo {
				if into != nil {
					var old *page
					select {
					case old = <-free:
					default:
						old = &page{}
					}
					p.envs, p.raw, p.err = into.ReadFeedInto(ctx, p.after, p.n, old.envs, old.raw)
					p.evs = old.evs
				} else {
					p.envs, p.err = feed.ReadFeed(ctx, p.after, p.n)
				}
				if p.err != nil {
					p.err = fmt.Errorf("projections/pebbleviews: rebuild: read feed: %w", p.err)
				} else if len(p.envs) != p.n {
					p.err = domain.Errorf(domain.Internal, "projections/pebbleviews: rebuild: feed after %d returned %d events, want %d", p.after, len(p.envs), p.n)
				} else {
					p.evs, p.err = decodePage(b.codec, p.envs, p.evs)
				}
				close(p.done)
			}
		})
	}
	for p := range ordered {
		select {
		case <-p.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if p.err != nil {
			return p.err
		}
		if err := b.apply(p.envs, p.evs); err != nil {
			return err
		}
		if into != nil {
			clear(p.evs) // the decoded events' strings may go
			select {
			case free <- p:
			default:
			}
		}
		// Flush every FlushEvery events, or sooner when the previous flush
		// is already in: the writer stays busy, and the last flush, which
		// nothing overlaps, stays small.
		if b.pending >= opts.FlushEvery || (b.pending >= opts.FlushEvery/8 && b.idle()) {
			if err := b.flush(false); err != nil {
				return err
			}
		}
		report()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.flush(false)
}

// decodePage decodes envs into evs's memory, if it has room.
func decodePage(codec *orders.Codec, envs []eventstore.Event, evs []order.Event) ([]order.Event, error) {
	if cap(evs) < len(envs) {
		evs = make([]order.Event, len(envs))
	}
	evs = evs[:len(envs)]
	for i := range envs {
		e, err := codec.Decode(envs[i])
		if err != nil {
			return nil, fmt.Errorf("projections/pebbleviews: rebuild: event at position %d: %w", envs[i].Position, err)
		}
		evs[i] = e
	}
	return evs, nil
}

// apply folds decoded events, which continue the feed from b.pos, into the
// views in memory.
func (b *build) apply(envs []eventstore.Event, evs []order.Event) error {
	for i := range envs {
		env := &envs[i]
		if env.Position != b.pos+1 {
			return domain.Errorf(domain.Internal, "projections/pebbleviews: rebuild: feed position %d follows %d", env.Position, b.pos)
		}
		// An order's events often follow one another in the feed (appended
		// together): the last entry saves a map lookup.
		ent := b.last
		if ent == nil || ent.cur.OrderID != env.StreamID {
			ent = b.views[env.StreamID]
		}
		if ent == nil {
			ent = &entry{}
			if env.Version != 1 || b.resumed {
				v, ok, err := getView(b.g.db, env.StreamID)
				if err != nil {
					return err
				}
				ent.cur, ent.flushed, ent.stored = v, v, ok
			}
			if ent.cur.OrderID == "" {
				// A copy: the event's strings share one allocation with
				// the rest of its page, which the view would keep alive.
				ent.cur.OrderID = strings.Clone(env.StreamID)
			}
			b.views[ent.cur.OrderID] = ent
		}
		b.last = ent
		if env.Version <= ent.cur.Version && b.resumed {
			b.pos = env.Position // folded before the interruption
			continue
		}
		if env.Version != ent.cur.Version+1 {
			return domain.Errorf(domain.Internal, "projections/pebbleviews: rebuild: stream %s: version %d follows %d", env.StreamID, env.Version, ent.cur.Version)
		}
		ent.cur = ent.cur.Apply(*env, evs[i])
		if !ent.dirty {
			ent.dirty = true
			b.dirty = append(b.dirty, ent)
		}
		b.pos = env.Position
		b.pending++
	}
	return nil
}

// change is a dirty view as a flush writes it: its entry, whose flushed
// view is the one written (the fold changes only cur meanwhile), and the
// index in build.olds of the view stored before, or -1.
type change struct {
	ent *entry
	old int32
}

// flush writes the dirty views, the counts and the position (and marks the
// generation live when final) as sorted tables, one per keyspace, built in
// parallel and ingested in one atomic step: no memtable inserts, no
// memtable flushes, no log. After a crash the generation holds every flush
// or none of a given one, so its position and counts always match its
// views. (A generation written by an older rebuild, or spoiled, may hold
// views ahead of its position; a resumed rebuild allows for that, see
// build.resumed.)
//
// The tables are written in the background while the fold goes on, from
// the entries' flushed views, which only a flush changes; a flush first waits for the previous one, so
// they are ingested in order, and a final flush waits for itself. Terminal
// views leave memory once their flush is in: nothing follows them.
func (b *build) flush(final bool) error {
	if err := b.wait(); err != nil {
		return err
	}
	counts := copyCounts(b.counts)
	// No flush is in flight now: the previous one's lists are free.
	dirty := slices.Grow(b.changes[:0], len(b.dirty))[:len(b.dirty)]
	b.changes = dirty
	olds := b.olds[:0]
	size := 0
	for i, ent := range b.dirty {
		dirty[i] = change{ent: ent, old: -1}
		if ent.stored {
			counts[ent.flushed.Status]--
			dirty[i].old = int32(len(olds))
			olds = append(olds, ent.flushed)
		}
		counts[ent.cur.Status]++
		size += len(ent.cur.OrderID) + len(ent.cur.CustomerName)
		ent.flushed, ent.stored, ent.dirty = ent.cur, true, false
		if ent.cur.Status.Terminal() {
			b.leaving = append(b.leaving, ent.cur.OrderID)
		}
	}
	b.olds = olds
	clear(b.dirty)
	b.dirty = b.dirty[:0]
	b.pending = 0
	b.counts = counts
	views := newTable(keyView, func(t *table) {
		// Key, then a record of at most 6 varints and the strings.
		t.grow(len(dirty), len(dirty)*(1+1+6*binary.MaxVarintLen64+7*binary.MaxVarintLen32)+size+3*len(dirty)*32)
		for i := range dirty {
			cur := &dirty[i].ent.flushed
			k := len(t.arena)
			t.arena = viewKey(t.arena, cur.OrderID)
			v := len(t.arena)
			t.arena = encodeView(t.arena, *cur)
			t.add(k, v, false)
		}
	})
	tables := []*table{views}
	for i, space := range indexSpaces {
		tables = append(tables, newTable(space, func(t *table) {
			t.grow(len(dirty), 2*(size+len(dirty)*(2+binary.MaxVarintLen32+13)))
			for j := range dirty {
				c := &dirty[j]
				k := len(t.arena)
				t.arena = appendIndexKey(t.arena, i, c.ent.flushed)
				t.add(k, len(t.arena), false)
				if c.old >= 0 {
					// The old entry goes, unless it is the same key.
					o := len(t.arena)
					t.arena = appendIndexKey(t.arena, i, olds[c.old])
					if bytes.Equal(t.arena[k:o], t.arena[o:]) {
						t.arena = t.arena[:o]
					} else {
						t.add(o, len(t.arena), true)
					}
				}
			}
		}))
	}
	meta := newTable('m', nil)
	for _, st := range order.Statuses {
		meta.set(countKey(st), binary.BigEndian.AppendUint64(nil, uint64(counts[st])))
	}
	meta.set(checkpointKey(b.consumer), binary.BigEndian.AppendUint64(nil, b.pos))
	if final {
		meta.set(metaStateKey, stateLive)
	}
	tables = append(tables, meta)
	b.flushes++
	done := make(chan error, 1)
	seq := b.flushes
	go func() {
		err := ingest(b.dir, b.g, seq, b.shards, tables)
		release(tables)
		if err == nil {
			b.g.countsMu.Lock()
			b.g.counts = copyCounts(counts)
			b.g.countsMu.Unlock()
		}
		done <- err
	}()
	b.inflight = done
	if final {
		return b.wait()
	}
	return nil
}

// idle reports whether no flush is in flight (any finished one is
// collected).
func (b *build) idle() bool {
	if b.inflight == nil {
		return true
	}
	select {
	case err := <-b.inflight:
		b.inflight = make(chan error, 1)
		b.inflight <- err
		return b.wait() == nil
	default:
		return false
	}
}

// wait waits for the flush in flight, if any, and returns its error (and
// that error again on every later call: the views in memory then claim to
// be stored when they may not be, so the rebuild must stop).
func (b *build) wait() error {
	if b.inflight != nil {
		b.failed = <-b.inflight
		b.inflight = nil
		if b.failed == nil {
			for _, id := range b.leaving {
				delete(b.views, id)
			}
			// Deleted slots slow every lookup that misses (a new order's)
			// until the map grows; a fresh map has none.
			if len(b.leaving) > 2*len(b.views) {
				views := make(map[string]*entry, max(len(b.views), b.mapSize))
				for id, ent := range b.views {
					views[id] = ent
				}
				b.views = views
			}
		}
		clear(b.leaving)
		b.leaving = b.leaving[:0]
	}
	return b.failed
}

// recount counts the views of db by status, from the status index.
func recount(db *pebble.DB) (map[order.Status]int64, error) {
	counts := map[order.Status]int64{}
	for _, st := range order.Statuses {
		prefix := []byte{keyStatus, statusByte(st)}
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: pebblelog.PrefixEnd(prefix)})
		if err != nil {
			return nil, storageErr("recount", err)
		}
		for ok := it.First(); ok; ok = it.Next() {
			counts[st]++
		}
		err = it.Close()
		if err != nil {
			return nil, storageErr("recount", err)
		}
	}
	return counts, nil
}
