package pebblestore

import (
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// iterPool keeps a few pebble iterators for reuse by Load and ReadFeed.
// Creating and closing an iterator costs about as much as reading a short
// stream, so reads that follow each other without a commit in between (a
// replay, a projection rebuild, loading many orders) reuse one. A pebble
// iterator is a point-in-time view, so each pooled iterator remembers the
// feed head it was created at and is only reused while that is still the
// head: it then sees every durable event. The pool holds at most poolSize
// iterators, each pinning the database state of its creation.
type iterPool struct {
	mu   sync.Mutex
	free []pooledIter
	// epoch counts rewrites that leave the head where it was (Migrate):
	// an iterator created before one is never reused after it.
	epoch uint64
	born  map[*pebble.Iterator]uint64 // epoch of each iterator out of the pool
}

type pooledIter struct {
	it    *pebble.Iterator
	head  uint64
	epoch uint64
}

const poolSize = 4

// get returns an iterator that sees every event up to head, with the given
// bounds. The caller must not change lo and hi until it calls put.
func (p *iterPool) get(db *pebble.DB, head uint64, lo, hi []byte) (*pebble.Iterator, error) {
	p.mu.Lock()
	var it *pebble.Iterator
	for len(p.free) > 0 && it == nil {
		pi := p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
		if pi.head == head && pi.epoch == p.epoch {
			it = pi.it
		} else {
			_ = pi.it.Close()
		}
	}
	epoch := p.epoch
	if it != nil {
		p.borrow(it, epoch)
	}
	p.mu.Unlock()
	if it == nil {
		var err error
		if it, err = db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi}); err != nil {
			return nil, err
		}
		p.mu.Lock()
		p.borrow(it, epoch)
		p.mu.Unlock()
		return it, nil
	}
	it.SetBounds(lo, hi)
	return it, nil
}

func (p *iterPool) borrow(it *pebble.Iterator, epoch uint64) {
	if p.born == nil {
		p.born = map[*pebble.Iterator]uint64{}
	}
	p.born[it] = epoch
}

// invalidate keeps every iterator created so far from being reused.
func (p *iterPool) invalidate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.epoch++
	for _, pi := range p.free {
		_ = pi.it.Close()
	}
	p.free = nil
}

// put returns it to the pool (created when the feed head was head), or
// closes it.
func (p *iterPool) put(it *pebble.Iterator, head uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	epoch := p.born[it]
	delete(p.born, it)
	if it.Error() == nil && epoch == p.epoch && len(p.free) < poolSize {
		p.free = append(p.free, pooledIter{it: it, head: head, epoch: epoch})
		return
	}
	_ = it.Close()
}

// closeAll closes every pooled iterator; the database can then be closed.
func (p *iterPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pi := range p.free {
		_ = pi.it.Close()
	}
	p.free = nil
}
