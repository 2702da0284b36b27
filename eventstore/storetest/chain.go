package storetest

import (
	"sync"
	"testing"

	"github.com/orderledger/orderledger/eventstore"
)

// checkChain loads stream and checks its chain: VerifyChain holds, version
// 1 has no predecessor, and every Hash is the one an outside tool computes
// from what the caller appended (want) with eventstore.EventHash.
func checkChain(t *testing.T, s eventstore.Store, stream string, want []eventstore.Event) {
	t.Helper()
	got := mustLoad(t, s, stream, 0)
	if len(got) != len(want) {
		t.Fatalf("stream %s has %d events, want %d", stream, len(got), len(want))
	}
	if brk := eventstore.VerifyChain(stream, got); brk != nil {
		t.Fatalf("chain of %s: %v", stream, brk)
	}
	var prev eventstore.Hash
	for i := range want {
		e := want[i]
		e.StreamID, e.Version = stream, int64(i+1)
		if got[i].PrevHash != prev {
			t.Fatalf("%s v%d: prev_hash %s, want %s", stream, e.Version, got[i].PrevHash, prev)
		}
		if h := eventstore.EventHash(&e, prev); got[i].Hash != h {
			t.Fatalf("%s v%d: hash %s, want %s (recomputed from what was appended)", stream, e.Version, got[i].Hash, h)
		}
		prev = got[i].Hash
	}
	// A changed byte of data or of metadata no longer verifies.
	for _, tamper := range []func(e *eventstore.Event){
		func(e *eventstore.Event) { e.Data = append([]byte(nil), e.Data...); e.Data[len(e.Data)-2] ^= 1 },
		func(e *eventstore.Event) { e.Metadata.RequestID += "x" },
		func(e *eventstore.Event) { e.Metadata.TraceParent = "" },
		func(e *eventstore.Event) { e.OccurredAt = e.OccurredAt.Add(1) },
	} {
		bad := append([]eventstore.Event(nil), got...)
		tamper(&bad[len(bad)-1])
		if brk := eventstore.VerifyChain(stream, bad); brk == nil || brk.Version != int64(len(bad)) {
			t.Fatalf("tampered last event of %s: VerifyChain = %v, want a break at version %d", stream, brk, len(bad))
		}
	}
	if len(got) > 2 {
		cut := append(append([]eventstore.Event(nil), got[:1]...), got[2:]...)
		if brk := eventstore.VerifyChain(stream, cut); brk == nil || brk.Version != 2 {
			t.Fatalf("version 2 of %s removed: VerifyChain = %v, want a break at version 2", stream, brk)
		}
	}
}

// testChain: every append is chained by the store, whatever its shape
// (single events, several in one append, idempotent, in one commit group
// with other streams' appends, racing on one stream), and the chain goes on
// over a reopened store, whose caches are empty.
func testChain(t *testing.T, h Harness, f Features) {
	s := h.Store
	want := map[string][]eventstore.Event{}
	add := func(stream string, expected int64, e ...eventstore.Event) {
		mustAppend(t, s, stream, expected, e...)
		want[stream] = append(want[stream], e...)
	}
	one, many := newStream(), newStream()
	for v := range int64(4) {
		add(one, v, ev(int(v)))
	}
	add(many, 0, evs(1, 3)...)
	add(many, 3, ev(4))
	add(many, 4, evs(5, 5)...)
	mustIdem(t, s, "chain-"+many, many, 9, false, 10, ev(10))
	want[many] = append(want[many], mustLoad(t, s, many, 10)...)

	// Concurrent writers on distinct streams share commit groups where the
	// backend groups commits.
	const writers = 16
	streams := make([]string, writers)
	batches := make([][][]eventstore.Event, writers)
	var wg sync.WaitGroup
	for w := range writers {
		streams[w] = newStream()
		for r := range 4 {
			batches[w] = append(batches[w], evs(w*100+r*10, 1+(w+r)%3))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var v int64
			for _, b := range batches[w] {
				res, err := s.Append(ctxT(t), streams[w], v, b...)
				if err != nil {
					t.Errorf("append %s at %d: %v", streams[w], v, err)
					return
				}
				v = res.Version
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for w, stream := range streams {
		for _, b := range batches[w] {
			want[stream] = append(want[stream], b...)
		}
	}

	// Writers racing on one stream: whoever wins, the chain holds.
	race := newStream()
	add(race, 0, ev(0))
	if f.ConcurrentConflicts {
		for round := range 5 {
			version := int64(len(want[race]))
			out := make([][]eventstore.Event, 6)
			errs := make([]error, len(out))
			start := make(chan struct{})
			for w := range out {
				out[w] = evs(round*100+w*10, 1+w%2)
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[w] = s.Append(ctxT(t), race, version, out[w]...)
				}()
			}
			close(start)
			wg.Wait()
			for w, err := range errs {
				if err == nil {
					want[race] = append(want[race], out[w]...)
				}
			}
		}
	}
	for stream, w := range want {
		checkChain(t, s, stream, w)
	}

	if f.Reopen {
		s = h.Reopen(t)
		for _, stream := range []string{one, many, race} {
			e := ev(1000)
			mustAppend(t, s, stream, int64(len(want[stream])), e)
			want[stream] = append(want[stream], e)
			checkChain(t, s, stream, want[stream])
		}
	}
}
