package pebblestore_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/eventstore/storetest"
)

func open(t *testing.T, dir string) *pebblestore.Store {
	t.Helper()
	s, err := pebblestore.Open(dir, pebblestore.WithPebbleOptions(smallPebble))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		dir := t.TempDir()
		s := open(t, dir)
		return storetest.Harness{Store: s, Reopen: func(t *testing.T) eventstore.Store {
			if err := s.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			s = open(t, dir)
			return s
		}}
	}, storetest.Features{GlobalFeed: true, Checkpoints: true, Reopen: true, ConcurrentConflicts: true})
}

var ids = domain.NewULIDSource(nil)

func event(n int) eventstore.Event {
	now := time.Now().UTC()
	return eventstore.Event{EventID: ids(now), Type: "Tested", SchemaVersion: 1, OccurredAt: now,
		Data: json.RawMessage(`{"n":` + string(rune('0'+n%10)) + `}`)}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	ctx := context.Background()
	stream := ids(time.Now())
	if _, err := s.Append(ctx, stream, 0, event(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	checks := map[string]error{}
	_, checks["append"] = s.Append(ctx, stream, 1, event(2))
	_, checks["append idempotent"] = s.AppendIdempotent(ctx, "k", stream, 1, event(2))
	_, checks["load"] = s.Load(ctx, stream, 0)
	_, checks["read feed"] = s.ReadFeed(ctx, 0, 10)
	_, checks["head"] = s.Head(ctx)
	checks["wait feed"] = s.WaitFeed(ctx, 5)
	_, checks["checkpoint"] = s.Checkpoint(ctx, "c")
	checks["save checkpoint"] = s.SaveCheckpoint(ctx, "c", 1)
	for op, err := range checks {
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("%s after close: %v, want ErrClosed", op, err)
		}
		if domain.CodeOf(err) != domain.Unavailable {
			t.Errorf("%s after close: code %q", op, domain.CodeOf(err))
		}
	}
}

// TestCloseWhileAppending closes the store under concurrent writers: every
// append either succeeds (and is then on disk after reopening) or fails with
// ErrClosed.
func TestCloseWhileAppending(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := pebblestore.Open(dir, pebblestore.WithPebbleOptions(smallPebble))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const writers = 4
	versions := make([]int64, writers)
	streams := make([]string, writers)
	var wg sync.WaitGroup
	for w := range writers {
		streams[w] = ids(time.Now())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				res, err := s.Append(ctx, streams[w], versions[w], event(w))
				if errors.Is(err, eventstore.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				versions[w] = res.Version
			}
		}()
	}
	time.Sleep(30 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s = open(t, dir)
	for w := range writers {
		got, err := s.Load(ctx, streams[w], 0)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(got)) != versions[w] {
			t.Errorf("writer %d: acknowledged version %d, stored %d events", w, versions[w], len(got))
		}
	}
}

// TestSameKeyInOneGroup sends many appends with one idempotency key at once,
// so that several land in the same commit group.
func TestSameKeyInOneGroup(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	ctx := context.Background()
	stream := ids(time.Now())
	const n = 64
	var wg sync.WaitGroup
	res := make([]eventstore.Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = s.AppendIdempotent(ctx, "same", stream, 0, event(i))
		}()
	}
	wg.Wait()
	originals := 0
	for i := range n {
		if errs[i] != nil || res[i].Version != 1 || res[i].StreamID != stream {
			t.Fatalf("append %d: %+v, %v", i, res[i], errs[i])
		}
		if !res[i].Duplicate {
			originals++
		}
	}
	if originals != 1 {
		t.Fatalf("%d originals, want 1", originals)
	}
	if head, _ := s.Head(ctx); head != 1 {
		t.Fatalf("feed head %d, want 1", head)
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	ctx := context.Background()
	big := event(1)
	big.Data = json.RawMessage(`"` + string(make([]byte, pebblestore.MaxEventSize)) + `"`)
	notJSON := event(1)
	notJSON.Data = json.RawMessage(`{"a":`)
	noSchema := event(1)
	noSchema.SchemaVersion = 0
	otherStream := event(1)
	otherStream.StreamID = "elsewhere"
	long := string(make([]byte, pebblestore.MaxIDLen+1))
	stream := ids(time.Now())
	for name, tc := range map[string]struct {
		stream string
		events []eventstore.Event
	}{
		"data too large":     {stream, []eventstore.Event{big}},
		"data not JSON":      {stream, []eventstore.Event{notJSON}},
		"schema version 0":   {stream, []eventstore.Event{noSchema}},
		"stream ID mismatch": {stream, []eventstore.Event{otherStream}},
		"stream ID too long": {long, []eventstore.Event{event(1)}},
		"too many events":    {stream, make([]eventstore.Event, pebblestore.MaxEventsPerAppend+1)},
	} {
		if _, err := s.Append(ctx, tc.stream, 0, tc.events...); domain.CodeOf(err) != domain.Invalid {
			t.Errorf("%s: %v, want an invalid error", name, err)
		}
	}
	if _, err := s.Load(ctx, "", 0); domain.CodeOf(err) != domain.Invalid {
		t.Errorf("load of an empty stream ID: %v", err)
	}
	if err := s.SaveCheckpoint(ctx, "c", 1); domain.CodeOf(err) != domain.Invalid {
		t.Errorf("checkpoint beyond the head: %v", err)
	}
	if head, _ := s.Head(ctx); head != 0 {
		t.Fatalf("head %d after rejected appends", head)
	}
}

// TestWaitFeedCancelledWhileWaiting checks WaitFeed returns on cancellation
// and on Close.
func TestWaitFeedClose(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	done := make(chan error, 1)
	go func() { done <- s.WaitFeed(context.Background(), 0) }()
	time.Sleep(10 * time.Millisecond)
	_ = s.Close()
	if err := <-done; !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("wait feed on close: %v", err)
	}
}
