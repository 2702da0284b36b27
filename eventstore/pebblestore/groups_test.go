package pebblestore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
)

// TestGroupStatsCountWhatWasCommitted: one writer's appends are one group
// each; refused appends and idempotent repeats count nothing; concurrent
// writers' appends share groups and every event is counted once.
func TestGroupStatsCountWhatWasCommitted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, t.TempDir())
	if st := s.GroupStats(); st.Groups != 0 || st.Events != 0 {
		t.Fatalf("a new store: %+v", st)
	}
	for i, n := range []int{1, 3, 5} { // buckets <=1, <=4, <=8
		evs := make([]eventstore.Event, n)
		for j := range evs {
			evs[j] = event(j)
		}
		if _, err := s.Append(ctx, fmt.Sprintf("order-%d", i), 0, evs...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Append(ctx, "order-0", 0, event(9)); !errors.As(err, new(*eventstore.ConflictError)) {
		t.Fatalf("conflict: %v", err)
	}
	if _, err := s.AppendIdempotent(ctx, "k", "order-k", 0, event(1)); err != nil {
		t.Fatal(err)
	}
	if res, err := s.AppendIdempotent(ctx, "k", "order-k", 0, event(1)); err != nil || !res.Duplicate {
		t.Fatalf("repeat: %+v, %v", res, err)
	}
	st := s.GroupStats()
	if st.Groups != 4 || st.Events != 10 {
		t.Fatalf("after 4 appends of 1, 3, 5 and 1 events (and a conflict and a repeat): %+v", st)
	}
	want := map[int]uint64{0: 2, 2: 1, 3: 1}
	for i, n := range st.Buckets {
		if n != want[i] {
			t.Errorf("bucket %d (<= %d events): %d groups, want %d", i, pebblestore.GroupBuckets[i], n, want[i])
		}
	}

	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for v := range each {
				if _, err := s.Append(ctx, fmt.Sprintf("w%d", w), int64(v), event(v)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	after := s.GroupStats()
	groups, events := after.Groups-st.Groups, after.Events-st.Events
	if events != writers*each || groups < each || groups > writers*each {
		t.Fatalf("%d writers x %d appends of one event: %d events in %d groups", writers, each, events, groups)
	}
	var sum uint64
	for _, n := range after.Buckets {
		sum += n
	}
	if sum != after.Groups {
		t.Fatalf("buckets hold %d groups, Groups is %d", sum, after.Groups)
	}
	t.Logf("%d writers: %.1f events per group", writers, float64(events)/float64(groups))
}
