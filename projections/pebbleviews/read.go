package pebbleviews

import (
	"bytes"
	"context"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/internal/pebblelog"
	"github.com/orderledger/orderledger/projections"
)

// read runs f on the live generation, held open, or returns ErrClosed.
func (s *Store) read(ctx context.Context, f func(g *generation) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return f(s.gen)
}

// Get implements projections.ReadModel.
func (s *Store) Get(ctx context.Context, orderID string) (projections.View, error) {
	if orderID == "" || len(orderID) > MaxIDLen {
		return projections.View{}, order.ErrNotFound
	}
	var v projections.View
	err := s.read(ctx, func(g *generation) error {
		var ok bool
		var err error
		v, ok, err = getView(g.db, orderID)
		if err == nil && !ok {
			err = order.ErrNotFound
		}
		return err
	})
	return v, err
}

// List implements projections.ReadModel.
func (s *Store) List(ctx context.Context, q projections.ListQuery) (projections.Page, error) {
	q, err := q.Validate()
	if err != nil {
		return projections.Page{}, err
	}
	var after []byte
	if q.Cursor != "" {
		after, err = s.cursors.Open(q, q.Cursor)
		if _, ok := orderID(after); err != nil || !ok {
			return projections.Page{}, projections.ErrBadCursor
		}
	}
	prefix := indexPrefix(nil, q.Status, q.Customer)
	lower := append(append(bytes.Clone(prefix), after...), 0) // strictly after the cursor
	if after == nil {
		lower = prefix
	}
	page := projections.Page{Items: []projections.View{}}
	err = s.read(ctx, func(g *generation) error {
		it, err := g.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: pebblelog.PrefixEnd(prefix)})
		if err != nil {
			return storageErr("list", err)
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			if len(page.Items) == q.Limit {
				last := page.Items[len(page.Items)-1]
				page.NextCursor = s.cursors.Seal(q, appendOrder(nil, last.CreatedAt, last.OrderID))
				break
			}
			id, ok := orderID(it.Key()[len(prefix):])
			if !ok {
				return domain.Errorf(domain.Internal, "projections/pebbleviews: list: corrupt index key %q", it.Key())
			}
			v, found, err := getView(g.db, id)
			if err != nil {
				return err
			}
			if !found {
				return domain.Errorf(domain.Internal, "projections/pebbleviews: list: index entry without a view: %s", id)
			}
			if q.Status != "" && v.Status != q.Status {
				continue
			}
			page.Items = append(page.Items, v)
		}
		if err := it.Error(); err != nil {
			return storageErr("list", err)
		}
		return nil
	})
	if err != nil {
		return projections.Page{}, err
	}
	return page, nil
}

// Counts implements projections.ReadModel.
func (s *Store) Counts(ctx context.Context) (map[order.Status]int64, error) {
	out := make(map[order.Status]int64, len(order.Statuses))
	err := s.read(ctx, func(g *generation) error {
		g.countsMu.Lock()
		defer g.countsMu.Unlock()
		for _, st := range order.Statuses {
			out[st] = g.counts[st]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Checkpoint implements eventstore.Checkpoints: the position of the feed
// the live generation reflects for consumer.
func (s *Store) Checkpoint(ctx context.Context, consumer string) (uint64, error) {
	var pos uint64
	err := s.read(ctx, func(g *generation) error {
		var err error
		pos, err = getUint64(g.db, checkpointKey(consumer))
		return err
	})
	return pos, err
}
