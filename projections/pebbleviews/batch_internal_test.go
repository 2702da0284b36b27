package pebbleviews

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/internal/ordergen"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
)

func pendingView(ids domain.IDSource, at time.Time) projections.View {
	return projections.View{OrderID: ids(at), CustomerName: "Ada", ProductName: "p", Quantity: 1,
		Status: order.StatusPending, Version: 1, CreatedAt: at, UpdatedAt: at}
}

// TestPutBatchIsOneAtomicCommit: a batch of views and its checkpoint is one
// synced commit, found whole after a reopen; a batch with one conflicting
// put stores nothing (no view, no checkpoint, no count).
func TestPutBatchIsOneAtomicCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids := domain.NewULIDSource(nil)
	base := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	var puts []projections.Put
	for i := range 20 {
		puts = append(puts, projections.Put{Expected: 0, View: pendingView(ids, base.Add(time.Duration(i)*time.Second))})
	}
	before := s.commits.Load()
	if err := s.PutBatch(ctx, puts, "proj", 40); err != nil {
		t.Fatal(err)
	}
	if n := s.commits.Load() - before; n != 1 {
		t.Fatalf("a batch of 20 views and a checkpoint took %d commits, want 1", n)
	}

	// One put conflicts (the stored view is at 1, not 0): nothing is stored.
	done := puts[0].View
	done.Status, done.Version = order.StatusCompleted, 2
	fresh := pendingView(ids, base.Add(time.Minute))
	bad := []projections.Put{{Expected: 1, View: done}, {Expected: 0, View: fresh}, {Expected: 0, View: puts[1].View}}
	var conflict *projections.ConflictError
	if err := s.PutBatch(ctx, bad, "proj", 80); !errors.As(err, &conflict) || conflict.OrderID != puts[1].View.OrderID || conflict.Actual != 1 {
		t.Fatalf("conflicting batch: %v, want a conflict on %s at version 1", err, puts[1].View.OrderID)
	}
	// A checkpoint never moves back, and an empty consumer moves none.
	if err := s.PutBatch(ctx, nil, "proj", 10); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBatch(ctx, nil, "", 99); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if cp, err := s.Checkpoint(ctx, "proj"); err != nil || cp != 40 {
		t.Fatalf("checkpoint after reopen: %d, %v; want 40", cp, err)
	}
	for _, p := range puts {
		v, err := s.Get(ctx, p.View.OrderID)
		if err != nil || v.Version != 1 || v.Status != order.StatusPending {
			t.Fatalf("view %s after reopen: %+v, %v", p.View.OrderID, v, err)
		}
	}
	if _, err := s.Get(ctx, fresh.OrderID); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("a put of the refused batch was stored: %v", err)
	}
	counts, err := s.Counts(ctx)
	if err != nil || counts[order.StatusPending] != 20 || counts[order.StatusCompleted] != 0 {
		t.Fatalf("counts after reopen: %v, %v; want 20 pending", counts, err)
	}
	if err := s.PutBatch(ctx, []projections.Put{puts[2], puts[2]}, "proj", 50); err == nil {
		t.Fatal("PutBatch took the same order twice")
	}
}

// TestSubscriptionBatchIsOneCommit: the subscription writes each batch of
// the feed, views and checkpoint, as one commit of the read model (it took
// one per group of concurrent puts plus one for the checkpoint), and the
// views are the fold of the log.
func TestSubscriptionBatchIsOneCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	codec := orders.NewCodec()
	es, err := pebblestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	streams := ordergen.Orders(rand.New(rand.NewPCG(7, 7)), codec, 300, time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC))
	log := ordergen.Interleave(rand.New(rand.NewPCG(8, 8)), streams)
	for _, e := range log {
		if _, err := es.Append(ctx, e.StreamID, e.Version-1, e); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := projections.NewProjector(s, es, codec)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := projections.NewSubscription(es, s, p, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	batches := 0
	before := s.commits.Load()
	for {
		moved, err := sub.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !moved {
			break
		}
		batches++
	}
	if want := (len(log) + 511) / 512; batches != want {
		t.Fatalf("%d events in %d batches, want %d", len(log), batches, want)
	}
	if n := s.commits.Load() - before; n != uint64(batches) {
		t.Fatalf("%d batches took %d commits, want one each", batches, n)
	}
	if cp, err := s.Checkpoint(ctx, projections.Consumer); err != nil || cp != uint64(len(log)) {
		t.Fatalf("checkpoint %d, %v; want %d", cp, err, len(log))
	}
	for _, st := range streams {
		want, err := projections.Fold(codec, st)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, want.OrderID)
		if err != nil || got.Version != want.Version || got.Status != want.Status {
			t.Fatalf("view %s: %+v, %v; want version %d %s", want.OrderID, got, err, want.Version, want.Status)
		}
	}
}

// TestPutBatchSeesEveryOtherWrite: a batch checks its expected versions
// against the views the writer remembers from earlier batches; a Put in
// between, and an exclusive function, are seen all the same.
func TestPutBatchSeesEveryOtherWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids := domain.NewULIDSource(nil)
	v := pendingView(ids, time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	if err := s.PutBatch(ctx, []projections.Put{{Expected: 0, View: v}}, "c", 1); err != nil {
		t.Fatal(err)
	}
	next := func(v projections.View, st order.Status) projections.View {
		v.Version++
		v.Status = st
		return v
	}
	v2 := next(v, order.StatusCompleted)
	if err := s.Put(ctx, 1, v2); err != nil { // not through a batch
		t.Fatal(err)
	}
	var conflict *projections.ConflictError
	if err := s.PutBatch(ctx, []projections.Put{{Expected: 1, View: v2}}, "c", 2); !errors.As(err, &conflict) || conflict.Actual != 2 {
		t.Fatalf("a batch over a Put it did not see: %v, want a conflict at version 2", err)
	}
	v3 := next(v2, order.StatusCompleted)
	if err := s.PutBatch(ctx, []projections.Put{{Expected: 2, View: v3}}, "c", 3); err != nil {
		t.Fatal(err)
	}
	// An exclusive function writes behind the remembered views.
	v4 := next(v3, order.StatusCancelled)
	if err := s.exclusive(ctx, func() error {
		b := s.gen.db.NewBatch()
		defer b.Close()
		writeView(b, v3, true, v4, encodeView(nil, v4))
		return b.Commit(nil)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBatch(ctx, []projections.Put{{Expected: 3, View: next(v3, order.StatusFailed)}}, "c", 4); !errors.As(err, &conflict) || conflict.Actual != 4 {
		t.Fatalf("a batch over an exclusive write: %v, want a conflict at version 4", err)
	}
	if got, err := s.Get(ctx, v.OrderID); err != nil || got.Version != 4 || got.Status != order.StatusCancelled {
		t.Fatalf("stored %+v, %v; want version 4, cancelled", got, err)
	}
}

// TestCountsAgreeWithTheCheckpoint: a reader that sees a batch's checkpoint
// sees its counts too (the checkpoint is in the batch's commit, the counts
// are published from memory, so Counts waits for a commit under way).
func TestCountsAgreeWithTheCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids := domain.NewULIDSource(nil)
	base := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	const batches = 200
	done := make(chan error, 1)
	go func() {
		for i := range batches {
			put := []projections.Put{{Expected: 0, View: pendingView(ids, base.Add(time.Duration(i)*time.Second))}}
			if err := s.PutBatch(ctx, put, "proj", uint64(i+1)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			return
		default:
		}
		pos, err := s.Checkpoint(ctx, "proj")
		if err != nil {
			t.Fatal(err)
		}
		counts, err := s.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if counts[order.StatusPending] < int64(pos) {
			t.Fatalf("checkpoint %d (one Pending view per position) with %d Pending counted", pos, counts[order.StatusPending])
		}
	}
}
