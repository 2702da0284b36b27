package pebblestore_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// TestReadFeedInto reads the whole feed page by page into the memory of
// the page before, with pages of every size from larger to smaller records,
// and checks each page against ReadFeed.
func TestReadFeedInto(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	ctx := t.Context()
	for i := range 60 {
		ev := event(i)
		// Bodies of varied sizes, so a reused buffer sometimes has to grow.
		ev.Data = []byte(fmt.Sprintf(`{"n":%d,"pad":"%*s"}`, i, (i*37)%300, ""))
		if _, err := s.Append(ctx, fmt.Sprintf("stream-%d", i%7), int64(i/7), ev); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	var (
		events []eventstore.Event
		raw    []byte
	)
	for _, limit := range []int{1, 7, 25, 60, 100} {
		for after := uint64(0); after < 60; after += uint64(limit) {
			want, err := s.ReadFeed(ctx, after, limit)
			if err != nil {
				t.Fatalf("read feed after %d: %v", after, err)
			}
			var got []eventstore.Event
			got, raw, err = s.ReadFeedInto(ctx, after, limit, events, raw)
			if err != nil {
				t.Fatalf("read feed into after %d: %v", after, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("limit %d after %d: ReadFeedInto differs from ReadFeed:\n got %+v\nwant %+v", limit, after, got, want)
			}
			events = got
		}
	}
	got, _, err := s.ReadFeedInto(ctx, 60, 10, events, raw)
	if err != nil || len(got) != 0 {
		t.Fatalf("read feed into at the head: %d events, %v", len(got), err)
	}
	if _, _, err := s.ReadFeedInto(ctx, 0, 0, events, raw); domain.CodeOf(err) != domain.Invalid {
		t.Fatalf("limit 0: %v, want an Invalid error", err)
	}
}

// TestReadFeedIntoStringsSurviveReuse checks ReadFeedInto's aliasing rule:
// the strings of a page are kept while its memory is overwritten (every
// byte of the buffer, then another page read into it), and none of them
// changes. Only Data may point into the reused buffer.
func TestReadFeedIntoStringsSurviveReuse(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	ctx := t.Context()
	for i := range 40 {
		ev := event(i)
		ev.Metadata = eventstore.Metadata{CorrelationID: fmt.Sprintf("corr-%d", i), CausationID: fmt.Sprintf("cause-%d", i), RequestID: fmt.Sprintf("req-%d", i)}
		if _, err := s.Append(ctx, fmt.Sprintf("stream-%d", i%5), int64(i/5), ev); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	type strs struct{ stream, id, typ, corr, cause, req string }
	fields := func(evs []eventstore.Event) []strs {
		out := make([]strs, len(evs))
		for i, e := range evs {
			out[i] = strs{e.StreamID, e.EventID, e.Type, e.Metadata.CorrelationID, e.Metadata.CausationID, e.Metadata.RequestID}
		}
		return out
	}
	want, err := s.ReadFeed(ctx, 0, 20)
	if err != nil {
		t.Fatal(err)
	}
	page, raw, err := s.ReadFeedInto(ctx, 0, 20, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	kept := fields(page) // the strings themselves, not copies of their bytes
	for i := range raw[:cap(raw)] {
		raw[:cap(raw)][i] = 0xFF
	}
	if _, _, err := s.ReadFeedInto(ctx, 20, 20, page, raw); err != nil {
		t.Fatal(err)
	}
	if got := fields(want); !reflect.DeepEqual(kept, got) {
		t.Fatalf("strings kept from a page changed when its memory was reused:\n got %+v\nwant %+v", kept, got)
	}
}
