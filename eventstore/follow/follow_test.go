package follow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/follow"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
)

var ids = domain.NewULIDSource(nil)

func openStore(t *testing.T) *pebblestore.Store {
	t.Helper()
	s, err := pebblestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// appendN appends n one-event streams.
func appendN(t *testing.T, s *pebblestore.Store, n int) {
	t.Helper()
	for i := range n {
		now := time.Now().UTC()
		ev := eventstore.Event{EventID: ids(now), Type: "Tested", SchemaVersion: 1, OccurredAt: now, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
		if _, err := s.Append(context.Background(), ids(now), 0, ev); err != nil {
			t.Fatal(err)
		}
	}
}

// recorder is a Handler that records the positions it was handed, and
// fails while fail is set.
type recorder struct {
	mu      sync.Mutex
	seen    []uint64
	batches []int
	fail    error
}

func (r *recorder) handle(_ context.Context, evs []eventstore.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.batches = append(r.batches, len(evs))
	for _, e := range evs {
		r.seen = append(r.seen, e.Position)
	}
	return nil
}

func (r *recorder) setFail(err error) { r.mu.Lock(); r.fail = err; r.mu.Unlock() }

func (r *recorder) positions() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.seen...)
}

func newFollower(t *testing.T, s *pebblestore.Store, r *recorder, batch int) *follow.Follower {
	t.Helper()
	f, err := follow.New(follow.Config{Feed: s, Checkpoints: s, Consumer: "test", Handle: r.handle, Batch: batch, MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func wantPositions(t *testing.T, got []uint64, from, to uint64) {
	t.Helper()
	if len(got) != int(to-from+1) {
		t.Fatalf("handed %d events (%v), want positions %d..%d", len(got), got, from, to)
	}
	for i, p := range got {
		if p != from+uint64(i) {
			t.Fatalf("handed %v, want positions %d..%d in order", got, from, to)
		}
	}
}

func TestNewRequiresDependencies(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	h := func(context.Context, []eventstore.Event) error { return nil }
	for name, cfg := range map[string]follow.Config{
		"feed":        {Checkpoints: s, Consumer: "c", Handle: h},
		"checkpoints": {Feed: s, Consumer: "c", Handle: h},
		"consumer":    {Feed: s, Checkpoints: s, Handle: h},
		"handler":     {Feed: s, Checkpoints: s, Consumer: "c"},
	} {
		if _, err := follow.New(cfg); err == nil {
			t.Errorf("New without %s succeeded", name)
		}
	}
}

// TestStepBatchesAndCheckpoints: Step hands the feed over in order, a batch
// at a time, saving the checkpoint after each; a new follower resumes after
// the checkpoint.
func TestStepBatchesAndCheckpoints(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	appendN(t, s, 25)
	ctx := t.Context()
	r := &recorder{}
	f := newFollower(t, s, r, 10)
	for _, want := range []uint64{10, 20, 25} {
		moved, err := f.Step(ctx)
		if err != nil || !moved {
			t.Fatalf("step: moved %v, %v", moved, err)
		}
		if cp, _ := s.Checkpoint(ctx, "test"); cp != want || f.Position() != want {
			t.Fatalf("checkpoint %d, position %d after a batch, want %d", cp, f.Position(), want)
		}
	}
	if moved, err := f.Step(ctx); err != nil || moved {
		t.Fatalf("step at the head: moved %v, %v", moved, err)
	}
	wantPositions(t, r.positions(), 1, 25)
	if fmt.Sprint(r.batches) != "[10 10 5]" {
		t.Errorf("batches %v, want [10 10 5]", r.batches)
	}
	appendN(t, s, 3)
	r2 := &recorder{}
	f2 := newFollower(t, s, r2, 10)
	if _, err := f2.Step(ctx); err != nil {
		t.Fatal(err)
	}
	wantPositions(t, r2.positions(), 26, 28)
}

// TestFailureKeepsCheckpoint: a failed batch is not checkpointed and is
// handed over again; Healthy follows the last attempt.
func TestFailureKeepsCheckpoint(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	appendN(t, s, 5)
	ctx := t.Context()
	r := &recorder{}
	f := newFollower(t, s, r, 10)
	boom := errors.New("handler down")
	r.setFail(boom)
	if _, err := f.Step(ctx); !errors.Is(err, boom) {
		t.Fatalf("step with a failing handler: %v", err)
	}
	if cp, _ := s.Checkpoint(ctx, "test"); cp != 0 {
		t.Fatalf("checkpoint %d after a failed batch", cp)
	}
	r.setFail(nil)
	if _, err := f.Step(ctx); err != nil {
		t.Fatal(err)
	}
	wantPositions(t, r.positions(), 1, 5)
	if !f.Healthy() {
		t.Error("not healthy after a successful step")
	}
}

// TestRunFollowsRetriesAndReturnsCtxErr: Run handles what is there, waits
// for what is appended later, retries a failing handler without skipping
// anything, and returns ctx's error when ctx ends.
func TestRunFollowsRetriesAndReturnsCtxErr(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	appendN(t, s, 7)
	r := &recorder{}
	f := newFollower(t, s, r, 3)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	waitFor := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(r.positions()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("handled %d events, want %d", len(r.positions()), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(7)
	r.setFail(errors.New("handler down"))
	appendN(t, s, 4) // arrives while Run waits on the feed
	deadline := time.Now().Add(10 * time.Second)
	for f.Healthy() {
		if time.Now().After(deadline) {
			t.Fatal("still healthy with a failing handler")
		}
		time.Sleep(time.Millisecond)
	}
	r.setFail(nil)
	waitFor(11)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	wantPositions(t, r.positions(), 1, 11)
	if cp, _ := s.Checkpoint(t.Context(), "test"); cp != 11 {
		t.Errorf("checkpoint %d, want 11", cp)
	}
}

// TestCheckpointMovedAhead: a checkpoint moved past the follower by someone
// else (a rebuild) is where it continues.
func TestCheckpointMovedAhead(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	appendN(t, s, 10)
	ctx := t.Context()
	r := &recorder{}
	f := newFollower(t, s, r, 4)
	if _, err := f.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "test", 8); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.positions(); fmt.Sprint(got) != "[1 2 3 4 9 10]" {
		t.Errorf("handed %v, want [1 2 3 4 9 10]", got)
	}
}
