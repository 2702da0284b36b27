// Package readmodeltest is the conformance suite every projections.ReadModel
// adapter runs (Run), with its test helpers (NewStreams, Deliveries). The
// order histories it feeds them come from package ordergen.
package readmodeltest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/ordergen"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
)

// Features says which guarantees an adapter (or its test environment) can
// be held to.
type Features struct {
	// ConcurrentConflicts: concurrent Puts expecting the same version of one
	// view are run, and exactly one must win. Off for environments that
	// cannot take concurrent conflicting writes (moto's stock threaded
	// server; scripts/moto.sh serves it one request at a time, which can).
	ConcurrentConflicts bool
	// Parallel: the projector may write different views concurrently.
	Parallel bool
}

// Run runs the conformance suite. open must return a new, empty read model
// for each call (and clean it up with t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) projections.ReadModel, f Features) {
	tests := []struct {
		name string
		fn   func(t *testing.T, rm projections.ReadModel, f Features)
	}{
		{"GetMissing", testGetMissing},
		{"PutGet", testPutGet},
		{"PutFenced", testPutFenced},
		{"PutInvalid", testPutInvalid},
		{"ListNewestFirstPaged", testList},
		{"ListFilters", testListFilters},
		{"ListBadQuery", testListBadQuery},
		{"ListCursorTampered", testListCursorTampered},
		{"ListCursorOtherQuery", testListCursorOtherQuery},
		{"Counts", testCounts},
		{"ConcurrentConflicts", testConcurrentConflicts},
		{"ProjectorConverges", testProjectorConverges},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t), f)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Diff returns "" when a and b are the same view field for field (times
// compared as instants, both must be UTC), else what differs.
func Diff(a, b projections.View) string {
	var d []string
	add := func(name string, x, y any) { d = append(d, fmt.Sprintf("%s: %v != %v", name, x, y)) }
	if a.OrderID != b.OrderID {
		add("order_id", a.OrderID, b.OrderID)
	}
	if a.CustomerName != b.CustomerName {
		add("customer_name", a.CustomerName, b.CustomerName)
	}
	if a.ProductName != b.ProductName {
		add("product_name", a.ProductName, b.ProductName)
	}
	if a.Quantity != b.Quantity {
		add("quantity", a.Quantity, b.Quantity)
	}
	if a.Status != b.Status {
		add("status", a.Status, b.Status)
	}
	if a.Version != b.Version {
		add("version", a.Version, b.Version)
	}
	if !a.CreatedAt.Equal(b.CreatedAt) || a.CreatedAt.Location() != b.CreatedAt.Location() {
		add("created_at", a.CreatedAt, b.CreatedAt)
	}
	if !a.UpdatedAt.Equal(b.UpdatedAt) || a.UpdatedAt.Location() != b.UpdatedAt.Location() {
		add("updated_at", a.UpdatedAt, b.UpdatedAt)
	}
	if a.FailureReason != b.FailureReason {
		add("failure_reason", a.FailureReason, b.FailureReason)
	}
	if a.PaymentID != b.PaymentID {
		add("payment_id", a.PaymentID, b.PaymentID)
	}
	if a.ReservationID != b.ReservationID {
		add("reservation_id", a.ReservationID, b.ReservationID)
	}
	if a.Amount != b.Amount {
		add("amount", a.Amount, b.Amount)
	}
	return strings.Join(d, "; ")
}

var base = time.Date(2026, 11, 25, 9, 0, 0, 123456789, time.UTC)

// view returns a placed order's view.
func view(id, customer string, created time.Time) projections.View {
	return projections.View{
		OrderID: id, CustomerName: customer, ProductName: "keyboard", Quantity: 2,
		Status: order.StatusPending, Version: 1, CreatedAt: created, UpdatedAt: created,
	}
}

// newID returns a ULID for a test view.
var newID = domain.NewULIDSource(nil)

func mustPut(t *testing.T, rm projections.ReadModel, expected int64, v projections.View) {
	t.Helper()
	if err := rm.Put(ctxT(t), expected, v); err != nil {
		t.Fatalf("Put(%d, %s v%d): %v", expected, v.OrderID, v.Version, err)
	}
}

func mustGet(t *testing.T, rm projections.ReadModel, id string) projections.View {
	t.Helper()
	v, err := rm.Get(ctxT(t), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return v
}

func testGetMissing(t *testing.T, rm projections.ReadModel, _ Features) {
	for _, id := range []string{newID(base), "no-such-order"} {
		if _, err := rm.Get(ctxT(t), id); !errors.Is(err, order.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want order.ErrNotFound", id, err)
		}
	}
}

func testPutGet(t *testing.T, rm projections.ReadModel, _ Features) {
	v := projections.View{
		OrderID: newID(base), CustomerName: "Zoë Ünïcode ☕", ProductName: "laptop stand", Quantity: 10000,
		Status: order.StatusFailed, Version: 5, CreatedAt: base, UpdatedAt: base.Add(1500 * time.Millisecond),
		FailureReason: "out of stock", PaymentID: "pay-1", ReservationID: "", Amount: 1234567,
	}
	mustPut(t, rm, 0, v)
	if d := Diff(mustGet(t, rm, v.OrderID), v); d != "" {
		t.Errorf("Get after Put differs: %s", d)
	}
}

func testPutFenced(t *testing.T, rm projections.ReadModel, _ Features) {
	ctx := ctxT(t)
	v1 := view(newID(base), "Ada", base)
	mustPut(t, rm, 0, v1)
	v2 := v1
	v2.Version, v2.PaymentID, v2.Amount = 2, "pay-2", 500
	for _, tc := range []struct {
		expected int64
		v        projections.View
		actual   int64
	}{
		{0, v1, 1}, // placed twice
		{0, v2, 1},
		{3, func() projections.View { v := v2; v.Version = 4; return v }(), 1}, // ahead of the stored view
	} {
		err := rm.Put(ctx, tc.expected, tc.v)
		var ce *projections.ConflictError
		if !errors.As(err, &ce) || ce.Actual != tc.actual || ce.Expected != tc.expected || ce.OrderID != v1.OrderID {
			t.Errorf("Put(%d, v%d) = %v, want a ConflictError{%s, %d, %d}", tc.expected, tc.v.Version, err, v1.OrderID, tc.expected, tc.actual)
		}
		if domain.CodeOf(err) != domain.PreconditionFailed {
			t.Errorf("CodeOf(%v) = %s, want %s", err, domain.CodeOf(err), domain.PreconditionFailed)
		}
	}
	if d := Diff(mustGet(t, rm, v1.OrderID), v1); d != "" {
		t.Fatalf("conflicting Puts changed the view: %s", d)
	}
	mustPut(t, rm, 1, v2)
	// A stale writer that read version 1 loses now.
	stale := v1
	stale.Version, stale.Status = 2, order.StatusCancelled
	var ce *projections.ConflictError
	if err := rm.Put(ctx, 1, stale); !errors.As(err, &ce) || ce.Actual != 2 {
		t.Errorf("stale Put = %v, want a ConflictError with actual 2", err)
	}
	// A jump (read-repair) is allowed from the version read.
	v5 := v2
	v5.Version, v5.Status = 5, order.StatusCompleted
	mustPut(t, rm, 2, v5)
	if d := Diff(mustGet(t, rm, v1.OrderID), v5); d != "" {
		t.Errorf("after Puts: %s", d)
	}
}

func testPutInvalid(t *testing.T, rm projections.ReadModel, _ Features) {
	ctx := ctxT(t)
	good := view(newID(base), "Ada", base)
	for name, tc := range map[string]struct {
		expected int64
		v        projections.View
	}{
		"version not above expected": {1, func() projections.View { v := good; v.Version = 1; return v }()},
		"zero version":               {0, func() projections.View { v := good; v.Version = 0; return v }()},
		"no order ID":                {0, func() projections.View { v := good; v.OrderID = ""; return v }()},
		"bad status":                 {0, func() projections.View { v := good; v.Status = "Shipped"; return v }()},
	} {
		err := rm.Put(ctx, tc.expected, tc.v)
		var ce *projections.ConflictError
		if err == nil || errors.As(err, &ce) || domain.CodeOf(err) != domain.Invalid {
			t.Errorf("%s: Put = %v, want an Invalid error", name, err)
		}
	}
	if _, err := rm.Get(ctx, good.OrderID); !errors.Is(err, order.ErrNotFound) {
		t.Errorf("invalid Puts stored something: Get = %v", err)
	}
}

// fill stores n views with created times going back and forth (some equal)
// and returns them newest first.
func fill(t *testing.T, rm projections.ReadModel, n int) []projections.View {
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	customers := []string{"Ada", "Grace", "Ada Lovelace"}
	var all []projections.View
	for i := 0; i < n; i++ {
		created := base.Add(time.Duration(rng.IntN(n/2+1)) * time.Second) // ties on purpose
		v := view(newID(created), customers[rng.IntN(len(customers))], created)
		v.Status = order.Statuses[rng.IntN(len(order.Statuses))]
		mustPut(t, rm, 0, v)
		all = append(all, v)
	}
	sortNewest(all)
	return all
}

func sortNewest(vs []projections.View) {
	slices.SortFunc(vs, func(a, b projections.View) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.OrderID, a.OrderID)
	})
}

// listAll pages through q and returns every item.
func listAll(t *testing.T, rm projections.ReadModel, q projections.ListQuery) []projections.View {
	t.Helper()
	var out []projections.View
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("List never ends")
		}
		p, err := rm.List(ctxT(t), q)
		if err != nil {
			t.Fatalf("List(%+v): %v", q, err)
		}
		if q.Limit > 0 && len(p.Items) > q.Limit {
			t.Fatalf("List(limit %d) returned %d items", q.Limit, len(p.Items))
		}
		out = append(out, p.Items...)
		if p.NextCursor == "" {
			return out
		}
		q.Cursor = p.NextCursor
	}
}

func sameList(t *testing.T, what string, got, want []projections.View) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d items, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := Diff(got[i], want[i]); d != "" {
			t.Fatalf("%s: item %d: %s", what, i, d)
		}
	}
}

func testList(t *testing.T, rm projections.ReadModel, _ Features) {
	p, err := rm.List(ctxT(t), projections.ListQuery{})
	if err != nil || len(p.Items) != 0 || p.NextCursor != "" {
		t.Fatalf("List on an empty model = %+v, %v; want no items and no cursor", p, err)
	}
	all := fill(t, rm, 37)
	sameList(t, "one page", listAll(t, rm, projections.ListQuery{Limit: 100}), all)
	for _, limit := range []int{1, 7, 37} {
		sameList(t, fmt.Sprintf("pages of %d", limit), listAll(t, rm, projections.ListQuery{Limit: limit}), all)
	}
	p, err = rm.List(ctxT(t), projections.ListQuery{})
	if err != nil || len(p.Items) != min(len(all), projections.DefaultLimit) {
		t.Errorf("List with no limit: %d items, %v; want %d", len(p.Items), err, min(len(all), projections.DefaultLimit))
	}
}

func testListFilters(t *testing.T, rm projections.ReadModel, _ Features) {
	all := fill(t, rm, 40)
	check := func(q projections.ListQuery) {
		t.Helper()
		var want []projections.View
		for _, v := range all {
			if (q.Status == "" || v.Status == q.Status) && (q.Customer == "" || v.CustomerName == q.Customer) {
				want = append(want, v)
			}
		}
		q.Limit = 3
		sameList(t, fmt.Sprintf("status %q customer %q", q.Status, q.Customer), listAll(t, rm, q), want)
	}
	for _, st := range append([]order.Status{""}, order.Statuses...) {
		for _, c := range []string{"", "Ada", "Grace", "Ada Lovelace", "Nobody"} {
			check(projections.ListQuery{Status: st, Customer: c})
		}
	}
	// A status change moves the view between lists, leaving nothing behind.
	for i, v := range all {
		if v.Status == order.StatusPending {
			next := v
			next.Version, next.Status, next.UpdatedAt = 2, order.StatusCompleted, v.UpdatedAt.Add(time.Second)
			mustPut(t, rm, 1, next)
			all[i] = next
		}
	}
	for _, st := range order.Statuses {
		check(projections.ListQuery{Status: st})
		check(projections.ListQuery{Status: st, Customer: "Ada"})
	}
	check(projections.ListQuery{})
}

func testListBadQuery(t *testing.T, rm projections.ReadModel, _ Features) {
	fill(t, rm, 3)
	for _, q := range []projections.ListQuery{
		{Status: "Shipped"},
		{Limit: -1},
		{Limit: projections.MaxLimit + 1},
		{Cursor: "not a cursor!"},
		{Cursor: "AAAA"},
	} {
		if _, err := rm.List(ctxT(t), q); domain.CodeOf(err) != domain.Invalid {
			t.Errorf("List(%+v) = %v, want an Invalid error", q, err)
		}
	}
}

// firstCursor fills rm and returns the cursor of q's first page.
func firstCursor(t *testing.T, rm projections.ReadModel, q projections.ListQuery) string {
	t.Helper()
	fill(t, rm, 30)
	p, err := rm.List(ctxT(t), q)
	if err != nil || p.NextCursor == "" {
		t.Fatalf("List(%+v) = %d items, cursor %q, %v; want a next page", q, len(p.Items), p.NextCursor, err)
	}
	return p.NextCursor
}

// testListCursorTampered: a cursor with any character changed, cut short
// or lengthened is refused, not read as some other position.
func testListCursorTampered(t *testing.T, rm projections.ReadModel, _ Features) {
	q := projections.ListQuery{Limit: 2}
	c := firstCursor(t, rm, q)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var bad []string
	for i := range c {
		for _, r := range []byte{alphabet[(strings.IndexByte(alphabet, c[i])+1)%len(alphabet)], alphabet[(strings.IndexByte(alphabet, c[i])+32)%len(alphabet)]} {
			bad = append(bad, c[:i]+string(r)+c[i+1:])
		}
	}
	bad = append(bad, c[:len(c)-1], c[1:], c+"A", c+c, strings.ToUpper(c), strings.ToLower(c))
	for _, b := range bad {
		if b == c {
			continue
		}
		if p, err := rm.List(ctxT(t), projections.ListQuery{Limit: 2, Cursor: b}); domain.CodeOf(err) != domain.Invalid {
			t.Fatalf("List with cursor %q (issued %q) = %d items, %v; want an Invalid error", b, c, len(p.Items), err)
		}
	}
	if _, err := rm.List(ctxT(t), projections.ListQuery{Limit: 2, Cursor: c}); err != nil {
		t.Fatalf("the cursor as issued: %v", err)
	}
}

// testListCursorOtherQuery: a cursor is bound to the filters of the query
// that issued it; with others it is refused (a page size may change).
func testListCursorOtherQuery(t *testing.T, rm projections.ReadModel, _ Features) {
	q := projections.ListQuery{Customer: "Ada", Limit: 2}
	c := firstCursor(t, rm, q)
	for _, other := range []projections.ListQuery{
		{},
		{Customer: "Grace"},
		{Customer: "ada"},
		{Customer: "Ada "},
		{Customer: "Ada", Status: order.StatusPending},
		{Status: order.StatusPending},
	} {
		other.Cursor, other.Limit = c, 2
		if p, err := rm.List(ctxT(t), other); domain.CodeOf(err) != domain.Invalid {
			t.Errorf("List(%+v) with a cursor of %+v = %d items, %v; want an Invalid error", other, q, len(p.Items), err)
		}
	}
	for _, limit := range []int{1, 2, 5} {
		if _, err := rm.List(ctxT(t), projections.ListQuery{Customer: "Ada", Limit: limit, Cursor: c}); err != nil {
			t.Errorf("the cursor with limit %d: %v", limit, err)
		}
	}
}

func testCounts(t *testing.T, rm projections.ReadModel, _ Features) {
	check := func(want map[order.Status]int64) {
		t.Helper()
		got, err := rm.Counts(ctxT(t))
		if err != nil {
			t.Fatalf("Counts: %v", err)
		}
		for _, st := range order.Statuses {
			n, ok := got[st]
			if !ok || n != want[st] {
				t.Errorf("Counts()[%s] = %d (present %v), want %d", st, n, ok, want[st])
			}
		}
	}
	check(nil)
	a := view(newID(base), "Ada", base)
	b := view(newID(base), "Grace", base)
	mustPut(t, rm, 0, a)
	mustPut(t, rm, 0, b)
	check(map[order.Status]int64{order.StatusPending: 2})
	a2 := a
	a2.Version, a2.Status = 2, order.StatusCancelled
	mustPut(t, rm, 1, a2)
	_ = rm.Put(ctxT(t), 1, a2) // a conflict changes nothing
	check(map[order.Status]int64{order.StatusPending: 1, order.StatusCancelled: 1})
	b2 := b
	b2.Version, b2.Status = 4, order.StatusCompleted
	mustPut(t, rm, 1, b2)
	check(map[order.Status]int64{order.StatusCancelled: 1, order.StatusCompleted: 1})
}

func testConcurrentConflicts(t *testing.T, rm projections.ReadModel, f Features) {
	if !f.ConcurrentConflicts {
		t.Skip("the adapter's environment does not take concurrent conflicting writes")
	}
	v := view(newID(base), "Ada", base)
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := v
			w.Quantity = i + 1
			errs[i] = rm.Put(ctxT(t), 0, w)
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		var ce *projections.ConflictError
		switch {
		case err == nil && won >= 0:
			t.Fatalf("writers %d and %d both won", won, i)
		case err == nil:
			won = i
		case !errors.As(err, &ce):
			t.Fatalf("writer %d: %v, want a ConflictError", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no writer won")
	}
	if got := mustGet(t, rm, v.OrderID); got.Quantity != won+1 {
		t.Errorf("stored quantity %d, want the winner's %d", got.Quantity, won+1)
	}
}

// testProjectorConverges feeds a projector on rm duplicated, reordered and
// missing deliveries and checks every view equals the fold of its stream.
func testProjectorConverges(t *testing.T, rm projections.ReadModel, f Features) {
	codec := orders.NewCodec()
	rng := rand.New(rand.NewPCG(7, 11))
	streams := ordergen.Orders(rng, codec, 40, base)
	src := NewStreams(streams)
	p, err := projections.NewProjector(rm, src, codec)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Parallel {
		p.Parallel = 1
	}
	deliveries := Deliveries(rng, ordergen.Interleave(rng, streams))
	for len(deliveries) > 0 {
		n := min(len(deliveries), 1+rng.IntN(16))
		if err := p.HandleBatch(ctxT(t), deliveries[:n]); err != nil {
			t.Fatalf("HandleBatch: %v", err)
		}
		deliveries = deliveries[n:]
	}
	for _, s := range streams {
		want, err := projections.Fold(codec, s)
		if err != nil {
			t.Fatal(err)
		}
		if d := Diff(mustGet(t, rm, s[0].StreamID), want); d != "" {
			t.Errorf("order %s: %s", s[0].StreamID, d)
		}
	}
}

// Deliveries turns a log into an at-least-once, out-of-order delivery: each
// event is dropped, duplicated or moved, but the last event of every stream
// is delivered at least once (so the projector learns the stream's end).
func Deliveries(rng *rand.Rand, log []eventstore.Event) []eventstore.Event {
	last := map[string]int64{}
	for _, e := range log {
		last[e.StreamID] = max(last[e.StreamID], e.Version)
	}
	var out []eventstore.Event
	for _, e := range log {
		switch k := rng.IntN(10); {
		case k < 2 && e.Version != last[e.StreamID]: // dropped
		case k < 4:
			out = append(out, e, e)
		default:
			out = append(out, e)
		}
	}
	// Move events around locally and far.
	for i := range out {
		j := min(len(out)-1, max(0, i+rng.IntN(40)-20))
		if rng.IntN(20) == 0 {
			j = rng.IntN(len(out))
		}
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Streams is an eventstore.Store over fixed streams: Load works, appends
// fail. It stands in for the log when testing projectors.
type Streams struct {
	mu sync.Mutex
	m  map[string][]eventstore.Event
}

var _ eventstore.Store = (*Streams)(nil)

// NewStreams returns a Streams holding streams.
func NewStreams(streams [][]eventstore.Event) *Streams {
	s := &Streams{m: map[string][]eventstore.Event{}}
	for _, st := range streams {
		if len(st) > 0 {
			s.m[st[0].StreamID] = st
		}
	}
	return s
}

var errReadOnly = errors.New("readmodeltest: streams are read-only")

// Append fails.
func (s *Streams) Append(context.Context, string, int64, ...eventstore.Event) (eventstore.Result, error) {
	return eventstore.Result{}, errReadOnly
}

// AppendIdempotent fails.
func (s *Streams) AppendIdempotent(context.Context, string, string, int64, ...eventstore.Event) (eventstore.Result, error) {
	return eventstore.Result{}, errReadOnly
}

// Load implements eventstore.Store.
func (s *Streams) Load(ctx context.Context, streamID string, from int64) ([]eventstore.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[streamID]
	from = max(from, 1)
	if from > int64(len(st)) {
		return nil, nil
	}
	return slices.Clone(st[from-1:]), nil
}
