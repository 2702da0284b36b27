package dynamoviews

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/dynamostore"
	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
)

// Rebuilding the read table
//
// Rebuild repairs the read table in place from the events table, beside
// live traffic, and fills a fresh table (blue/green) the same way:
//
//  1. A parallel, strongly consistent Scan of the events table in Segments
//     segments (dynamostore.ScanSegment), one goroutine each. A stream's
//     events are contiguous and in version order within one segment, so
//     each order is folded (projections.Fold, the projector's fold) as soon
//     as the scan moves past it; a stream that does not start at version 1
//     in the scan is loaded whole instead.
//  2. Each page's orders are read from the read table (BatchGetItem,
//     consistent) and compared: an item equal to the fold is left alone (no
//     write); a missing, stale or corrupted one is written with the
//     projector's version fence, a conditional PutItem
//     "attribute_not_exists(order_id) OR version <= :new" (a view is a pure
//     function of its version, so the newest version wins whoever writes
//     last, and an equal version holds the same view). When the stored
//     version is ahead of the scan, the rest of the stream is loaded and
//     folded on (live traffic went on); when it is ahead of the stream
//     itself, the item is corrupt and is replaced conditioned on exactly
//     the version read. A failed condition re-reads and compares again.
//  3. Then a parallel Scan of the read table finds items whose order has no
//     events (no version 1 in the events table): orphans, reported, and
//     deleted (conditioned on the version read) with Prune.
//
// Checkpoints. The rebuild's run and each segment's position are
// checkpoint items of the events table (dynamostore.SaveScanCheckpoint:
// version-0 items of the pseudo-stream "checkpoint#rebuild/<read table>...",
// like the idempotency records, with a 30-day TTL), saved after every page:
// the key of the last event of the last order written, so that an order
// whose events span pages is read again whole. A rebuild killed (kill -9
// included) and started again on the same read table continues its run:
// segments done are not scanned again, the others resume at their
// checkpoint, and the segment count is the run's (not the new
// Options.Segments). A finished run deletes its checkpoints. The events
// table is the one table every deployment has that the rebuild may write
// (the API's role may only read the read table) and whose consumers already
// skip version-0 items, so no new table is needed.
//
// Bounds. MaxWriteUnitsPerSecond throttles the rebuild's writes (puts,
// deletes and checkpoints) with a token bucket on estimated write units (1
// per started KiB of item, once for the table and once per index the item
// is in), so that a rebuild does not starve live traffic on a provisioned
// table. Reads are not bounded.
//
// Caveats. Two rebuilds of one table at once (say the CLI and a server)
// both work the same run: correct (the fence), but twice the work. Progress
// totals are estimates: Total is DescribeTable's item count, which real
// DynamoDB refreshes about every six hours.

// RebuildOptions tune Rebuild.
type RebuildOptions struct {
	// Segments is how many segments the scans are split in, for a fresh run
	// (a resumed run keeps its own); DefaultSegments of the table when 0.
	Segments int
	// MaxWriteUnitsPerSecond bounds the write units spent per second; no
	// bound when 0.
	MaxWriteUnitsPerSecond float64
	// Prune deletes orphans (items whose order has no events); without it
	// they are only reported.
	Prune bool
	// PageSize is the most items one Scan request reads (1,000 when 0).
	PageSize int
	// Progress, when set, is called after each page (calls never overlap).
	Progress func(projections.Progress)
	// Logger receives a JSON line per segment finished and per orphan;
	// nil discards.
	Logger *slog.Logger
}

// RebuildResult describes a finished (or stopped) rebuild.
type RebuildResult struct {
	// Table is the read table rebuilt.
	Table string `json:"table"`
	// Segments is the run's segment count; Resumed says the run had been
	// started before, SegmentsSkipped how many of its segments were done
	// then and not scanned again.
	Segments        int  `json:"segments"`
	Resumed         bool `json:"resumed"`
	SegmentsSkipped int  `json:"segments_skipped"`
	// Events and Orders are this run's: events folded and orders checked
	// (a resumed run does not count what the earlier one did).
	Events uint64 `json:"events"`
	Orders uint64 `json:"orders"`
	// Repaired is how many views were written (missing, stale or
	// corrupted); Unchanged how many were already right.
	Repaired  uint64 `json:"repaired"`
	Unchanged uint64 `json:"unchanged"`
	// Orphans lists items whose order has no events (at most 1,000 IDs;
	// OrphanCount counts them all); Pruned how many were deleted.
	Orphans     []string `json:"orphans"`
	OrphanCount uint64   `json:"orphan_count"`
	Pruned      uint64   `json:"pruned"`
	// WriteUnits estimates the write units spent on the read table
	// (puts and deletes; the checkpoints are not counted).
	WriteUnits float64 `json:"write_units"`
	// Elapsed is how long this run took.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// maxOrphansListed bounds RebuildResult.Orphans.
const maxOrphansListed = 1000

// DefaultSegments sizes a parallel scan to a table of items items and
// bytes bytes: one segment per 50,000 items or 128 MiB, whichever gives
// more, from 1 to 1,000.
func DefaultSegments(items, bytes int64) int {
	n := max((items+49_999)/50_000, (bytes+128<<20-1)/(128<<20))
	return int(min(max(n, 1), 1000))
}

// runState is the run checkpoint.
type runState struct {
	Run       string    `json:"run"`
	Segments  int       `json:"segments"`
	StartedAt time.Time `json:"started_at"`
}

// segmentState is a segment's checkpoint in one phase.
type segmentState struct {
	Done bool `json:"done"`
	// After is where the events scan resumes (the last event of the last
	// order handled); AfterOrder where the read-table scan resumes.
	After      *dynamostore.ScanKey `json:"after,omitempty"`
	AfterOrder string               `json:"after_order,omitempty"`
}

// Rebuild rebuilds the read table from events (see "Rebuilding the read
// table" above). It returns what it did so far even when it fails; rerun,
// it resumes.
func (s *Store) Rebuild(ctx context.Context, events *dynamostore.Store, codec *orders.Codec, opts RebuildOptions) (RebuildResult, error) {
	if events == nil || codec == nil {
		return RebuildResult{}, errors.New("projections/dynamoviews: rebuild: an event store and a codec are required")
	}
	if opts.Segments < 0 || opts.Segments > 1_000_000 || opts.MaxWriteUnitsPerSecond < 0 || opts.PageSize < 0 {
		return RebuildResult{}, domain.Errorf(domain.Invalid, "projections/dynamoviews: rebuild: segments must be 0..1000000, write units and page size not negative")
	}
	r := &rebuild{s: s, events: events, codec: codec, opts: opts, start: time.Now(), log: opts.Logger,
		res: RebuildResult{Table: s.table, Orphans: []string{}}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.opts.PageSize == 0 {
		r.opts.PageSize = 1000
	}
	if opts.MaxWriteUnitsPerSecond > 0 {
		r.limit = rate.NewLimiter(rate.Limit(opts.MaxWriteUnitsPerSecond), max(1, int(math.Ceil(opts.MaxWriteUnitsPerSecond))))
	}
	err := r.run(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Elapsed = time.Since(r.start)
	return r.res, err
}

// RebuildFunc returns Rebuild bound to events and codec with opts (its
// Progress replaced), for projections.NewRebuilds.
func (s *Store) RebuildFunc(events *dynamostore.Store, codec *orders.Codec, opts RebuildOptions) projections.RebuildFunc {
	return func(ctx context.Context, progress func(projections.Progress)) error {
		o := opts
		o.Progress = progress
		_, err := s.Rebuild(ctx, events, codec, o)
		return err
	}
}

type rebuild struct {
	s      *Store
	events *dynamostore.Store
	codec  *orders.Codec
	opts   RebuildOptions
	log    *slog.Logger
	limit  *rate.Limiter
	start  time.Time

	name  string // checkpoint name prefix of the run
	total uint64 // estimated events to do

	mu  sync.Mutex // guards res and progress calls
	res RebuildResult
}

func (r *rebuild) run(ctx context.Context) error {
	base := "rebuild/" + r.s.table
	st, err := r.loadRun(ctx, base)
	if err != nil {
		return err
	}
	stats, err := r.events.Stats(ctx)
	if err != nil {
		return fmt.Errorf("projections/dynamoviews: rebuild: %w", err)
	}
	r.total = uint64(max(stats.Items, 0))
	if st.Run == "" {
		n := r.opts.Segments
		if n == 0 {
			n = DefaultSegments(stats.Items, stats.Bytes)
		}
		st = runState{Run: strconv.FormatInt(time.Now().UnixNano(), 36), Segments: n, StartedAt: time.Now().UTC()}
		if err := r.save(ctx, base, st); err != nil {
			return err
		}
		r.log.Info("rebuild started", "table", r.s.table, "segments", n, "events_estimate", r.total)
	} else {
		r.res.Resumed = true
		r.log.Info("rebuild resumed", "table", r.s.table, "segments", st.Segments, "run_started_at", st.StartedAt)
	}
	r.res.Segments = st.Segments
	r.name = base + "/" + st.Run
	for _, phase := range []string{"events", "orphans"} {
		g, gctx := errgroup.WithContext(ctx)
		for seg := range st.Segments {
			g.Go(func() error { return r.segment(gctx, phase, seg, st.Segments) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	// Done: the checkpoints go (the run first, so that a crash in between
	// starts a fresh run rather than resuming a finished one).
	if err := r.events.DeleteScanCheckpoint(ctx, base); err != nil {
		return fmt.Errorf("projections/dynamoviews: rebuild: %w", err)
	}
	for _, phase := range []string{"events", "orphans"} {
		for seg := range st.Segments {
			if err := r.events.DeleteScanCheckpoint(ctx, r.segmentName(phase, seg)); err != nil {
				return fmt.Errorf("projections/dynamoviews: rebuild: %w", err)
			}
		}
	}
	r.progress(0, 0, 0, 0, 0)
	r.log.Info("rebuild finished", "table", r.s.table, "orders", r.res.Orders, "repaired", r.res.Repaired, "orphans", r.res.OrphanCount)
	return nil
}

func (r *rebuild) loadRun(ctx context.Context, name string) (runState, error) {
	var st runState
	data, ok, err := r.events.ScanCheckpoint(ctx, name)
	if err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("projections/dynamoviews: rebuild: %w", err)
		}
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil || st.Run == "" || st.Segments < 1 {
		return runState{}, fmt.Errorf("projections/dynamoviews: rebuild: run checkpoint %q is malformed: %s", name, data)
	}
	return st, nil
}

// save writes a checkpoint, paying for it in write units.
func (r *rebuild) save(ctx context.Context, name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := r.wait(ctx, 1); err != nil {
		return err
	}
	if err := r.events.SaveScanCheckpoint(ctx, name, data); err != nil {
		return fmt.Errorf("projections/dynamoviews: rebuild: %w", err)
	}
	return nil
}

func (r *rebuild) segmentName(phase string, seg int) string {
	return fmt.Sprintf("%s/%s/%d", r.name, phase, seg)
}

// wait takes units write units from the bucket (in bursts it can hold).
func (r *rebuild) wait(ctx context.Context, units float64) error {
	if r.limit == nil {
		return ctx.Err()
	}
	n := int(math.Ceil(units))
	for n > 0 {
		step := min(n, r.limit.Burst())
		if err := r.limit.WaitN(ctx, step); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		n -= step
	}
	return nil
}

// progress adds to the counts and reports.
func (r *rebuild) progress(events, orders, repaired, unchanged, orphans uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Events += events
	r.res.Orders += orders
	r.res.Repaired += repaired
	r.res.Unchanged += unchanged
	r.res.OrphanCount += orphans
	if r.opts.Progress != nil {
		r.opts.Progress(projections.Progress{
			Done: r.res.Events, Total: max(r.total, r.res.Events), Orders: r.res.Orders,
			Repaired: r.res.Repaired, Orphans: r.res.OrphanCount, Elapsed: time.Since(r.start),
		})
	}
}

// segment runs one segment of one phase from its checkpoint.
func (r *rebuild) segment(ctx context.Context, phase string, seg, total int) error {
	name := r.segmentName(phase, seg)
	var st segmentState
	data, ok, err := r.events.ScanCheckpoint(ctx, name)
	if err != nil {
		return fmt.Errorf("projections/dynamoviews: rebuild: %w", err)
	}
	if ok {
		if err := json.Unmarshal(data, &st); err != nil {
			return fmt.Errorf("projections/dynamoviews: rebuild: checkpoint %q is malformed: %s", name, data)
		}
	}
	if st.Done {
		if phase == "events" {
			r.mu.Lock()
			r.res.SegmentsSkipped++
			r.mu.Unlock()
		}
		return nil
	}
	if phase == "events" {
		err = r.eventsSegment(ctx, name, seg, total, st)
	} else {
		err = r.orphansSegment(ctx, name, seg, total, st)
	}
	if err != nil {
		return err
	}
	r.log.Info("rebuild segment done", "table", r.s.table, "phase", phase, "segment", seg, "segments", total)
	return nil
}

// eventsSegment scans one segment of the events table and rebuilds the
// views of its orders.
func (r *rebuild) eventsSegment(ctx context.Context, name string, seg, total int, st segmentState) error {
	scanAfter := st.After
	var pending []eventstore.Event // the events of the stream the scan is in
	for {
		page, err := r.events.ScanSegment(ctx, seg, total, scanAfter, r.opts.PageSize)
		if err != nil {
			return fmt.Errorf("projections/dynamoviews: rebuild: %w", err)
		}
		var streams [][]eventstore.Event
		for _, e := range page.Events {
			if len(pending) > 0 && pending[0].StreamID != e.StreamID {
				streams = append(streams, pending)
				pending = nil
			}
			pending = append(pending, e)
		}
		if page.Next == nil && len(pending) > 0 {
			streams = append(streams, pending)
			pending = nil
		}
		if err := r.orders(ctx, streams); err != nil {
			return err
		}
		if n := len(streams); n > 0 {
			last := streams[n-1][len(streams[n-1])-1]
			st.After = &dynamostore.ScanKey{StreamID: last.StreamID, Version: last.Version}
		}
		st.Done = page.Next == nil
		if len(streams) > 0 || st.Done {
			if err := r.save(ctx, name, st); err != nil {
				return err
			}
		}
		if st.Done {
			return nil
		}
		scanAfter = page.Next
	}
}

// orders folds the streams and reconciles their views with the stored ones.
func (r *rebuild) orders(ctx context.Context, streams [][]eventstore.Event) error {
	for start := 0; start < len(streams); start += 100 {
		batch := streams[start:min(start+100, len(streams))]
		views := make([]projections.View, len(batch))
		ids := make([]string, len(batch))
		for i, evs := range batch {
			if evs[0].Version != 1 {
				loaded, err := r.events.Load(ctx, evs[0].StreamID, 1)
				if err != nil {
					return fmt.Errorf("projections/dynamoviews: rebuild %s: %w", evs[0].StreamID, err)
				}
				evs = loaded
			}
			v, err := projections.Fold(r.codec, evs)
			if err != nil {
				return fmt.Errorf("projections/dynamoviews: rebuild %s: %w", evs[0].StreamID, err)
			}
			views[i], ids[i] = v, v.OrderID
		}
		stored, err := r.s.batchGet(ctx, ids)
		if err != nil {
			return err
		}
		for i, v := range views {
			wrote, err := r.reconcile(ctx, v, stored[v.OrderID])
			if err != nil {
				return err
			}
			if wrote {
				r.progress(uint64(len(batch[i])), 1, 1, 0, 0)
			} else {
				r.progress(uint64(len(batch[i])), 1, 0, 1, 0)
			}
		}
	}
	return nil
}

// reconcile brings the stored item of v's order to v, or to a later
// version of the order's stream, with the version fence. It reports
// whether it wrote.
func (r *rebuild) reconcile(ctx context.Context, v projections.View, stored map[string]types.AttributeValue) (bool, error) {
	for attempt := 0; ; attempt++ {
		want := Item(v)
		if sameItem(want, stored) {
			return false, nil
		}
		if attempt == 8 {
			return false, domain.Errorf(domain.Unavailable, "projections/dynamoviews: rebuild %s: the view kept changing under the rebuild", v.OrderID)
		}
		in := &dynamodb.PutItemInput{
			TableName: aws.String(r.s.table), Item: want,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			ExpressionAttributeNames:            map[string]string{"#v": attrVersion},
		}
		storedVersion, numeric := versionOf(stored)
		if numeric && storedVersion > v.Version {
			more, err := r.events.Load(ctx, v.OrderID, v.Version+1)
			if err != nil {
				return false, fmt.Errorf("projections/dynamoviews: rebuild %s: %w", v.OrderID, err)
			}
			if len(more) > 0 {
				if v, err = projections.FoldOnto(r.codec, v, more); err != nil {
					return false, fmt.Errorf("projections/dynamoviews: rebuild %s: %w", v.OrderID, err)
				}
				continue // compare again with the stream's newest view
			}
			// The stored view claims versions its stream does not have.
			in.ConditionExpression = aws.String("#v = :stored")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":stored": stored[attrVersion]}
		} else {
			in.ExpressionAttributeNames["#id"] = attrOrderID
			in.ConditionExpression = aws.String("attribute_not_exists(#id) OR NOT attribute_type(#v, :number) OR #v <= :new")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{
				":number": &types.AttributeValueMemberS{Value: "N"},
				":new":    &types.AttributeValueMemberN{Value: strconv.FormatInt(v.Version, 10)},
			}
		}
		units := writeUnits(want)
		if err := r.wait(ctx, units); err != nil {
			return false, err
		}
		_, err := r.s.db.PutItem(ctx, in)
		r.mu.Lock()
		r.res.WriteUnits += units
		r.mu.Unlock()
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			stored = ccf.Item // another writer got there: compare with what it wrote
			continue
		}
		if err != nil {
			return false, fmt.Errorf("projections/dynamoviews: rebuild %s: %w", v.OrderID, awsconfig.MarkUnavailable(err))
		}
		return true, nil
	}
}

// sameItem reports whether stored holds exactly want (the write token
// aside).
func sameItem(want, stored map[string]types.AttributeValue) bool {
	if len(stored) == 0 {
		return false
	}
	if _, ok := stored[attrWriteID]; ok {
		stored = maps.Clone(stored)
		delete(stored, attrWriteID)
	}
	return reflect.DeepEqual(want, stored)
}

// versionOf returns the stored item's version, if it is a number.
func versionOf(item map[string]types.AttributeValue) (int64, bool) {
	n, ok := item[attrVersion].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	return v, err == nil
}

// writeUnits estimates what writing (or deleting) item costs: one unit per
// started KiB, for the table and for each index the item is in.
func writeUnits(item map[string]types.AttributeValue) float64 {
	size := 0
	for k, v := range item {
		size += len(k)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			size += len(v.Value)
		case *types.AttributeValueMemberN:
			size += len(v.Value)
		default:
			size += 16
		}
	}
	kib := float64((size + 1023) / 1024)
	copies := 1.0
	for _, k := range []string{attrStatus, attrCustomer} {
		if _, ok := item[k]; ok {
			copies++
		}
	}
	return kib * copies
}

// batchGet reads the items of ids (consistent; at most 100).
func (s *Store) batchGet(ctx context.Context, ids []string) (map[string]map[string]types.AttributeValue, error) {
	out := make(map[string]map[string]types.AttributeValue, len(ids))
	keys := make([]map[string]types.AttributeValue, 0, len(ids))
	for _, id := range ids {
		keys = append(keys, key(id))
	}
	req := map[string]types.KeysAndAttributes{s.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
	for attempt := 0; len(req[s.table].Keys) > 0; attempt++ {
		if attempt > 0 {
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return nil, err
			}
		}
		res, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
		if err != nil {
			return nil, fmt.Errorf("projections/dynamoviews: rebuild: read views: %w", awsconfig.MarkUnavailable(err))
		}
		for _, it := range res.Responses[s.table] {
			if id, ok := it[attrOrderID].(*types.AttributeValueMemberS); ok {
				out[id.Value] = it
			}
		}
		req = res.UnprocessedKeys
	}
	return out, nil
}

// orphansSegment scans one segment of the read table for items whose order
// has no events, reporting them and, with Prune, deleting them.
func (r *rebuild) orphansSegment(ctx context.Context, name string, seg, total int, st segmentState) error {
	for {
		in := &dynamodb.ScanInput{
			TableName: aws.String(r.s.table), Segment: aws.Int32(int32(seg)), TotalSegments: aws.Int32(int32(total)),
			ConsistentRead: aws.Bool(true), Limit: aws.Int32(int32(min(r.opts.PageSize, 1<<30))),
		}
		if st.AfterOrder != "" {
			in.ExclusiveStartKey = key(st.AfterOrder)
		}
		page, err := r.s.db.Scan(ctx, in)
		if err != nil {
			return fmt.Errorf("projections/dynamoviews: rebuild: scan %s: %w", r.s.table, awsconfig.MarkUnavailable(err))
		}
		ids := make([]string, 0, len(page.Items))
		for _, it := range page.Items {
			if id, ok := it[attrOrderID].(*types.AttributeValueMemberS); ok {
				ids = append(ids, id.Value)
			}
		}
		found, err := r.events.HasStreams(ctx, ids)
		if err != nil {
			return fmt.Errorf("projections/dynamoviews: rebuild: %w", err)
		}
		var orphans uint64
		for _, it := range page.Items {
			id, _ := it[attrOrderID].(*types.AttributeValueMemberS)
			if id == nil || found[id.Value] {
				continue
			}
			orphans++
			pruned := false
			if r.opts.Prune {
				if pruned, err = r.prune(ctx, it); err != nil {
					return err
				}
			}
			r.log.Warn("rebuild: orphan view (its order has no events)", "table", r.s.table, "order_id", id.Value, "pruned", pruned)
			r.mu.Lock()
			if len(r.res.Orphans) < maxOrphansListed {
				r.res.Orphans = append(r.res.Orphans, id.Value)
			}
			if pruned {
				r.res.Pruned++
			}
			r.mu.Unlock()
		}
		if n := len(ids); n > 0 {
			st.AfterOrder = ids[n-1]
		}
		if len(page.LastEvaluatedKey) > 0 {
			if k, ok := page.LastEvaluatedKey[attrOrderID].(*types.AttributeValueMemberS); ok {
				st.AfterOrder = k.Value
			}
		}
		st.Done = len(page.LastEvaluatedKey) == 0
		if err := r.save(ctx, name, st); err != nil {
			return err
		}
		r.progress(0, 0, 0, 0, orphans)
		if st.Done {
			return nil
		}
	}
}

// prune deletes an orphan, conditioned on the item being as it was read.
func (r *rebuild) prune(ctx context.Context, item map[string]types.AttributeValue) (bool, error) {
	units := writeUnits(item)
	if err := r.wait(ctx, units); err != nil {
		return false, err
	}
	id := item[attrOrderID].(*types.AttributeValueMemberS).Value
	in := &dynamodb.DeleteItemInput{TableName: aws.String(r.s.table), Key: key(id)}
	if v, ok := item[attrVersion]; ok {
		in.ConditionExpression = aws.String("#v = :v")
		in.ExpressionAttributeNames = map[string]string{"#v": attrVersion}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": v}
	}
	_, err := r.s.db.DeleteItem(ctx, in)
	r.mu.Lock()
	r.res.WriteUnits += units
	r.mu.Unlock()
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil // changed since read: no longer the orphan that was found
	}
	if err != nil {
		return false, fmt.Errorf("projections/dynamoviews: rebuild: prune %s: %w", id, awsconfig.MarkUnavailable(err))
	}
	return true, nil
}

func backoff(n int) time.Duration {
	return min(time.Duration(1<<min(n, 10))*10*time.Millisecond, 2*time.Second)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
