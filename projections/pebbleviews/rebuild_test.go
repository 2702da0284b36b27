package pebbleviews_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/internal/ordergen"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/pebbleviews"
	"github.com/orderledger/orderledger/projections/readmodeltest"
)

var (
	codec = orders.NewCodec()
	t0    = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newLog returns an event store holding n generated orders, appended one
// event at a time by 8 writers, so streams interleave in the feed as they
// do in production.
func newLog(t *testing.T, seed uint64, n int) (*pebblestore.Store, [][]eventstore.Event) {
	t.Helper()
	es, err := pebblestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = es.Close() })
	streams := ordergen.Orders(rand.New(rand.NewPCG(seed, 1)), codec, n, t0)
	appendStreams(t, es, streams)
	return es, streams
}

func appendStreams(t *testing.T, es eventstore.Store, streams [][]eventstore.Event) {
	t.Helper()
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(streams); i += writers {
				for _, e := range streams[i] {
					if _, err := es.Append(context.Background(), e.StreamID, e.Version-1, e); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// catchUp projects the whole feed into rm with a subscription.
func catchUp(t *testing.T, es *pebblestore.Store, rm *pebbleviews.Store) {
	t.Helper()
	sub := newSub(t, es, rm, rm)
	for {
		moved, err := sub.Step(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if !moved {
			return
		}
	}
}

func newSub(t *testing.T, es *pebblestore.Store, rm projections.ReadModel, cps eventstore.Checkpoints) *projections.Subscription {
	t.Helper()
	p, err := projections.NewProjector(rm, es, codec)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := projections.NewSubscription(es, cps, p, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// snapshot returns every view, newest first, and the counts.
func snapshot(t *testing.T, rm projections.ReadModel) ([]projections.View, map[order.Status]int64) {
	t.Helper()
	var all []projections.View
	q := projections.ListQuery{Limit: projections.MaxLimit}
	for {
		p, err := rm.List(ctxT(t), q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			break
		}
		q.Cursor = p.NextCursor
	}
	counts, err := rm.Counts(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return all, counts
}

// checkFolded checks that rm holds exactly the fold of every stream in es.
func checkFolded(t *testing.T, es eventstore.Store, rm projections.ReadModel, streams [][]eventstore.Event) {
	t.Helper()
	all, counts := snapshot(t, rm)
	if len(all) != len(streams) {
		t.Fatalf("%d views, want %d", len(all), len(streams))
	}
	want := map[order.Status]int64{}
	for _, s := range streams {
		envs, err := es.Load(ctxT(t), s[0].StreamID, 1)
		if err != nil {
			t.Fatal(err)
		}
		fold, err := projections.Fold(codec, envs)
		if err != nil {
			t.Fatal(err)
		}
		want[fold.Status]++
		got, err := rm.Get(ctxT(t), s[0].StreamID)
		if err != nil {
			t.Fatalf("order %s: %v", s[0].StreamID, err)
		}
		if d := readmodeltest.Diff(got, fold); d != "" {
			t.Fatalf("order %s: %s", s[0].StreamID, d)
		}
	}
	for _, st := range order.Statuses {
		if counts[st] != want[st] {
			t.Errorf("count of %s: %d, want %d", st, counts[st], want[st])
		}
	}
}

// TestRebuildEqualsIncremental: a rebuild from the log gives views identical,
// field for field, to those the projector built event by event, over a few
// thousand orders of every outcome.
func TestRebuildEqualsIncremental(t *testing.T) {
	t.Parallel()
	n := 3000
	if testing.Short() {
		n = 500
	}
	es, streams := newLog(t, 1, n)
	rm := open(t)
	catchUp(t, es, rm)
	checkFolded(t, es, rm, streams)
	before, beforeCounts := snapshot(t, rm)
	outcomes := map[order.Status]int64{}
	for _, v := range before {
		outcomes[v.Status]++
	}
	for _, st := range order.Statuses {
		if outcomes[st] == 0 {
			t.Fatalf("no %s orders in the test data: %v", st, outcomes)
		}
	}

	var reports atomic.Int64
	res, err := rm.Rebuild(ctxT(t), es, codec, pebbleviews.RebuildOptions{
		PageSize: 700, FlushEvery: 2000, // several pages and flushes
		Progress: func(projections.Progress) { reports.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	head, _ := es.Head(ctxT(t))
	if res.Generation != 2 || rm.Generation() != 2 || res.From != 0 || res.Position != head || res.Events != head {
		t.Errorf("result %+v (generation %d), want generation 2 from 0 to %d", res, rm.Generation(), head)
	}
	if reports.Load() < 3 {
		t.Errorf("%d progress reports", reports.Load())
	}
	after, afterCounts := snapshot(t, rm)
	if len(after) != len(before) {
		t.Fatalf("rebuild has %d views, incremental %d", len(after), len(before))
	}
	for i := range before {
		if d := readmodeltest.Diff(after[i], before[i]); d != "" {
			t.Fatalf("view %d (%s): rebuilt vs incremental: %s", i, before[i].OrderID, d)
		}
	}
	for _, st := range order.Statuses {
		if afterCounts[st] != beforeCounts[st] {
			t.Errorf("count of %s: rebuilt %d, incremental %d", st, afterCounts[st], beforeCounts[st])
		}
	}
	if cp, _ := rm.Checkpoint(ctxT(t), projections.Consumer); cp != head {
		t.Errorf("checkpoint after rebuild %d, want %d", cp, head)
	}
	// The old generation is gone; a reopen serves the new one.
	if _, err := os.Stat(filepath.Join(rm.Dir(), "gen-000001")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old generation still there: %v", err)
	}
	dir := rm.Dir()
	if err := rm.Close(); err != nil {
		t.Fatal(err)
	}
	rm2, err := pebbleviews.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer rm2.Close()
	if rm2.Generation() != 2 {
		t.Errorf("reopened at generation %d", rm2.Generation())
	}
	checkFolded(t, es, rm2, streams)
}

// gatedFeed passes ReadFeed through, except that call number block waits
// until release is closed (after closing blocked), and from call failAt on
// it fails.
type gatedFeed struct {
	eventstore.Feed
	calls   atomic.Int64
	block   int64
	blocked chan struct{}
	release chan struct{}
	failAt  int64
}

var errFeedDown = errors.New("feed down")

func (g *gatedFeed) ReadFeed(ctx context.Context, after uint64, limit int) ([]eventstore.Event, error) {
	n := g.calls.Add(1)
	if g.failAt > 0 && n >= g.failAt {
		return nil, errFeedDown
	}
	if n == g.block {
		close(g.blocked)
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Feed.ReadFeed(ctx, after, limit)
}

// sentinel puts a view that is in no stream: a rebuild drops it.
func sentinel(t *testing.T, rm projections.ReadModel) projections.View {
	t.Helper()
	v := projections.View{OrderID: "sentinel", CustomerName: "Nobody", ProductName: "nothing", Quantity: 1,
		Status: order.StatusPending, Version: 1, CreatedAt: t0, UpdatedAt: t0}
	if err := rm.Put(ctxT(t), 0, v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRebuildBlueGreen: while a rebuild runs, readers and writers are served
// by the old generation; the switch is atomic.
func TestRebuildBlueGreen(t *testing.T) {
	t.Parallel()
	es, streams := newLog(t, 2, 300)
	rm := open(t)
	catchUp(t, es, rm)
	s := sentinel(t, rm)
	feed := &gatedFeed{Feed: es, block: 3, blocked: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := rm.Rebuild(ctxT(t), feed, codec, pebbleviews.RebuildOptions{PageSize: 100, FlushEvery: 100, Workers: 2})
		done <- err
	}()
	<-feed.blocked
	if _, err := rm.Rebuild(ctxT(t), es, codec, pebbleviews.RebuildOptions{}); !errors.Is(err, projections.ErrRebuildRunning) {
		t.Errorf("a second rebuild: %v, want ErrRebuildRunning", err)
	}
	if g := rm.Generation(); g != 1 {
		t.Errorf("generation %d during the rebuild", g)
	}
	if got, err := rm.Get(ctxT(t), s.OrderID); err != nil || got.Version != 1 {
		t.Errorf("old generation not served during the rebuild: %+v, %v", got, err)
	}
	all, counts := snapshot(t, rm)
	if len(all) != len(streams)+1 || counts[order.StatusPending] == 0 {
		t.Errorf("during the rebuild: %d views, want %d", len(all), len(streams)+1)
	}
	s2 := s
	s2.Version = 2
	if err := rm.Put(ctxT(t), 1, s2); err != nil {
		t.Errorf("a write during the rebuild: %v", err)
	}
	close(feed.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if g := rm.Generation(); g != 2 {
		t.Errorf("generation %d after the rebuild", g)
	}
	if _, err := rm.Get(ctxT(t), s.OrderID); !errors.Is(err, order.ErrNotFound) {
		t.Errorf("sentinel survived the rebuild: %v", err)
	}
	checkFolded(t, es, rm, streams)
}

// TestRebuildInterruptedResumes: a rebuild that fails part way (or whose
// process dies) leaves the old generation live; rerunning it resumes from
// its last flush and finishes.
func TestRebuildInterruptedResumes(t *testing.T) {
	t.Parallel()
	es, streams := newLog(t, 3, 400)
	rm := open(t)
	catchUp(t, es, rm)
	s := sentinel(t, rm)
	opts := pebbleviews.RebuildOptions{PageSize: 50, FlushEvery: 100, Workers: 2}
	feed := &gatedFeed{Feed: es, failAt: 12}
	if _, err := rm.Rebuild(ctxT(t), feed, codec, opts); !errors.Is(err, errFeedDown) {
		t.Fatalf("rebuild over a failing feed: %v", err)
	}
	// A cancelled rebuild is another interruption.
	ctx, cancel := context.WithCancel(ctxT(t))
	cancelled := &gatedFeed{Feed: es, block: 2, blocked: make(chan struct{}), release: make(chan struct{})}
	go func() { <-cancelled.blocked; cancel() }()
	if _, err := rm.Rebuild(ctx, cancelled, codec, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled rebuild: %v", err)
	}
	if got, err := rm.Get(ctxT(t), s.OrderID); err != nil || rm.Generation() != 1 {
		t.Fatalf("after interruptions: generation %d, sentinel %+v %v", rm.Generation(), got, err)
	}
	// As after a crash: reopen, still the old generation.
	dir := rm.Dir()
	if err := rm.Close(); err != nil {
		t.Fatal(err)
	}
	rm, err := pebbleviews.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	if _, err := rm.Get(ctxT(t), s.OrderID); err != nil || rm.Generation() != 1 {
		t.Fatalf("after reopen: generation %d, sentinel %v", rm.Generation(), err)
	}
	res, err := rm.Rebuild(ctxT(t), es, codec, opts)
	if err != nil {
		t.Fatal(err)
	}
	head, _ := es.Head(ctxT(t))
	if res.From == 0 || res.Position != head || res.Generation != 2 {
		t.Errorf("rerun %+v: want it resumed (From > 0) up to %d in generation 2", res, head)
	}
	if _, err := rm.Get(ctxT(t), s.OrderID); !errors.Is(err, order.ErrNotFound) {
		t.Errorf("sentinel survived the rebuild: %v", err)
	}
	checkFolded(t, es, rm, streams)
}

// flakyCheckpoints fails every other SaveCheckpoint, after the views of the
// batch were written: the next attempt replays the batch.
type flakyCheckpoints struct {
	eventstore.Checkpoints
	n atomic.Int64
}

func (f *flakyCheckpoints) SaveCheckpoint(ctx context.Context, c string, pos uint64) error {
	if f.n.Add(1)%2 == 0 {
		return errors.New("checkpoint lost")
	}
	return f.Checkpoints.SaveCheckpoint(ctx, c, pos)
}

// TestSubscriptionResumesAfterRestart: a subscription stopped part way
// (views written, checkpoint not saved, read model closed) resumes from its
// checkpoint after a reopen and converges.
func TestSubscriptionResumesAfterRestart(t *testing.T) {
	t.Parallel()
	es, streams := newLog(t, 4, 800) // > one page of the subscription
	dir := t.TempDir()
	rm, err := pebbleviews.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	sub := newSub(t, es, rm, &flakyCheckpoints{Checkpoints: rm})
	if _, err := sub.Step(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Step(ctxT(t)); err == nil {
		t.Fatal("the flaky checkpoint did not fail")
	}
	cp, _ := rm.Checkpoint(ctxT(t), projections.Consumer)
	head, _ := es.Head(ctxT(t))
	if cp == 0 || cp >= head {
		t.Fatalf("checkpoint %d of %d: the test needs a partial run", cp, head)
	}
	if err := rm.Close(); err != nil {
		t.Fatal(err)
	}
	rm, err = pebbleviews.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	sub = newSub(t, es, rm, rm)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	waitCaughtUp(t, sub)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
	if !sub.Healthy() || sub.Position() != head {
		t.Errorf("healthy %v position %d, want true and %d", sub.Healthy(), sub.Position(), head)
	}
	checkFolded(t, es, rm, streams)
}

func waitCaughtUp(t *testing.T, sub *projections.Subscription) {
	t.Helper()
	for {
		lag, err := sub.Lag(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if lag == 0 {
			return
		}
		if ctxT(t).Err() != nil {
			t.Fatalf("subscription stuck %d events behind", lag)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRebuildWhileLive: orders keep coming and the subscription keeps
// projecting while a rebuild runs and switches; nothing is lost.
func TestRebuildWhileLive(t *testing.T) {
	t.Parallel()
	es, first := newLog(t, 5, 300)
	rm := open(t)
	sub := newSub(t, es, rm, rm)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	subDone := make(chan error, 1)
	go func() { subDone <- sub.Run(ctx) }()
	more := ordergen.Orders(rand.New(rand.NewPCG(6, 1)), codec, 300, t0.Add(time.Hour))
	appended := make(chan struct{})
	go func() {
		defer close(appended)
		appendStreams(t, es, more)
	}()
	if _, err := rm.Rebuild(ctxT(t), es, codec, pebbleviews.RebuildOptions{PageSize: 64, FlushEvery: 256}); err != nil {
		t.Fatal(err)
	}
	<-appended
	waitCaughtUp(t, sub)
	cancel()
	<-subDone
	if rm.Generation() != 2 {
		t.Errorf("generation %d", rm.Generation())
	}
	checkFolded(t, es, rm, append(first, more...))
}

// lingeringFeed fails the read of the first page at once and makes every
// other read slow, ignoring cancellation, as a read stuck in the disk
// would; it records reads still running, or begun, after returned is set.
type lingeringFeed struct {
	eventstore.Feed
	returned atomic.Bool
	active   atomic.Int32
	late     atomic.Int32 // reads running or begun after returned was set
}

func (f *lingeringFeed) ReadFeed(ctx context.Context, after uint64, limit int) ([]eventstore.Event, error) {
	if f.returned.Load() {
		f.late.Add(1)
	}
	f.active.Add(1)
	defer f.active.Add(-1)
	if after == 0 {
		return nil, errFeedDown
	}
	time.Sleep(100 * time.Millisecond)
	return f.Feed.ReadFeed(ctx, after, limit)
}

// TestRebuildJoinsReadersOnError: a rebuild that fails returns only after
// its reader goroutines have stopped, so none reads the feed (or the store
// it wraps, which the caller may close) after Rebuild returned.
func TestRebuildJoinsReadersOnError(t *testing.T) {
	t.Parallel()
	es, _ := newLog(t, 5, 100)
	rm := open(t)
	feed := &lingeringFeed{Feed: es}
	_, err := rm.Rebuild(ctxT(t), feed, codec, pebbleviews.RebuildOptions{PageSize: 10, Workers: 4})
	feed.returned.Store(true)
	if !errors.Is(err, errFeedDown) {
		t.Fatalf("rebuild over a failing feed: %v", err)
	}
	if n := feed.active.Load(); n != 0 {
		t.Errorf("%d reads of the feed still running when Rebuild returned", n)
	}
	time.Sleep(300 * time.Millisecond) // time for a stray reader to start another read
	if n := feed.late.Load(); n != 0 {
		t.Errorf("%d reads of the feed begun after Rebuild returned", n)
	}
}
