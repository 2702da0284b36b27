package pebbleviews

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/internal/ordergen"
	"github.com/orderledger/orderledger/internal/pebblelog"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/readmodeltest"
)

// failingFeed fails ReadFeed from call failAt on.
type failingFeed struct {
	eventstore.Feed
	calls  atomic.Int64
	failAt int64
}

func (f *failingFeed) ReadFeed(ctx context.Context, after uint64, limit int) ([]eventstore.Event, error) {
	if f.calls.Add(1) >= f.failAt {
		return nil, errors.New("feed down")
	}
	return f.Feed.ReadFeed(ctx, after, limit)
}

// interruptedRebuild appends n random orders (interleaved, from seed) to a
// fresh event store and runs a rebuild into a fresh read model in dir whose
// feed fails at ReadFeed call failAt, then closes the read model: dir holds
// an unfinished generation gen-000002.
func interruptedRebuild(t *testing.T, seed uint64, n int, opts RebuildOptions, failAt int64) (es *pebblestore.Store, streams [][]eventstore.Event, log []eventstore.Event, dir string) {
	t.Helper()
	ctx := context.Background()
	codec := orders.NewCodec()
	es, err := pebblestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { es.Close() })
	streams = ordergen.Orders(rand.New(rand.NewPCG(seed, seed)), codec, n, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	log = ordergen.Interleave(rand.New(rand.NewPCG(seed+1, seed+1)), streams)
	for _, e := range log {
		if _, err := es.Append(ctx, e.StreamID, e.Version-1, e); err != nil {
			t.Fatal(err)
		}
	}
	dir = t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rebuild(ctx, &failingFeed{Feed: es, failAt: failAt}, codec, opts); err == nil {
		t.Fatal("the rebuild did not fail")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return es, streams, log, dir
}

// TestResumeWithViewsAheadOfPosition: a crash can keep view batches written
// after the last durable position (and stale counts with it). The resumed
// rebuild skips what those views already reflect and recounts.
func TestResumeWithViewsAheadOfPosition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	codec := orders.NewCodec()
	opts := RebuildOptions{PageSize: 50, FlushEvery: 50, Workers: 2}
	es, streams, _, dir := interruptedRebuild(t, 4, 300, opts, 12)
	// Wind the unfinished generation's position back and spoil its counts,
	// as a crash that lost the last position batch would.
	db, err := pebble.Open(filepath.Join(dir, "gen-000002"), &pebble.Options{Logger: pebblelog.Logger{Prefix: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	pos, err := getUint64(db, checkpointKey(projections.Consumer))
	if err != nil || pos < 200 {
		t.Fatalf("unfinished generation at position %d, %v", pos, err)
	}
	b := db.NewBatch()
	_ = b.Set(checkpointKey(projections.Consumer), binary.BigEndian.AppendUint64(nil, pos/3), nil)
	_ = b.Set(countKey(order.StatusPending), binary.BigEndian.AppendUint64(nil, 9999), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Rebuild(ctx, es, codec, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.From != pos/3 || res.Generation != 2 {
		t.Errorf("resumed %+v, want from %d in generation 2", res, pos/3)
	}
	want := map[order.Status]int64{}
	for _, st := range streams {
		fold, err := projections.Fold(codec, st)
		if err != nil {
			t.Fatal(err)
		}
		want[fold.Status]++
		got, err := s.Get(ctx, st[0].StreamID)
		if err != nil {
			t.Fatal(err)
		}
		if d := readmodeltest.Diff(got, fold); d != "" {
			t.Fatalf("order %s: %s", st[0].StreamID, d)
		}
	}
	counts, _ := s.Counts(ctx)
	for _, st := range order.Statuses {
		if counts[st] != want[st] {
			t.Errorf("count of %s: %d, want %d", st, counts[st], want[st])
		}
	}
}

// TestInterruptedGenerationIsConsistent: each flush of a rebuild lands
// whole, so an interrupted generation's position, counts and views agree
// exactly: its views hold, between them, exactly the events up to its
// position, and its counts are those of its views.
func TestInterruptedGenerationIsConsistent(t *testing.T) {
	t.Parallel()
	_, _, log, dir := interruptedRebuild(t, 8, 400, RebuildOptions{PageSize: 40, FlushEvery: 120, Workers: 2}, 15)
	db, err := pebble.Open(filepath.Join(dir, "gen-000002"), &pebble.Options{Logger: pebblelog.Logger{Prefix: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pos, err := getUint64(db, checkpointKey(projections.Consumer))
	if err != nil || pos == 0 || pos >= uint64(len(log)) {
		t.Fatalf("unfinished generation at position %d of %d, %v", pos, len(log), err)
	}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{keyView}, UpperBound: []byte{keyView + 1}})
	if err != nil {
		t.Fatal(err)
	}
	var events int64
	byStatus := map[order.Status]int64{}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := decodeView(it.Value())
		if err != nil {
			t.Fatal(err)
		}
		events += v.Version
		byStatus[v.Status]++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if events != int64(pos) {
		t.Errorf("the views hold %d events, the position is %d", events, pos)
	}
	indexed, err := recount(db)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range order.Statuses {
		n, err := getUint64(db, countKey(st))
		if err != nil {
			t.Fatal(err)
		}
		if int64(n) != byStatus[st] || indexed[st] != byStatus[st] {
			t.Errorf("%s: count %d, status index %d, views %d", st, n, indexed[st], byStatus[st])
		}
	}
}
