package dynamostore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/orderledger/orderledger/eventstore/dynamostore"
	"github.com/orderledger/orderledger/internal/awstest"
)

// TestScanSegments: a parallel scan in 3 segments, 2 items a page, returns
// every event exactly once, each stream's events contiguous and in order
// within one segment, and leaves idempotency records and checkpoints out.
func TestScanSegments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := awstest.Clients(t).DynamoDB
	s := mustNew(t, db, awstest.Table(t, db, "events"))
	want := map[string]int{}
	for i := range 9 {
		stream := ids(time.Now())
		n := 1 + i%3
		for v := range n {
			if _, err := s.Append(ctx, stream, int64(v), event(`{}`)); err != nil {
				t.Fatal(err)
			}
		}
		want[stream] = n
	}
	if _, err := s.AppendIdempotent(ctx, "k1", ids(time.Now()), 0, event(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveScanCheckpoint(ctx, "scan-test", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	const total = 3
	got := map[string]int{}
	segmentOf := map[string]int{}
	items := 0
	for seg := range total {
		var after *dynamostore.ScanKey
		last := map[string]int64{}
		for {
			page, err := s.ScanSegment(ctx, seg, total, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			items += page.Items
			for _, e := range page.Events {
				if prev, ok := segmentOf[e.StreamID]; ok && prev != seg {
					t.Fatalf("stream %s in segments %d and %d", e.StreamID, prev, seg)
				}
				segmentOf[e.StreamID] = seg
				if e.Version != last[e.StreamID]+1 {
					t.Fatalf("stream %s: version %d after %d", e.StreamID, e.Version, last[e.StreamID])
				}
				last[e.StreamID] = e.Version
				got[e.StreamID]++
			}
			if page.Next == nil {
				break
			}
			after = page.Next
		}
	}
	delete(got, "")
	// The idempotent append made one more stream of one event.
	if len(got) != len(want)+1 {
		t.Fatalf("scan found %d streams, want %d", len(got), len(want)+1)
	}
	for stream, n := range want {
		if got[stream] != n {
			t.Errorf("stream %s: scanned %d events, want %d", stream, got[stream], n)
		}
	}
	// 18 events, the idempotent append's event, its record and the checkpoint.
	if items != 18+3 {
		t.Fatalf("scan read %d items, want 21", items)
	}
	if _, err := s.ScanSegment(ctx, 3, 3, nil, 0); err == nil {
		t.Fatal("segment 3 of 3 was accepted")
	}
}

// TestResumeAfterKey: a scan started after a key returns exactly the items
// a full scan returns after it.
func TestResumeAfterKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := awstest.Clients(t).DynamoDB
	s := mustNew(t, db, awstest.Table(t, db, "events"))
	for range 6 {
		stream := ids(time.Now())
		for v := range 2 {
			if _, err := s.Append(ctx, stream, int64(v), event(`{}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	full, err := s.ScanSegment(ctx, 0, 1, nil, 0)
	if err != nil || len(full.Events) != 12 || full.Next != nil {
		t.Fatalf("full scan: %d events, next %v, %v", len(full.Events), full.Next, err)
	}
	for i, e := range full.Events {
		rest, err := s.ScanSegment(ctx, 0, 1, &dynamostore.ScanKey{StreamID: e.StreamID, Version: e.Version}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rest.Events) != len(full.Events)-i-1 {
			t.Fatalf("after event %d: %d events, want %d", i, len(rest.Events), len(full.Events)-i-1)
		}
		for j, r := range rest.Events {
			if r.EventID != full.Events[i+1+j].EventID {
				t.Fatalf("after event %d: event %d is %s, want %s", i, j, r.EventID, full.Events[i+1+j].EventID)
			}
		}
	}
}

// TestScanCheckpoints: saved, read back, replaced, deleted; absent is not
// an error; a checkpoint is not an event.
func TestScanCheckpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := awstest.Clients(t).DynamoDB
	s := mustNew(t, db, awstest.Table(t, db, "events"))
	if _, ok, err := s.ScanCheckpoint(ctx, "x"); err != nil || ok {
		t.Fatalf("absent checkpoint: ok %v, %v", ok, err)
	}
	for i := range 2 {
		data := fmt.Appendf(nil, `{"segment":%d}`, i)
		if err := s.SaveScanCheckpoint(ctx, "x", data); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.ScanCheckpoint(ctx, "x")
		if err != nil || !ok || string(got) != string(data) {
			t.Fatalf("checkpoint = %s, %v, %v; want %s", got, ok, err, data)
		}
	}
	if err := s.SaveScanCheckpoint(ctx, "x", []byte("not json")); err == nil {
		t.Fatal("a checkpoint that is not JSON was saved")
	}
	if evs, err := s.Load(ctx, "checkpoint#x", 0); err != nil || len(evs) != 0 {
		t.Fatalf("Load of the checkpoint's stream = %v, %v; want nothing", evs, err)
	}
	if err := s.DeleteScanCheckpoint(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.ScanCheckpoint(ctx, "x"); err != nil || ok {
		t.Fatalf("deleted checkpoint: ok %v, %v", ok, err)
	}
}

// TestHasStreams: which streams exist, in batches over 100 keys.
func TestHasStreams(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := awstest.Clients(t).DynamoDB
	s := mustNew(t, db, awstest.Table(t, db, "events"))
	var q []string
	exist := map[string]bool{}
	for i := range 130 {
		id := ids(time.Now())
		q = append(q, id)
		if i%10 == 0 {
			if _, err := s.Append(ctx, id, 0, event(`{}`)); err != nil {
				t.Fatal(err)
			}
			exist[id] = true
		}
	}
	got, err := s.HasStreams(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(exist) {
		t.Fatalf("HasStreams found %d, want %d", len(got), len(exist))
	}
	for id := range exist {
		if !got[id] {
			t.Fatalf("stream %s exists but was not found", id)
		}
	}
}
