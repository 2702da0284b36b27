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
