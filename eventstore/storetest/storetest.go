// Package storetest is the conformance suite of the event store port: every
// backend (embedded, dynamo) runs it in a few lines from its own tests, and no
// backend ships without passing it.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Harness {
//			s := open(t) // an empty store, closed by t.Cleanup
//			return storetest.Harness{Store: s, Reopen: ...}
//		}, storetest.Features{GlobalFeed: true, ...})
//	}
//
// Features switches off the parts a backend legitimately lacks (a global
// feed, checkpoints, reopening, concurrent conflicting writers), in the way
// watermill's pubsub test suite does.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// Harness is one fresh store under test.
type Harness struct {
	// Store is the store under test. It must start empty (no streams, no
	// feed, no checkpoints) and be closed by a t.Cleanup of the factory.
	Store eventstore.Store
	// Reopen closes the current store and returns a new one over the same
	// data (required with Features.Reopen). The suite uses only the returned
	// store afterwards; the factory's cleanup must close it too.
	Reopen func(t *testing.T) eventstore.Store
}

// Features says which guarantees the backend has.
type Features struct {
	// GlobalFeed: the store implements eventstore.Feed (positions 1..n,
	// gap-free, commit order) and fills Event.Position on Load.
	GlobalFeed bool
	// Checkpoints: the store implements eventstore.Checkpoints.
	Checkpoints bool
	// Reopen: Harness.Reopen is set and data survives it.
	Reopen bool
	// ConcurrentConflicts: conflicting writers may race on one stream from
	// many goroutines (false for an emulator that is not safe for that; the
	// conflict rules are then proved with sequential writers only).
	ConcurrentConflicts bool
}

// Run runs the whole suite. newStore is called once per subtest.
func Run(t *testing.T, newStore func(t *testing.T) Harness, f Features) {
	tests := []struct {
		name string
		run  func(t *testing.T, h Harness, f Features)
		need bool
		why  string // the Features that need must be declared
	}{
		{"AppendAndLoad", testAppendAndLoad, true, ""},
		{"LoadFromVersion", testLoadFrom, true, ""},
		{"Conflicts", testConflicts, true, ""},
		{"ConflictRace", testConflictRace, f.ConcurrentConflicts, "Features.ConcurrentConflicts"},
		{"Atomicity", testAtomicity, true, ""},
		{"InvalidInput", testInvalid, true, ""},
		{"CancelledContext", testCancelled, true, ""},
		{"Idempotency", testIdempotency, true, ""},
		{"IdempotencyRace", testIdempotencyRace, f.ConcurrentConflicts, "Features.ConcurrentConflicts"},
		{"Payloads", testPayloads, true, ""},
		{"Chain", testChain, true, ""},
		{"Reopen", testReopen, f.Reopen, "Features.Reopen"},
		{"Feed", testFeed, f.GlobalFeed, "Features.GlobalFeed"},
		{"FeedConcurrentWriters", testFeedConcurrent, f.GlobalFeed, "Features.GlobalFeed"},
		{"Checkpoints", testCheckpoints, f.Checkpoints, "Features.Checkpoints"},
		{"CheckpointResume", testCheckpointResume, f.Checkpoints && f.GlobalFeed && f.Reopen, "Features.Checkpoints and Features.GlobalFeed and Features.Reopen"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.need {
				t.Skipf("the backend does not declare %s", tc.why)
			}
			t.Parallel()
			tc.run(t, newStore(t), f)
		})
	}
}

// ids gives unique stream IDs and event IDs (ULIDs).
var ids = domain.NewULIDSource(nil)

func newStream() string { return ids(time.Now()) }

// ev returns an event with a small JSON body carrying n.
func ev(n int) eventstore.Event {
	now := time.Now().UTC()
	return eventstore.Event{
		EventID:       ids(now),
		Type:          "Tested",
		SchemaVersion: 1,
		OccurredAt:    now,
		Data:          json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
		Metadata: eventstore.Metadata{CorrelationID: "corr", CausationID: "cause", RequestID: "req",
			TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	}
}

func evs(from, n int) []eventstore.Event {
	out := make([]eventstore.Event, n)
	for i := range out {
		out[i] = ev(from + i)
	}
	return out
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, expected int64, events ...eventstore.Event) eventstore.Result {
	t.Helper()
	res, err := s.Append(ctxT(t), stream, expected, events...)
	if err != nil {
		t.Fatalf("append %s at %d: %v", stream, expected, err)
	}
	if want := expected + int64(len(events)); res.Version != want || res.StreamID != stream || res.Duplicate {
		t.Fatalf("append %s at %d: result %+v, want version %d", stream, expected, res, want)
	}
	return res
}

func mustLoad(t *testing.T, s eventstore.Store, stream string, from int64) []eventstore.Event {
	t.Helper()
	got, err := s.Load(ctxT(t), stream, from)
	if err != nil {
		t.Fatalf("load %s from %d: %v", stream, from, err)
	}
	return got
}

// sameEvent compares what the caller set and the version the store assigned.
func sameEvent(t *testing.T, got, want eventstore.Event, stream string, version int64) {
	t.Helper()
	if got.EventID != want.EventID || got.StreamID != stream || got.Version != version ||
		got.Type != want.Type || got.SchemaVersion != want.SchemaVersion ||
		!got.OccurredAt.Equal(want.OccurredAt) || string(got.Data) != string(want.Data) ||
		got.Metadata != want.Metadata {
		t.Fatalf("event differs:\n got %+v (data %s)\nwant %+v (data %s) at stream %s version %d",
			got, got.Data, want, want.Data, stream, version)
	}
}

func checkStream(t *testing.T, s eventstore.Store, stream string, want []eventstore.Event) {
	t.Helper()
	got := mustLoad(t, s, stream, 0)
	if len(got) != len(want) {
		t.Fatalf("stream %s has %d events, want %d", stream, len(got), len(want))
	}
	for i := range got {
		sameEvent(t, got[i], want[i], stream, int64(i+1))
	}
}

func testAppendAndLoad(t *testing.T, h Harness, f Features) {
	s := h.Store
	stream := newStream()
	first := evs(1, 3)
	mustAppend(t, s, stream, 0, first...)
	more := evs(4, 2)
	mustAppend(t, s, stream, 3, more...)
	checkStream(t, s, stream, append(first, more...))
	got := mustLoad(t, s, stream, 0)
	if f.GlobalFeed {
		for i := 1; i < len(got); i++ {
			if got[i].Position <= got[i-1].Position || got[i].Position == 0 {
				t.Fatalf("positions not increasing: %d then %d", got[i-1].Position, got[i].Position)
			}
		}
	}
	// Another stream is independent.
	other, e := newStream(), ev(9)
	mustAppend(t, s, other, 0, e)
	checkStream(t, s, other, []eventstore.Event{e})
	if n := len(mustLoad(t, s, stream, 0)); n != 5 {
		t.Fatalf("stream has %d events after another stream's append, want 5", n)
	}
	// An unknown stream has no events and is no error.
	if got := mustLoad(t, s, newStream(), 0); len(got) != 0 {
		t.Fatalf("unknown stream: %d events", len(got))
	}
}

func testLoadFrom(t *testing.T, h Harness, _ Features) {
	s := h.Store
	stream := newStream()
	all := evs(1, 5)
	mustAppend(t, s, stream, 0, all[:2]...)
	mustAppend(t, s, stream, 2, all[2:]...)
	for _, tc := range []struct {
		from int64
		want int
	}{{-1, 5}, {0, 5}, {1, 5}, {2, 4}, {5, 1}, {6, 0}, {100, 0}} {
		got := mustLoad(t, s, stream, tc.from)
		if len(got) != tc.want {
			t.Fatalf("load from %d: %d events, want %d", tc.from, len(got), tc.want)
		}
		for i, e := range got {
			v := int64(5-tc.want+i) + 1
			sameEvent(t, e, all[v-1], stream, v)
		}
	}
}

func wantConflict(t *testing.T, err error, stream string, expected, actual int64) {
	t.Helper()
	var ce *eventstore.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a *ConflictError", err)
	}
	if ce.StreamID != stream || ce.Expected != expected || ce.Actual != actual {
		t.Fatalf("conflict %+v, want stream %s expected %d actual %d", *ce, stream, expected, actual)
	}
	if domain.CodeOf(err) != domain.PreconditionFailed {
		t.Fatalf("conflict has code %q", domain.CodeOf(err))
	}
}

func testConflicts(t *testing.T, h Harness, _ Features) {
	s := h.Store
	ctx := ctxT(t)
	stream := newStream()
	base := evs(1, 3)
	mustAppend(t, s, stream, 0, base...)
	for _, expected := range []int64{0, 1, 2, 4, 50} {
		_, err := s.Append(ctx, stream, expected, ev(100))
		wantConflict(t, err, stream, expected, 3)
	}
	// A new stream has version 0.
	fresh := newStream()
	_, err := s.Append(ctx, fresh, 1, ev(1))
	wantConflict(t, err, fresh, 1, 0)
	if got := mustLoad(t, s, fresh, 0); len(got) != 0 {
		t.Fatalf("conflicting append wrote %d events", len(got))
	}
	checkStream(t, s, stream, base)

	// Two writers that both loaded version 3: the second loses and learns
	// the version the first wrote.
	a, b := evs(10, 2), evs(20, 1)
	mustAppend(t, s, stream, 3, a...)
	_, err = s.Append(ctx, stream, 3, b...)
	wantConflict(t, err, stream, 3, 5)
	// It reloads and retries at the right version.
	mustAppend(t, s, stream, 5, b...)
	checkStream(t, s, stream, append(append(base, a...), b...))
}

func testConflictRace(t *testing.T, h Harness, _ Features) {
	s := h.Store
	ctx := ctxT(t)
	stream := newStream()
	const writers, rounds = 8, 10
	var version int64
	var want []eventstore.Event
	for round := 0; round < rounds; round++ {
		type outcome struct {
			events []eventstore.Event
			res    eventstore.Result
			err    error
		}
		out := make([]outcome, writers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range writers {
			out[w].events = evs(round*100+w*10, 1+w%3)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				out[w].res, out[w].err = s.Append(ctx, stream, version, out[w].events...)
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for w, o := range out {
			if o.err == nil {
				if winner >= 0 {
					t.Fatalf("round %d: writers %d and %d both appended at version %d", round, winner, w, version)
				}
				winner = w
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer won: %v", round, out[0].err)
		}
		newVersion := version + int64(len(out[winner].events))
		if out[winner].res.Version != newVersion {
			t.Fatalf("round %d: winner got version %d, want %d", round, out[winner].res.Version, newVersion)
		}
		for w, o := range out {
			if w != winner {
				wantConflict(t, o.err, stream, version, newVersion)
			}
		}
		want = append(want, out[winner].events...)
		version = newVersion
	}
	checkStream(t, s, stream, want)
}

func testAtomicity(t *testing.T, h Harness, f Features) {
	s := h.Store
	ctx := ctxT(t)
	stream := newStream()
	batch := evs(1, 10)
	mustAppend(t, s, stream, 0, batch...)
	checkStream(t, s, stream, batch)
	// A conflicting multi-event append writes none of its events.
	_, err := s.Append(ctx, stream, 5, evs(20, 4)...)
	wantConflict(t, err, stream, 5, 10)
	// An invalid event anywhere in an append rejects the whole append.
	bad := evs(30, 3)
	bad[2].Type = ""
	if _, err := s.Append(ctx, stream, 10, bad...); domain.CodeOf(err) != domain.Invalid {
		t.Fatalf("append with an invalid event: %v, want an invalid error", err)
	}
	checkStream(t, s, stream, batch)
	if f.GlobalFeed {
		got := mustLoad(t, s, stream, 0)
		for i := 1; i < len(got); i++ {
			if got[i].Position != got[i-1].Position+1 {
				t.Fatalf("one append's events are not contiguous in the feed: %d then %d", got[i-1].Position, got[i].Position)
			}
		}
	}
}

func testInvalid(t *testing.T, h Harness, f Features) {
	s := h.Store
	ctx := ctxT(t)
	stream := newStream()
	noID := ev(1)
	noID.EventID = ""
	noType := ev(1)
	noType.Type = ""
	for _, tc := range []struct {
		name     string
		stream   string
		expected int64
		events   []eventstore.Event
	}{
		{"empty stream ID", "", 0, evs(1, 1)},
		{"no events", stream, 0, nil},
		{"negative expected version", stream, -1, evs(1, 1)},
		{"event without ID", stream, 0, []eventstore.Event{noID}},
		{"event without type", stream, 0, []eventstore.Event{noType}},
	} {
		_, err := s.Append(ctx, tc.stream, tc.expected, tc.events...)
		if err == nil || domain.CodeOf(err) != domain.Invalid {
			t.Errorf("%s: got %v, want an invalid error", tc.name, err)
		}
		_, err = s.AppendIdempotent(ctx, "key-"+tc.name+stream, tc.stream, tc.expected, tc.events...)
		if err == nil || domain.CodeOf(err) != domain.Invalid {
			t.Errorf("%s (idempotent): got %v, want an invalid error", tc.name, err)
		}
	}
	if _, err := s.AppendIdempotent(ctx, "", stream, 0, ev(1)); domain.CodeOf(err) != domain.Invalid {
		t.Errorf("empty idempotency key: got %v, want an invalid error", err)
	}
	if got := mustLoad(t, s, stream, 0); len(got) != 0 {
		t.Fatalf("invalid appends wrote %d events", len(got))
	}
	if feed, ok := s.(eventstore.Feed); ok && f.GlobalFeed {
		if head, err := feed.Head(ctx); err != nil || head != 0 {
			t.Fatalf("feed head after invalid appends: %d, %v", head, err)
		}
	}
	// The key of a rejected append was not consumed.
	mustIdem(t, s, "key-no events"+stream, stream, 0, false, 1, ev(1))
}

func testCancelled(t *testing.T, h Harness, _ Features) {
	s := h.Store
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stream := newStream()
	if _, err := s.Append(ctx, stream, 0, ev(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("append with a cancelled context: %v, want context.Canceled", err)
	}
	if got := mustLoad(t, s, stream, 0); len(got) != 0 {
		t.Fatalf("cancelled append wrote %d events", len(got))
	}
}

func mustIdem(t *testing.T, s eventstore.Store, key, stream string, expected int64, dup bool, version int64, events ...eventstore.Event) eventstore.Result {
	t.Helper()
	res, err := s.AppendIdempotent(ctxT(t), key, stream, expected, events...)
	if err != nil {
		t.Fatalf("idempotent append %s: %v", key, err)
	}
	if res.Duplicate != dup || res.Version != version {
		t.Fatalf("idempotent append %s: %+v, want duplicate=%v version %d", key, res, dup, version)
	}
	return res
}

func testIdempotency(t *testing.T, h Harness, _ Features) {
	s := h.Store
	ctx := ctxT(t)
	stream, other := newStream(), newStream()
	key := "intake-" + stream
	first := evs(1, 2)
	res := mustIdem(t, s, key, stream, 0, false, 2, first...)
	if res.StreamID != stream {
		t.Fatalf("result stream %q, want %q", res.StreamID, stream)
	}
	// The same key again: the original result, nothing appended, whatever
	// the stream, the expected version and the events say now.
	for _, tc := range []struct {
		stream   string
		expected int64
	}{{stream, 0}, {stream, 2}, {other, 0}, {other, 7}} {
		dup := mustIdem(t, s, key, tc.stream, tc.expected, true, 2, ev(50))
		if dup.StreamID != stream {
			t.Fatalf("duplicate result stream %q, want the original %q", dup.StreamID, stream)
		}
	}
	checkStream(t, s, stream, first)
	if got := mustLoad(t, s, other, 0); len(got) != 0 {
		t.Fatalf("duplicate key appended %d events to another stream", len(got))
	}
	// Plain appends and other keys carry on normally.
	mustAppend(t, s, stream, 2, ev(3))
	mustIdem(t, s, "intake2-"+stream, stream, 3, false, 4, ev(4))
	// A key whose append conflicted was not consumed.
	k3 := "intake3-" + stream
	_, err := s.AppendIdempotent(ctx, k3, stream, 1, ev(5))
	wantConflict(t, err, stream, 1, 4)
	mustIdem(t, s, k3, stream, 4, false, 5, ev(5))
	mustIdem(t, s, k3, stream, 4, true, 5, ev(5))
	if n := len(mustLoad(t, s, stream, 0)); n != 5 {
		t.Fatalf("stream has %d events, want 5", n)
	}
}

func testIdempotencyRace(t *testing.T, h Harness, _ Features) {
	s := h.Store
	ctx := ctxT(t)
	for round := range 5 {
		stream := newStream()
		key := fmt.Sprintf("race-%d-%s", round, stream)
		const n = 8
		results := make([]eventstore.Result, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i], errs[i] = s.AppendIdempotent(ctx, key, stream, 0, ev(i))
			}()
		}
		close(start)
		wg.Wait()
		originals := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d: writer %d: %v", round, i, errs[i])
			}
			if results[i].StreamID != stream || results[i].Version != 1 {
				t.Fatalf("round %d: writer %d: %+v", round, i, results[i])
			}
			if !results[i].Duplicate {
				originals++
			}
		}
		if originals != 1 {
			t.Fatalf("round %d: %d writers appended with the same key, want 1", round, originals)
		}
		if got := mustLoad(t, s, stream, 0); len(got) != 1 {
			t.Fatalf("round %d: stream has %d events, want 1", round, len(got))
		}
	}
}

func testPayloads(t *testing.T, h Harness, _ Features) {
	s := h.Store
	stream := newStream()
	large := ev(1)
	large.Data = json.RawMessage(`{"blob":"` + strings.Repeat("0123456789abcdef", 300*1024/16) + `"}`)
	uni := ev(2)
	uni.Data = json.RawMessage(`{"customer_name":"Zoë Ñúñez 李小龍 ✓","note":"emoji 🚀🧾 and \u00e9scapes \"quoted\" \\ back"}`)
	uni.Metadata = eventstore.Metadata{CorrelationID: "corrélation-✓", CausationID: "因果", RequestID: "req-🚀",
		TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}
	uni.Type = "Tested"
	emptyBody := ev(3)
	emptyBody.Data = json.RawMessage(`{}`)
	mustAppend(t, s, stream, 0, large, uni, emptyBody)
	checkStream(t, s, stream, []eventstore.Event{large, uni, emptyBody})
	// A non-ASCII stream ID.
	uniStream := "order-ünïcødé-" + newStream()
	mustAppend(t, s, uniStream, 0, uni)
	checkStream(t, s, uniStream, []eventstore.Event{uni})
}

func testReopen(t *testing.T, h Harness, f Features) {
	s := h.Store
	ctx := ctxT(t)
	streams := []string{newStream(), newStream(), newStream()}
	want := map[string][]eventstore.Event{}
	for i, stream := range streams {
		e := evs(i*10, i+1)
		mustAppend(t, s, stream, 0, e...)
		want[stream] = e
	}
	key := "reopen-" + streams[0]
	mustIdem(t, s, key, streams[0], 1, false, 2, ev(99))
	want[streams[0]] = append(want[streams[0]], mustLoad(t, s, streams[0], 2)...)
	var head uint64
	if f.GlobalFeed {
		head = mustHead(t, s)
	}

	s = h.Reopen(t)
	for _, stream := range streams {
		checkStream(t, s, stream, want[stream])
	}
	// Heads survive: a stale expected version conflicts, the right one works.
	_, err := s.Append(ctx, streams[1], 0, ev(5))
	wantConflict(t, err, streams[1], 0, 2)
	mustAppend(t, s, streams[1], 2, ev(5))
	mustIdem(t, s, key, streams[2], 0, true, 2, ev(6))
	if f.GlobalFeed {
		if got := mustHead(t, s); got != head+1 {
			t.Fatalf("feed head after reopen and one append: %d, want %d", got, head+1)
		}
		checkWholeFeed(t, s)
	}
}

func mustHead(t *testing.T, s eventstore.Store) uint64 {
	t.Helper()
	head, err := s.(eventstore.Feed).Head(ctxT(t))
	if err != nil {
		t.Fatalf("head: %v", err)
	}
	return head
}

// checkWholeFeed reads the feed from the start and checks positions 1..head
// without a gap, each event equal to the one Load returns.
func checkWholeFeed(t *testing.T, s eventstore.Store) []eventstore.Event {
	t.Helper()
	ctx := ctxT(t)
	feed := s.(eventstore.Feed)
	head := mustHead(t, s)
	var all []eventstore.Event
	for after := uint64(0); after < head; {
		page, err := feed.ReadFeed(ctx, after, 7)
		if err != nil {
			t.Fatalf("read feed after %d: %v", after, err)
		}
		if len(page) == 0 || len(page) > 7 {
			t.Fatalf("read feed after %d (head %d): %d events", after, head, len(page))
		}
		for _, e := range page {
			after++
			if e.Position != after {
				t.Fatalf("feed position %d where %d was due", e.Position, after)
			}
			all = append(all, e)
		}
	}
	byStream := map[string][]eventstore.Event{}
	for _, e := range all {
		if len(byStream[e.StreamID]) == 0 {
			byStream[e.StreamID] = mustLoad(t, s, e.StreamID, 0)
		}
		loaded := byStream[e.StreamID]
		if e.Version < 1 || e.Version > int64(len(loaded)) {
			t.Fatalf("feed event %s v%d: stream has %d events", e.StreamID, e.Version, len(loaded))
		}
		sameEvent(t, e, loaded[e.Version-1], e.StreamID, e.Version)
		if loaded[e.Version-1].Position != e.Position {
			t.Fatalf("event %s v%d: position %d in the feed, %d on load", e.StreamID, e.Version, e.Position, loaded[e.Version-1].Position)
		}
	}
	n := 0
	for _, evs := range byStream {
		n += len(evs)
	}
	if n != len(all) {
		t.Fatalf("streams hold %d events, feed %d", n, len(all))
	}
	return all
}

func testFeed(t *testing.T, h Harness, _ Features) {
	s := h.Store
	ctx := ctxT(t)
	feed := s.(eventstore.Feed)
	if head := mustHead(t, s); head != 0 {
		t.Fatalf("empty store head %d", head)
	}
	if page, err := feed.ReadFeed(ctx, 0, 10); err != nil || len(page) != 0 {
		t.Fatalf("empty feed: %d events, %v", len(page), err)
	}
	// WaitFeed returns when its context ends on an idle feed.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	err := feed.WaitFeed(short, 0)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait on an idle feed: %v, want the context's error", err)
	}
	// WaitFeed wakes on a commit.
	woke := make(chan error, 1)
	go func() { woke <- feed.WaitFeed(ctx, 0) }()
	a, b := newStream(), newStream()
	mustAppend(t, s, a, 0, evs(1, 2)...)
	if err := <-woke; err != nil {
		t.Fatalf("wait feed: %v", err)
	}
	mustAppend(t, s, b, 0, ev(3))
	mustAppend(t, s, a, 2, ev(4))
	if err := feed.WaitFeed(ctx, 3); err != nil {
		t.Fatalf("wait feed below head: %v", err)
	}
	all := checkWholeFeed(t, s)
	order := []struct {
		stream  string
		version int64
	}{{a, 1}, {a, 2}, {b, 1}, {a, 3}}
	if len(all) != len(order) {
		t.Fatalf("feed has %d events, want %d", len(all), len(order))
	}
	for i, o := range order {
		if all[i].StreamID != o.stream || all[i].Version != o.version {
			t.Fatalf("feed[%d] = %s v%d, want %s v%d", i, all[i].StreamID, all[i].Version, o.stream, o.version)
		}
	}
	// Reading from the middle, and past the head.
	page, err := feed.ReadFeed(ctx, 2, 1)
	if err != nil || len(page) != 1 || page[0].Position != 3 || page[0].StreamID != b {
		t.Fatalf("read feed after 2 limit 1: %+v, %v", page, err)
	}
	if page, err := feed.ReadFeed(ctx, 4, 10); err != nil || len(page) != 0 {
		t.Fatalf("read past the head: %d events, %v", len(page), err)
	}
	if _, err := feed.ReadFeed(ctx, 0, 0); domain.CodeOf(err) != domain.Invalid {
		t.Fatalf("read feed with limit 0: %v, want an invalid error", err)
	}
}

// testFeedConcurrent has writers append to their own streams while a reader
// tails the feed: the reader must see positions 1, 2, 3... with no hole and
// each stream's versions in order, and the final feed must hold every
// acknowledged event exactly once.
func testFeedConcurrent(t *testing.T, h Harness, _ Features) {
	s := h.Store
	ctx := ctxT(t)
	feed := s.(eventstore.Feed)
	const writers, appends = 8, 30
	total := 0
	for w := range writers {
		for i := range appends {
			total += 1 + (w+i)%3
		}
	}
	readErr := make(chan error, 1)
	go func() {
		seen := map[string]int64{}
		var after uint64
		for after < uint64(total) {
			if err := feed.WaitFeed(ctx, after); err != nil {
				readErr <- err
				return
			}
			page, err := feed.ReadFeed(ctx, after, 50)
			if err != nil {
				readErr <- err
				return
			}
			for _, e := range page {
				if e.Position != after+1 {
					readErr <- fmt.Errorf("tail saw position %d after %d", e.Position, after)
					return
				}
				if e.Version != seen[e.StreamID]+1 {
					readErr <- fmt.Errorf("tail saw %s v%d after v%d", e.StreamID, e.Version, seen[e.StreamID])
					return
				}
				seen[e.StreamID] = e.Version
				after = e.Position
			}
		}
		readErr <- nil
	}()
	streams := make([]string, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		streams[w] = newStream()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var v int64
			for i := range appends {
				n := 1 + (w+i)%3
				res, err := s.Append(ctx, streams[w], v, evs(i*10, n)...)
				if err != nil {
					errs <- err
					return
				}
				v = res.Version
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	all := checkWholeFeed(t, s)
	if len(all) != total {
		t.Fatalf("feed has %d events, want %d", len(all), total)
	}
}

func testCheckpoints(t *testing.T, h Harness, _ Features) {
	s := h.Store
	ctx := ctxT(t)
	cp := s.(eventstore.Checkpoints)
	mustAppend(t, s, newStream(), 0, evs(1, 3)...)
	if pos, err := cp.Checkpoint(ctx, "projector"); err != nil || pos != 0 {
		t.Fatalf("unknown consumer: %d, %v", pos, err)
	}
	for _, p := range []uint64{2, 3, 1} {
		if err := cp.SaveCheckpoint(ctx, "projector", p); err != nil {
			t.Fatalf("save %d: %v", p, err)
		}
		if pos, err := cp.Checkpoint(ctx, "projector"); err != nil || pos != p {
			t.Fatalf("checkpoint after saving %d: %d, %v", p, pos, err)
		}
	}
	if pos, err := cp.Checkpoint(ctx, "publisher"); err != nil || pos != 0 {
		t.Fatalf("another consumer: %d, %v", pos, err)
	}
	if err := cp.SaveCheckpoint(ctx, "", 1); domain.CodeOf(err) != domain.Invalid {
		t.Fatalf("empty consumer name: %v, want an invalid error", err)
	}
}

// testCheckpointResume: a consumer handles part of the feed, saves its
// checkpoint, the store restarts, and the consumer resumes exactly after it.
func testCheckpointResume(t *testing.T, h Harness, _ Features) {
	s := h.Store
	ctx := ctxT(t)
	for range 4 {
		mustAppend(t, s, newStream(), 0, evs(1, 3)...)
	}
	const consumer = "resumer"
	page, err := s.(eventstore.Feed).ReadFeed(ctx, 0, 5)
	if err != nil || len(page) != 5 {
		t.Fatalf("read feed: %d events, %v", len(page), err)
	}
	if err := s.(eventstore.Checkpoints).SaveCheckpoint(ctx, consumer, page[4].Position); err != nil {
		t.Fatalf("save checkpoint: %v", err)
	}
	s = h.Reopen(t)
	pos, err := s.(eventstore.Checkpoints).Checkpoint(ctx, consumer)
	if err != nil || pos != 5 {
		t.Fatalf("checkpoint after reopen: %d, %v", pos, err)
	}
	rest, err := s.(eventstore.Feed).ReadFeed(ctx, pos, 100)
	if err != nil || len(rest) != 7 || rest[0].Position != 6 || rest[6].Position != 12 {
		t.Fatalf("resume after %d: %d events, %v", pos, len(rest), err)
	}
}
