package projections_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/ordergen"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/readmodeltest"
)

// batchModel is a memModel that is also a CheckpointedWriter: PutBatch
// applies every put and the checkpoint under one lock, or nothing.
type batchModel struct {
	*memModel
	cps     map[string]uint64
	batches int
	// raceBatch, when set, runs before each PutBatch without the lock held.
	raceBatch func(puts []projections.Put)
}

func newBatchModel() *batchModel { return &batchModel{memModel: newMem(), cps: map[string]uint64{}} }

func (m *batchModel) PutBatch(_ context.Context, puts []projections.Put, consumer string, pos uint64) error {
	if m.raceBatch != nil {
		m.raceBatch(puts)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range puts {
		if cur := m.views[p.View.OrderID]; cur.Version != p.Expected {
			return &projections.ConflictError{OrderID: p.View.OrderID, Expected: p.Expected, Actual: cur.Version}
		}
	}
	for _, p := range puts {
		m.views[p.View.OrderID] = p.View
	}
	if consumer != "" && pos > m.cps[consumer] {
		m.cps[consumer] = pos
	}
	m.batches++
	return nil
}

func (m *batchModel) Checkpoint(_ context.Context, consumer string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cps[consumer], nil
}

func (m *batchModel) SaveCheckpoint(_ context.Context, consumer string, pos uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cps[consumer] = max(m.cps[consumer], pos)
	return nil
}

var _ projections.CheckpointedWriter = (*batchModel)(nil)

// TestHandleBatchAtConverges: random at-least-once deliveries in random
// batches, each written with its checkpoint in one PutBatch, while a
// competitor moves some views between the projector's reads and its write:
// every view ends as the fold of its stream, each batch is one PutBatch that
// moves the checkpoint, and no Put is ever used.
func TestHandleBatchAtConverges(t *testing.T) {
	t.Parallel()
	for seed := range uint64(100) {
		rng := rand.New(rand.NewPCG(seed, 7))
		streams := ordergen.Orders(rng, codec, 1+rng.IntN(12), t0)
		src := readmodeltest.NewStreams(streams)
		m := newBatchModel()
		var once sync.Map
		m.raceBatch = func(puts []projections.Put) {
			// The first time an order is in a batch, a competitor may
			// write its full fold first.
			for _, p := range puts {
				if _, loaded := once.LoadOrStore(p.View.OrderID, true); loaded || seed%2 == 0 {
					continue
				}
				envs, _ := src.Load(context.Background(), p.View.OrderID, 1)
				full, _ := projections.Fold(codec, envs)
				m.mu.Lock()
				m.views[p.View.OrderID] = full
				m.mu.Unlock()
			}
		}
		p, err := projections.NewProjector(m, src, codec)
		if err != nil {
			t.Fatal(err)
		}
		p.Parallel = 1 + rng.IntN(4)
		d := readmodeltest.Deliveries(rng, ordergen.Interleave(rng, streams))
		for pos := uint64(1); len(d) > 0; pos++ {
			n := min(len(d), 1+rng.IntN(8))
			before := m.batches
			if err := p.HandleBatchAt(context.Background(), d[:n], "c", pos); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			if cp, _ := m.Checkpoint(context.Background(), "c"); cp != pos || m.batches != before+1 {
				t.Fatalf("seed %d: after batch %d the checkpoint is %d after %d PutBatches", seed, pos, cp, m.batches-before)
			}
			d = d[n:]
		}
		if n := m.puts.Load(); n != 0 {
			t.Fatalf("seed %d: %d single Puts", seed, n)
		}
		checkConverged(t, m.memModel, streams)
	}
}

// missingStreams serves every stream but one, as a store that has not yet
// committed it would.
type missingStreams struct {
	*readmodeltest.Streams
	missing string
}

func (s missingStreams) Load(ctx context.Context, id string, from int64) ([]eventstore.Event, error) {
	if id == s.missing {
		return nil, nil
	}
	return s.Streams.Load(ctx, id, from)
}

// TestHandleBatchAtKeepsCheckpointOnFailure: a stream whose repair the store
// cannot serve fails the batch; the other streams' views are written, the
// checkpoint stays where it was.
func TestHandleBatchAtKeepsCheckpointOnFailure(t *testing.T) {
	t.Parallel()
	streams := ordergen.Orders(rand.New(rand.NewPCG(3, 3)), codec, 6, t0)
	bad := -1
	for i, s := range streams {
		if len(s) > 1 {
			bad = i
			break
		}
	}
	if bad < 0 {
		t.Fatal("no generated order has more than one event")
	}
	m := newBatchModel()
	p, _ := projections.NewProjector(m, missingStreams{readmodeltest.NewStreams(streams), streams[bad][0].StreamID}, codec)
	// The last event of each stream alone: each longer one needs a repair.
	var batch []eventstore.Event
	for _, s := range streams {
		batch = append(batch, s[len(s)-1])
	}
	if err := p.HandleBatchAt(context.Background(), batch, "c", 9); err == nil {
		t.Fatal("a batch with an unrepairable stream succeeded")
	}
	if cp, _ := m.Checkpoint(context.Background(), "c"); cp != 0 {
		t.Fatalf("the checkpoint moved to %d past a failed stream", cp)
	}
	if _, err := m.Get(context.Background(), streams[bad][0].StreamID); err == nil {
		t.Fatal("the unrepairable stream has a view")
	}
	checkConverged(t, m.memModel, append(append([][]eventstore.Event(nil), streams[:bad]...), streams[bad+1:]...))
	plain, _ := projections.NewProjector(newMem(), readmodeltest.NewStreams(nil), codec)
	if err := plain.HandleBatchAt(context.Background(), batch, "c", 9); err == nil {
		t.Fatalf("HandleBatchAt on a read model without PutBatch: %v", err)
	}
}
