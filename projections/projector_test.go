package projections_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/ordergen"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/readmodeltest"
)

// memModel is a ReadModel in a map, for property tests that run thousands of
// rounds (the embedded adapter runs the same properties in its conformance
// suite). It can inject a competing writer before a Put.
type memModel struct {
	mu    sync.Mutex
	views map[string]projections.View
	puts  atomic.Int64
	// race, when set, runs before each Put without the lock held.
	race func(v projections.View)
}

func newMem() *memModel { return &memModel{views: map[string]projections.View{}} }

func (m *memModel) Get(_ context.Context, id string) (projections.View, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.views[id]
	if !ok {
		return projections.View{}, order.ErrNotFound
	}
	return v, nil
}

func (m *memModel) Put(_ context.Context, expected int64, v projections.View) error {
	if m.race != nil {
		m.race(v)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts.Add(1)
	if cur := m.views[v.OrderID]; cur.Version != expected {
		return &projections.ConflictError{OrderID: v.OrderID, Expected: expected, Actual: cur.Version}
	}
	m.views[v.OrderID] = v
	return nil
}

func (m *memModel) List(context.Context, projections.ListQuery) (projections.Page, error) {
	return projections.Page{}, errors.New("memModel: no List")
}

func (m *memModel) Counts(context.Context) (map[order.Status]int64, error) {
	return nil, errors.New("memModel: no Counts")
}

// countingStreams counts Loads (read-repairs).
type countingStreams struct {
	*readmodeltest.Streams
	loads atomic.Int64
}

func (c *countingStreams) Load(ctx context.Context, id string, from int64) ([]eventstore.Event, error) {
	c.loads.Add(1)
	return c.Streams.Load(ctx, id, from)
}

func checkConverged(t *testing.T, m *memModel, streams [][]eventstore.Event) {
	t.Helper()
	for _, s := range streams {
		want, err := projections.Fold(codec, s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Get(context.Background(), s[0].StreamID)
		if err != nil {
			t.Fatalf("order %s: %v", s[0].StreamID, err)
		}
		if d := readmodeltest.Diff(got, want); d != "" {
			t.Fatalf("order %s: %s", s[0].StreamID, d)
		}
	}
}

// TestProjectorConvergesProperty: for many random histories and random
// at-least-once deliveries (dropped, duplicated, reordered events, in random
// batches, one at a time or grouped), every view ends as the fold of its
// full stream.
func TestProjectorConvergesProperty(t *testing.T) {
	t.Parallel()
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	for seed := range uint64(rounds) {
		rng := rand.New(rand.NewPCG(seed, 42))
		streams := ordergen.Orders(rng, codec, 1+rng.IntN(12), t0)
		src := &countingStreams{Streams: readmodeltest.NewStreams(streams)}
		m := newMem()
		p, err := projections.NewProjector(m, src, codec)
		if err != nil {
			t.Fatal(err)
		}
		p.Parallel = 1 + rng.IntN(4)
		d := readmodeltest.Deliveries(rng, ordergen.Interleave(rng, streams))
		for len(d) > 0 {
			n := min(len(d), 1+rng.IntN(8))
			var err error
			if n == 1 {
				err = p.Handle(context.Background(), d[0])
			} else {
				err = p.HandleBatch(context.Background(), d[:n])
			}
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			d = d[n:]
		}
		checkConverged(t, m, streams)
	}
}

// TestProjectorDuplicatesAreNoOps: re-delivering everything writes nothing.
func TestProjectorDuplicatesAreNoOps(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 5))
	streams := ordergen.Orders(rng, codec, 30, t0)
	src := &countingStreams{Streams: readmodeltest.NewStreams(streams)}
	m := newMem()
	p, _ := projections.NewProjector(m, src, codec)
	log := ordergen.Interleave(rng, streams)
	for _, e := range log {
		if err := p.Handle(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if n := src.loads.Load(); n != 0 {
		t.Errorf("in-order delivery made %d read-repairs, want 0", n)
	}
	puts := m.puts.Load()
	if puts != int64(len(log)) {
		t.Errorf("%d Puts for %d events", puts, len(log))
	}
	if err := p.HandleBatch(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	if m.puts.Load() != puts {
		t.Errorf("duplicates wrote %d times", m.puts.Load()-puts)
	}
	checkConverged(t, m, streams)
}

// TestProjectorGapRepairs: the last event alone rebuilds the view from the
// store.
func TestProjectorGapRepairs(t *testing.T) {
	t.Parallel()
	streams := ordergen.Orders(rand.New(rand.NewPCG(8, 8)), codec, 20, t0)
	src := &countingStreams{Streams: readmodeltest.NewStreams(streams)}
	m := newMem()
	p, _ := projections.NewProjector(m, src, codec)
	repairs := int64(0)
	for _, s := range streams {
		if err := p.Handle(context.Background(), s[len(s)-1]); err != nil {
			t.Fatal(err)
		}
		if len(s) > 1 {
			repairs++
		}
	}
	if src.loads.Load() != repairs {
		t.Errorf("%d read-repairs, want %d", src.loads.Load(), repairs)
	}
	checkConverged(t, m, streams)
}

// TestProjectorRetriesAfterConflict: a competing writer that moves the view
// between the projector's read and write makes it read again and converge.
func TestProjectorRetriesAfterConflict(t *testing.T) {
	t.Parallel()
	streams := ordergen.Orders(rand.New(rand.NewPCG(10, 1)), codec, 10, t0)
	src := readmodeltest.NewStreams(streams)
	m := newMem()
	p, _ := projections.NewProjector(m, src, codec)
	var once sync.Map
	m.race = func(v projections.View) {
		// The first time each order is written, a competitor writes the
		// full fold first.
		if _, loaded := once.LoadOrStore(v.OrderID, true); loaded {
			return
		}
		envs, _ := src.Load(context.Background(), v.OrderID, 1)
		full, _ := projections.Fold(codec, envs)
		m.mu.Lock()
		m.views[v.OrderID] = full
		m.mu.Unlock()
	}
	for _, s := range streams {
		if err := p.Handle(context.Background(), s[0]); err != nil {
			t.Fatal(err)
		}
	}
	checkConverged(t, m, streams)
}

func TestProjectorFailsOnUndecodableEvent(t *testing.T) {
	t.Parallel()
	s := ordergen.Orders(rand.New(rand.NewPCG(1, 1)), codec, 1, t0)[0]
	bad := s[0]
	bad.Data = []byte(`{"quantity":"many"}`)
	m := newMem()
	p, _ := projections.NewProjector(m, readmodeltest.NewStreams(nil), codec)
	if err := p.Handle(context.Background(), bad); err == nil {
		t.Fatal("an undecodable event was projected")
	}
	if _, err := m.Get(context.Background(), bad.StreamID); !errors.Is(err, order.ErrNotFound) {
		t.Errorf("a view was stored: %v", err)
	}
	if _, err := projections.NewProjector(nil, readmodeltest.NewStreams(nil), codec); err == nil {
		t.Error("NewProjector accepted a nil read model")
	}
}
