package dynamoviews_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/dynamostore"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/internal/ordergen"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/dynamoviews"
)

// rebuildEnv is an events table holding n generated orders and an empty
// read table.
type rebuildEnv struct {
	db      *dynamodb.Client
	events  *dynamostore.Store
	views   *dynamoviews.Store
	table   string
	evTable string
	codec   *orders.Codec
	streams [][]eventstore.Event
}

func newRebuildEnv(t *testing.T, n int, seed uint64) *rebuildEnv {
	t.Helper()
	ctx := context.Background()
	c := awstest.Clients(t)
	e := &rebuildEnv{db: c.DynamoDB, codec: orders.NewCodec()}
	var err error
	e.evTable = awstest.Table(t, c.DynamoDB, "events")
	if e.events, err = dynamostore.New(c.DynamoDB, e.evTable, dynamostore.Options{}); err != nil {
		t.Fatal(err)
	}
	e.table = awstest.Table(t, c.DynamoDB, "orders")
	if e.views, err = dynamoviews.New(c.DynamoDB, e.table); err != nil {
		t.Fatal(err)
	}
	e.streams = ordergen.Orders(rand.New(rand.NewPCG(seed, 1)), e.codec, n, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	for _, s := range e.streams {
		if _, err := e.events.Append(ctx, s[0].StreamID, 0, s...); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *rebuildEnv) fold(t *testing.T, s []eventstore.Event) projections.View {
	t.Helper()
	v, err := projections.Fold(e.codec, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (e *rebuildEnv) nEvents() int {
	n := 0
	for _, s := range e.streams {
		n += len(s)
	}
	return n
}

// check asserts that the read table holds exactly the fold of every stream.
func (e *rebuildEnv) check(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, s := range e.streams {
		want := e.fold(t, s)
		got, err := e.views.Get(ctx, want.OrderID)
		if err != nil {
			t.Fatalf("view %s: %v", want.OrderID, err)
		}
		if got != want {
			t.Fatalf("view %s:\n got  %+v\n want %+v", want.OrderID, got, want)
		}
	}
}

func (e *rebuildEnv) rebuild(t *testing.T, ctx context.Context, o dynamoviews.RebuildOptions) (dynamoviews.RebuildResult, error) {
	t.Helper()
	return e.views.Rebuild(ctx, e.events, e.codec, o)
}

func (e *rebuildEnv) update(t *testing.T, id, expr string, values map[string]types.AttributeValue) {
	t.Helper()
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(e.table), Key: map[string]types.AttributeValue{"order_id": &types.AttributeValueMemberS{Value: id}},
		UpdateExpression: aws.String(expr), ExpressionAttributeNames: map[string]string{"#a": strings.Fields(expr)[1]}, ExpressionAttributeValues: values,
	}
	in.UpdateExpression = aws.String(strings.Replace(expr, strings.Fields(expr)[1], "#a", 1))
	if _, err := e.db.UpdateItem(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

// TestRebuildRepairsInPlace: on a read table that the projector filled,
// then damaged every way (items deleted, a wrong status, a stale version,
// a version beyond the stream, an attribute of the wrong type, orphans), a
// rebuild writes exactly the damaged items back to the fold of their
// stream, leaves the others alone, and reports the orphans; with Prune a
// second rebuild deletes them and writes nothing else.
func TestRebuildRepairsInPlace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newRebuildEnv(t, 40, 1)
	p, err := projections.NewProjector(e.views, e.events, e.codec)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range e.streams {
		if err := p.HandleBatch(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	e.check(t)
	id := func(i int) string { return e.streams[i][0].StreamID }
	for i := range 5 { // deleted
		if _, err := e.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(e.table),
			Key: map[string]types.AttributeValue{"order_id": &types.AttributeValueMemberS{Value: id(i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 5; i < 10; i++ { // a wrong status
		wrong := order.StatusCancelled
		if e.fold(t, e.streams[i]).Status == wrong {
			wrong = order.StatusCompleted
		}
		e.update(t, id(i), "SET status = :s", map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: string(wrong)}})
	}
	// Stale: the view of the first event only, where the stream has more.
	stale := 0
	for i := 10; i < 40 && stale < 3; i++ {
		if len(e.streams[i]) > 1 {
			if _, err := e.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: dynamoviews.Item(e.fold(t, e.streams[i][:1]))}); err != nil {
				t.Fatal(err)
			}
			stale++
		}
	}
	e.update(t, id(30), "SET version = :v", map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: "99"}})
	e.update(t, id(31), "SET quantity = :q", map[string]types.AttributeValue{":q": &types.AttributeValueMemberS{Value: "many"}})
	damaged := uint64(5 + 5 + stale + 2)
	var orphans []string
	for range 2 {
		v := view("Nobody", order.StatusPending, time.Now(), 1)
		if err := e.views.Put(ctx, 0, v); err != nil {
			t.Fatal(err)
		}
		orphans = append(orphans, v.OrderID)
	}

	res, err := e.rebuild(t, ctx, dynamoviews.RebuildOptions{Segments: 3, PageSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	e.check(t)
	if res.Orders != 40 || res.Events != uint64(e.nEvents()) || res.Repaired != damaged || res.Unchanged != 40-damaged {
		t.Fatalf("rebuild: %d orders, %d events, %d repaired, %d unchanged; want 40, %d, %d, %d",
			res.Orders, res.Events, res.Repaired, res.Unchanged, e.nEvents(), damaged, 40-damaged)
	}
	if res.OrphanCount != 2 || len(res.Orphans) != 2 || res.Pruned != 0 {
		t.Fatalf("orphans: %v (count %d, pruned %d), want %v not pruned", res.Orphans, res.OrphanCount, res.Pruned, orphans)
	}
	for _, o := range orphans {
		if _, err := e.views.Get(ctx, o); err != nil {
			t.Fatalf("orphan %s without Prune: %v", o, err)
		}
	}
	if res.WriteUnits < float64(damaged) {
		t.Fatalf("write units %v for %d writes", res.WriteUnits, damaged)
	}

	res, err = e.rebuild(t, ctx, dynamoviews.RebuildOptions{Segments: 2, Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Repaired != 0 || res.Unchanged != 40 || res.OrphanCount != 2 || res.Pruned != 2 || res.Resumed {
		t.Fatalf("second rebuild with prune: %+v", res)
	}
	for _, o := range orphans {
		if _, err := e.views.Get(ctx, o); !errors.Is(err, order.ErrNotFound) {
			t.Fatalf("orphan %s after prune: %v", o, err)
		}
	}
	e.check(t)
}

// segmentsDone counts "segment done" log lines and cancels after the first.
type segmentsDone struct {
	slog.Handler
	mu     sync.Mutex
	n      int
	cancel func()
}

func (h *segmentsDone) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "rebuild segment done" {
		h.mu.Lock()
		h.n++
		h.mu.Unlock()
		h.cancel()
	}
	return nil
}

func (h *segmentsDone) Enabled(context.Context, slog.Level) bool { return true }

// TestRebuildResumes: a rebuild stopped after its first segment is done
// (its context cancelled, as a kill would stop it) leaves its checkpoints;
// the next one resumes that run: the finished segments are not scanned
// again, the others go on from their checkpoint, and the table ends equal
// to the fold. A finished run leaves no checkpoint, so the one after starts
// afresh.
func TestRebuildResumes(t *testing.T) {
	t.Parallel()
	e := newRebuildEnv(t, 40, 2)
	ctx, cancel := context.WithCancel(context.Background())
	h := &segmentsDone{Handler: slog.DiscardHandler, cancel: cancel}
	first, err := e.rebuild(t, ctx, dynamoviews.RebuildOptions{Segments: 4, PageSize: 3, Logger: slog.New(h)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped rebuild: %v (%+v)", err, first)
	}
	if first.Orders == 0 || first.Orders >= 40 {
		t.Fatalf("the first run did %d of 40 orders before it stopped", first.Orders)
	}
	second, err := e.rebuild(t, context.Background(), dynamoviews.RebuildOptions{Segments: 7, PageSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !second.Resumed || second.Segments != 4 || second.SegmentsSkipped < 1 {
		t.Fatalf("second run: resumed %v, %d segments, %d skipped; want a resumed run of 4 with at least 1 skipped",
			second.Resumed, second.Segments, second.SegmentsSkipped)
	}
	// Orders whose events straddled a checkpoint are read again; those of
	// finished pages and segments are not.
	if second.Orders >= 40 || second.Events >= uint64(e.nEvents()) || first.Orders+second.Orders < 40 {
		t.Fatalf("first run %d orders, second %d (%d events of %d): the second run did not continue the first",
			first.Orders, second.Orders, second.Events, e.nEvents())
	}
	// Every view was missing; none is written twice (a view the first run
	// wrote is found right by the second).
	if second.Repaired+first.Repaired > 40 || second.Repaired+second.Unchanged != second.Orders {
		t.Fatalf("first run repaired %d, second %d of %d (%d unchanged): a view was written twice",
			first.Repaired, second.Repaired, second.Orders, second.Unchanged)
	}
	e.check(t)
	third, err := e.rebuild(t, context.Background(), dynamoviews.RebuildOptions{Segments: 2})
	if err != nil {
		t.Fatal(err)
	}
	if third.Resumed || third.Segments != 2 || third.Orders != 40 || third.Repaired != 0 {
		t.Fatalf("run after a finished one: %+v", third)
	}
}

// TestRebuildWriteBound: with MaxWriteUnitsPerSecond the rebuild cannot
// spend write units faster than the bound (less the bucket's one-second
// burst): a lower bound on its duration, which no scheduling can break.
func TestRebuildWriteBound(t *testing.T) {
	t.Parallel()
	e := newRebuildEnv(t, 12, 3)
	const bound = 20.0
	start := time.Now()
	res, err := e.rebuild(t, context.Background(), dynamoviews.RebuildOptions{Segments: 1, MaxWriteUnitsPerSecond: bound})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	// Every view was missing: 12 puts of about 3 units (the table and its
	// two indexes), and at least 3 checkpoint writes.
	spent := res.WriteUnits + 3
	if res.Repaired != 12 || res.WriteUnits < 36 {
		t.Fatalf("rebuild: %+v", res)
	}
	if floor := time.Duration((spent - bound) / bound * float64(time.Second)); elapsed < floor {
		t.Fatalf("%.0f write units in %v at most %.0f/s: faster than the bound allows (%v)", spent, elapsed, bound, floor)
	}
	e.check(t)
}

// TestRebuildBesideLiveTraffic: while a rebuild runs, writers keep
// appending events and projecting them; after both stop, and one more
// projection pass, every view equals the fold of its stream: neither
// writer rolled the other back.
func TestRebuildBesideLiveTraffic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Streams cut short: the live writer appends the rest during the rebuild.
	e := newRebuildEnv(t, 0, 4)
	full := ordergen.Orders(rand.New(rand.NewPCG(4, 1)), e.codec, 30, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	p, err := projections.NewProjector(e.views, e.events, e.codec)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range full {
		if _, err := e.events.Append(ctx, s[0].StreamID, 0, s[0]); err != nil {
			t.Fatal(err)
		}
	}
	e.streams = full
	var wg sync.WaitGroup
	wg.Add(1)
	liveErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		for _, s := range full {
			for _, ev := range s[1:] {
				if _, err := e.events.Append(ctx, ev.StreamID, ev.Version-1, ev); err != nil {
					liveErr <- err
					return
				}
				if err := p.Handle(ctx, ev); err != nil {
					liveErr <- err
					return
				}
			}
		}
	}()
	if _, err := e.rebuild(t, ctx, dynamoviews.RebuildOptions{Segments: 3, PageSize: 4}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	select {
	case err := <-liveErr:
		t.Fatal(err)
	default:
	}
	e.check(t)
}

// TestCreateTableLike: the new table has the source's keys and indexes
// (a rebuild fills it and its lists work); asked again, it is accepted as
// the same table; a table of another shape is refused.
func TestCreateTableLike(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newRebuildEnv(t, 8, 5)
	name := e.table + "-blue"
	t.Cleanup(func() {
		_, _ = e.db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	created, err := dynamoviews.CreateTableLike(ctx, e.db, e.table, name)
	if err != nil || !created {
		t.Fatalf("CreateTableLike: created %v, %v", created, err)
	}
	if created, err := dynamoviews.CreateTableLike(ctx, e.db, e.table, name); err != nil || created {
		t.Fatalf("CreateTableLike again: created %v, %v; want the existing table accepted", created, err)
	}
	src, _ := e.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(e.table)})
	got, _ := e.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if len(got.Table.GlobalSecondaryIndexes) != len(src.Table.GlobalSecondaryIndexes) || len(got.Table.GlobalSecondaryIndexes) != 2 {
		t.Fatalf("indexes of the new table: %d, of the source %d", len(got.Table.GlobalSecondaryIndexes), len(src.Table.GlobalSecondaryIndexes))
	}
	blue, err := dynamoviews.New(e.db, name)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := blue.Rebuild(ctx, e.events, e.codec, dynamoviews.RebuildOptions{}); err != nil || res.Repaired != 8 {
		t.Fatalf("rebuild into the new table: %+v, %v", res, err)
	}
	counts, err := blue.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(0)
	for _, c := range counts {
		n += c
	}
	if n != 8 {
		t.Fatalf("the new table's status index counts %d orders, want 8", n)
	}
	// The events table has other keys: not a table to fill.
	events := awstest.Table(t, e.db, "events")
	if _, err := dynamoviews.CreateTableLike(ctx, e.db, e.table, events); err == nil {
		t.Fatal("an existing table of another shape was accepted")
	}
}

// TestRebuildCostPerOrder meters a rebuild of 200 orders on the emulator:
// into an empty read table every order costs one put (3 WRU: the item and
// its two index entries), and a second pass in place over items already
// right writes nothing (it reads the items and compares).
// It logs the rate and units (BENCHMARKS.md, "Rebuild on DynamoDB"); the
// unit budgets fail the test, the rate is only reported.
func TestRebuildCostPerOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := awstest.Config(t)
	meter := awstest.NewMeter(nil)
	meter.Attach(&cfg)
	db := dynamodb.NewFromConfig(cfg)
	const n = 200
	e := newRebuildEnv(t, n, 7)
	views, err := dynamoviews.New(db, e.table)
	if err != nil {
		t.Fatal(err)
	}
	events, err := dynamostore.New(db, e.evTable, dynamostore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := meter.Describe(ctx, db, e.table); err != nil {
		t.Fatal(err)
	}
	for _, pass := range []struct {
		name      string
		wruBudget float64
	}{{"into an empty table", 3}, {"in place, nothing to repair", 0}} {
		before := meter.Snapshot()
		res, err := views.Rebuild(ctx, events, e.codec, dynamoviews.RebuildOptions{})
		if err != nil {
			t.Fatal(err)
		}
		u := meter.Snapshot().Sub(before)
		w := u.Tables[e.table]
		perOrder := w.WriteUnits / n
		t.Logf("%s: %d events, %d orders in %v (%.0f events/s on the emulator); read table %d writes, %.2f WRU per order; %.2f RRU per order (scan and checkpoints); calls %v",
			pass.name, res.Events, res.Orders, res.Elapsed.Round(time.Millisecond), float64(res.Events)/res.Elapsed.Seconds(), w.Writes, perOrder, u.ReadUnits/n, u.Calls)
		if res.Orders != n || perOrder > pass.wruBudget {
			t.Errorf("%s: %d orders at %.2f WRU each; want %d at most %v", pass.name, res.Orders, perOrder, n, pass.wruBudget)
		}
	}
	e.check(t)
}
