package pebbleviews

import (
	"context"
	"encoding/binary"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/projections"
)

// ErrClosed is returned by a read model used after Close.
var ErrClosed = domain.Errorf(domain.Unavailable, "projections/pebbleviews: read model is closed")

// Put implements projections.ReadModel. The write is fsynced before it
// returns.
func (s *Store) Put(ctx context.Context, expected int64, v projections.View) error {
	if err := checkPut(expected, v); err != nil {
		return err
	}
	return s.do(ctx, request{put: &putReq{expected: expected, view: v}})
}

// checkPut validates a put of v over expected.
func checkPut(expected int64, v projections.View) error {
	switch {
	case v.OrderID == "" || len(v.OrderID) > MaxIDLen:
		return domain.Errorf(domain.Invalid, "projections/pebbleviews: put: order ID must be 1..%d bytes", MaxIDLen)
	case expected < 0 || v.Version <= expected:
		return domain.Errorf(domain.Invalid, "projections/pebbleviews: put %s: version %d does not follow expected version %d", v.OrderID, v.Version, expected)
	case !v.Status.Valid():
		return domain.Errorf(domain.Invalid, "projections/pebbleviews: put %s: invalid status %q", v.OrderID, v.Status)
	}
	return nil
}

// PutBatch implements projections.CheckpointedWriter: the puts and the
// checkpoint are one synced pebble batch, written alone (not grouped with
// other writes), or nothing when a put's expected version does not match.
func (s *Store) PutBatch(ctx context.Context, puts []projections.Put, consumer string, pos uint64) error {
	if len(consumer) > MaxIDLen {
		return domain.Errorf(domain.Invalid, "projections/pebbleviews: put batch: consumer name must be 1..%d bytes", MaxIDLen)
	}
	seen := make(map[string]bool, len(puts))
	for _, p := range puts {
		if err := checkPut(p.Expected, p.View); err != nil {
			return err
		}
		if seen[p.View.OrderID] {
			return domain.Errorf(domain.Invalid, "projections/pebbleviews: put batch: order %s appears twice", p.View.OrderID)
		}
		seen[p.View.OrderID] = true
	}
	if puts == nil {
		puts = []projections.Put{} // a batch, not a checkpoint request
	}
	return s.do(ctx, request{batch: puts, consumer: consumer, pos: pos})
}

// SaveCheckpoint implements eventstore.Checkpoints. It is fsynced before it
// returns, and never moves a checkpoint backwards (a rebuild may have moved
// it past the subscription).
func (s *Store) SaveCheckpoint(ctx context.Context, consumer string, pos uint64) error {
	if consumer == "" || len(consumer) > MaxIDLen {
		return domain.Errorf(domain.Invalid, "projections/pebbleviews: save checkpoint: consumer name must be 1..%d bytes", MaxIDLen)
	}
	return s.do(ctx, request{consumer: consumer, pos: pos})
}

// exclusive runs fn in the writer goroutine: no other write runs meanwhile.
func (s *Store) exclusive(ctx context.Context, fn func() error) error {
	return s.do(ctx, request{fn: fn})
}

// do hands r to the writer and waits for its answer. Once handed over, the
// write completes even if ctx ends.
func (s *Store) do(ctx context.Context, r request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.ctx = ctx
	r.reply = make(chan error, 1)
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.quit:
		return ErrClosed
	}
	return <-r.reply
}

// own is the writer goroutine.
func (s *Store) own() {
	defer close(s.done)
	for {
		var r request
		select {
		case <-s.quit:
			return
		case r = <-s.reqs:
		}
		if r.alone() {
			s.serveAlone(r)
			continue
		}
		group := []request{r}
		var next *request
	drain:
		for len(group) < maxGroup {
			select {
			case r2 := <-s.reqs:
				if r2.alone() {
					next = &r2
					break drain
				}
				group = append(group, r2)
			default:
				break drain
			}
		}
		s.commitGroup(group)
		if next != nil {
			s.serveAlone(*next)
		}
	}
}

// alone reports whether r is served on its own rather than grouped: an
// exclusive function, or a batch, which commits or fails as a whole.
func (r request) alone() bool { return r.fn != nil || r.batch != nil }

// serveAlone serves a request that is not grouped.
func (s *Store) serveAlone(r request) {
	if r.fn != nil {
		s.recent = nil // the function may write anything, or switch generations
		r.reply <- r.fn()
		return
	}
	r.reply <- s.commitBatch(r.batch, r.consumer, r.pos)
}

// maxRecent bounds the views the writer remembers (about 300 bytes each).
const maxRecent = 8192

// storedView returns the stored view of id in g: the one the writer last
// committed for it when it remembers it (the writer is the only one that
// writes the live generation, so that is what pebble holds), else pebble's.
func (s *Store) storedView(g *generation, id string) (projections.View, bool, error) {
	if s.recentGen == g {
		if v, ok := s.recent[id]; ok {
			return v, true, nil
		}
	}
	return getView(g.db, id)
}

// remember notes views just committed to g (call only after the commit).
func (s *Store) remember(g *generation, puts []projections.Put) {
	if s.recentGen != g || s.recent == nil || len(s.recent)+len(puts) > maxRecent {
		s.recent, s.recentGen = make(map[string]projections.View, min(maxRecent, 2*len(puts))), g
	}
	for _, p := range puts {
		s.recent[p.View.OrderID] = p.View
	}
}

// commitBatch stages puts and the checkpoint in one batch and commits it
// synced, or writes nothing when a put conflicts.
func (s *Store) commitBatch(puts []projections.Put, consumer string, pos uint64) error {
	g := s.gen
	b := g.db.NewBatch()
	defer b.Close()
	delta := map[order.Status]int64{}
	for _, p := range puts {
		old, had, err := s.storedView(g, p.View.OrderID)
		if err != nil {
			return err
		}
		if old.Version != p.Expected {
			return &projections.ConflictError{OrderID: p.View.OrderID, Expected: p.Expected, Actual: old.Version}
		}
		stageView(b, delta, old, had, p.View)
	}
	if consumer != "" {
		cur, err := getUint64(g.db, checkpointKey(consumer))
		if err != nil {
			return err
		}
		if pos > cur {
			_ = b.Set(checkpointKey(consumer), binary.BigEndian.AppendUint64(nil, pos), nil)
		}
	}
	if err := s.commitCounted(g, b, delta); err != nil {
		return err
	}
	s.remember(g, puts)
	return nil
}

// stageView adds to b the writes that replace old (when had) by v, and
// counts the change of status in delta.
func stageView(b *pebble.Batch, delta map[order.Status]int64, old projections.View, had bool, v projections.View) {
	writeView(b, old, had, v, encodeView(nil, v))
	if had {
		delta[old.Status]--
	}
	delta[v.Status]++
}

// commitCounted adds the counters that delta changes to b, commits it
// synced (when it holds anything) and then publishes the new counts. The
// counts' lock is held across the commit, so that Counts waits for a commit
// under way: a reader that saw the commit's views or checkpoint (the
// projector's lag) then sees its counts too.
func (s *Store) commitCounted(g *generation, b *pebble.Batch, delta map[order.Status]int64) error {
	g.countsMu.Lock()
	defer g.countsMu.Unlock()
	counts := make(map[order.Status]int64, len(g.counts))
	for st, n := range g.counts {
		counts[st] = n
	}
	for st, d := range delta {
		if d != 0 && st.Valid() {
			counts[st] += d
			_ = b.Set(countKey(st), binary.BigEndian.AppendUint64(nil, uint64(counts[st])), nil)
		}
	}
	if b.Empty() {
		return nil
	}
	// A nearly full disk refuses the batch (503) rather than let pebble's
	// log write fail, which would end the process.
	if err := s.space.Check("commit"); err != nil {
		return err
	}
	if err := commitSync(b); err != nil {
		return err
	}
	s.commits.Add(1)
	g.counts = counts
	return nil
}

// commitGroup checks and commits a group of puts and checkpoints as one
// synced batch, then answers each.
func (s *Store) commitGroup(group []request) {
	g := s.gen
	errs := make([]error, len(group))
	b := g.db.NewBatch()
	defer b.Close()
	overlay := map[string]projections.View{}
	checkpoints := map[string]uint64{}
	delta := map[order.Status]int64{}
	for i, r := range group {
		if r.put == nil {
			cur, ok := checkpoints[r.consumer]
			if !ok {
				var err error
				if cur, err = getUint64(g.db, checkpointKey(r.consumer)); err != nil {
					errs[i] = err
					continue
				}
			}
			if r.pos > cur {
				_ = b.Set(checkpointKey(r.consumer), binary.BigEndian.AppendUint64(nil, r.pos), nil)
				cur = r.pos
			}
			checkpoints[r.consumer] = cur
			continue
		}
		v := r.put.view
		old, had := overlay[v.OrderID]
		if !had {
			var err error
			if old, had, err = getView(g.db, v.OrderID); err != nil {
				errs[i] = err
				continue
			}
		}
		if old.Version != r.put.expected {
			errs[i] = &projections.ConflictError{OrderID: v.OrderID, Expected: r.put.expected, Actual: old.Version}
			continue
		}
		stageView(b, delta, old, had, v)
		overlay[v.OrderID] = v
	}
	for id := range overlay {
		delete(s.recent, id) // written by a Put: read pebble next time
	}
	err := s.commitCounted(g, b, delta)
	for i, r := range group {
		if errs[i] == nil && err != nil {
			errs[i] = err
		}
		r.reply <- errs[i]
	}
}

// commitSync commits b with pebble.Sync. A failed WAL write or sync does
// not return: pebble calls Fatalf, which ends the process (internal/pebblelog).
func commitSync(b *pebble.Batch) error {
	if err := b.Commit(pebble.Sync); err != nil {
		return storageErr("commit", err)
	}
	return nil
}
