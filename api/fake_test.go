package api_test

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"sync"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/projections"
)

// memStore is an in-memory eventstore.Store for handler tests. Hooks let a
// test fail an operation or slip in a concurrent write.
type memStore struct {
	mu      sync.Mutex
	streams map[string][]eventstore.Event
	keys    map[string]eventstore.Result
	pos     uint64

	// failWith, when set, is returned by every operation.
	failWith error
	// beforeAppend, when set, runs (unlocked) before each append.
	beforeAppend func(streamID string)
}

var _ eventstore.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{streams: map[string][]eventstore.Event{}, keys: map[string]eventstore.Result{}}
}

func (m *memStore) Append(ctx context.Context, streamID string, expected int64, events ...eventstore.Event) (eventstore.Result, error) {
	return m.AppendIdempotent(ctx, "", streamID, expected, events...)
}

func (m *memStore) AppendIdempotent(_ context.Context, key, streamID string, expected int64, events ...eventstore.Event) (eventstore.Result, error) {
	if hook := m.beforeAppend; hook != nil {
		m.beforeAppend = nil
		hook(streamID)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failWith != nil {
		return eventstore.Result{}, m.failWith
	}
	if key != "" {
		if r, ok := m.keys[key]; ok {
			r.Duplicate = true
			return r, nil
		}
	}
	cur := int64(len(m.streams[streamID]))
	if cur != expected {
		return eventstore.Result{}, &eventstore.ConflictError{StreamID: streamID, Expected: expected, Actual: cur}
	}
	for _, e := range events {
		cur++
		m.pos++
		e.StreamID, e.Version, e.Position = streamID, cur, m.pos
		// The audit chain, as every store computes it.
		if n := len(m.streams[streamID]); n > 0 {
			e.PrevHash = m.streams[streamID][n-1].Hash
		}
		e.Hash = eventstore.EventHash(&e, e.PrevHash)
		m.streams[streamID] = append(m.streams[streamID], e)
	}
	r := eventstore.Result{StreamID: streamID, Version: cur}
	if key != "" {
		m.keys[key] = r
	}
	return r, nil
}

func (m *memStore) Load(_ context.Context, streamID string, from int64) ([]eventstore.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failWith != nil {
		return nil, m.failWith
	}
	var out []eventstore.Event
	for _, e := range m.streams[streamID] {
		if e.Version >= from {
			out = append(out, e)
		}
	}
	return out, nil
}

// total returns how many events the store holds.
func (m *memStore) total() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int(m.pos)
}

// memViews is a read model kept by hand: tests project into it explicitly,
// so they can tell read-model answers from log answers.
type memViews struct {
	mu    sync.Mutex
	views map[string]projections.View
	fail  error
}

func newMemViews() *memViews { return &memViews{views: map[string]projections.View{}} }

func (v *memViews) put(view projections.View) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.views[view.OrderID] = view
}

func (v *memViews) Get(_ context.Context, id string) (projections.View, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.fail != nil {
		return projections.View{}, v.fail
	}
	view, ok := v.views[id]
	if !ok {
		return projections.View{}, order.ErrNotFound
	}
	return view, nil
}

// List pages newest first (ULIDs sort by time); the cursor is the last ID
// of the previous page, quoted as JSON so garbage is detectable.
func (v *memViews) List(_ context.Context, q projections.ListQuery) (projections.Page, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	after := ""
	if q.Cursor != "" {
		if err := json.Unmarshal([]byte(q.Cursor), &after); err != nil || !domain.ValidULID(after) {
			return projections.Page{}, projections.ErrBadCursor
		}
	}
	var ids []string
	for id, view := range v.views {
		if (q.Status == "" || view.Status == q.Status) && (q.Customer == "" || view.CustomerName == q.Customer) && (after == "" || id < after) {
			ids = append(ids, id)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	var p projections.Page
	for _, id := range ids {
		if len(p.Items) == q.Limit {
			b, _ := json.Marshal(p.Items[len(p.Items)-1].OrderID)
			p.NextCursor = string(b)
			break
		}
		p.Items = append(p.Items, v.views[id])
	}
	return p, nil
}

// streamIDs returns the IDs of every stream, sorted.
func (m *memStore) streamIDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id := range m.streams {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
