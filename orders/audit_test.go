package orders_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/orders"
)

func rawEvents(n int) []eventstore.Event {
	ids := domain.NewULIDSource(nil)
	out := make([]eventstore.Event, n)
	for i := range out {
		now := time.Now().UTC()
		out[i] = eventstore.Event{EventID: ids(now), Type: "Tested", SchemaVersion: 1, OccurredAt: now, Data: json.RawMessage(`{"n":1}`)}
	}
	return out
}

// TestVerifyHistoryUsesStoredBytes: an event stored in an old schema is
// shown upcast, and its chain, verified from what is stored, holds.
func TestVerifyHistoryUsesStoredBytes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.given(eventstore.Metadata{}, placed)
	old := eventstore.Event{EventID: domain.NewULIDSource(nil)(f.at), Type: order.TypePaymentSucceeded, SchemaVersion: 1,
		OccurredAt: f.at, Data: json.RawMessage(`{"payment_id":"p-1","amount":"12.34"}`)}
	if _, err := f.store.Append(context.Background(), id, 1, old); err != nil {
		t.Fatal(err)
	}
	h, err := f.svc.VerifyHistory(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(h.Events[1].Data), `"amount":1234`) {
		t.Fatalf("not upcast: %s", h.Events[1].Data)
	}
	if h.Chain == nil || !h.Chain.Holds {
		t.Fatalf("chain %+v, want holds", h.Chain)
	}
	if h.Events[1].PrevHash != h.Events[0].Hash || h.Events[1].Hash.IsZero() {
		t.Fatalf("history carries no chain: %+v", h.Events)
	}
	if plain, _ := f.svc.History(context.Background(), id); plain.Chain != nil {
		t.Fatalf("History verified: %+v", plain.Chain)
	}
}

// TestAuditAgainstDigest: a digest taken earlier finds a stream gone, one
// cut short and one rewritten, by name; events appended since are fine.
func TestAuditAgainstDigest(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	streams := []string{"A", "B", "C"}
	for _, s := range streams {
		if _, err := f.store.Append(ctx, s, 0, rawEvents(3)...); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := f.svc.Audit(ctx, f.store, orders.AuditOptions{Workers: 2})
	if err != nil || !rep.OK() || rep.Streams != 3 || rep.Events != 9 {
		t.Fatalf("audit: %+v, %v", rep, err)
	}
	d, err := f.svc.TakeDigest(ctx, f.store, "embedded")
	if err != nil {
		t.Fatal(err)
	}
	if d.Streams != 3 || d.Events != 9 || d.Feed == nil || d.Feed.Position != 9 || orders.CheckDigest(&d) != nil {
		t.Fatalf("digest %+v", d)
	}
	if _, err := f.store.Append(ctx, "A", 3, rawEvents(2)...); err != nil {
		t.Fatal(err)
	}
	var calls int
	rep, err = f.svc.Audit(ctx, f.store, orders.AuditOptions{Digest: &d, Progress: func(done, total int) { calls++ }})
	if err != nil || !rep.OK() || !rep.DigestChecked || calls != 3 {
		t.Fatalf("audit after appends: %+v, %v (%d progress calls)", rep, err, calls)
	}

	// A digest of a log that held more: what it says is gone shows.
	longer := d
	longer.Heads = append([]eventstore.Head(nil), d.Heads...)
	for i := range longer.Heads {
		switch longer.Heads[i].StreamID {
		case "B":
			longer.Heads[i].Version = 4 // B had a 4th event
		case "C":
			longer.Heads[i].Hash[0] ^= 1 // C's head was another event
		}
	}
	longer.Heads = append(longer.Heads, eventstore.Head{StreamID: "0-gone", Version: 2, Hash: eventstore.Hash{7}})
	if orders.CheckDigest(&longer) == nil {
		t.Fatal("a changed digest passed CheckDigest")
	}
	longer.Root = eventstore.HeadsRoot(longer.Heads)
	rep, err = f.svc.Audit(ctx, f.store, orders.AuditOptions{Digest: &longer})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		stream  string
		version int64
		reason  string
	}{{"0-gone", 1, "whole stream is gone"}, {"B", 4, "cut off"}, {"C", 3, "rewritten"}}
	if len(rep.Breaks) != len(want) {
		t.Fatalf("breaks %+v, want %v", rep.Breaks, want)
	}
	for i, w := range want {
		b := rep.Breaks[i]
		if b.StreamID != w.stream || b.Version != w.version || !strings.Contains(b.Reason, w.reason) {
			t.Errorf("break %d: %+v, want %v", i, b, w)
		}
	}

	// A feed digest that differs shows as a feed break.
	feed := d
	fd := *d.Feed
	fd.Digest[0] ^= 1
	feed.Feed = &fd
	if rep, err := f.svc.Audit(ctx, f.store, orders.AuditOptions{Digest: &feed}); err != nil || rep.Feed == nil || rep.OK() {
		t.Fatalf("changed feed digest: %+v, %v", rep, err)
	}
}
