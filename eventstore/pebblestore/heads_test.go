package pebblestore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
)

// TestNewStreamRacesWithForgottenHeads: writers race to create the same
// streams while the sequencer keeps forgetting the heads it knows (a
// cache of one head), so most creations find no head in memory and must
// read it. Each stream still gets exactly one version 1, and the losers
// get a conflict.
func TestNewStreamRacesWithForgottenHeads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, cache := range []int{1, 1_000_000} {
		t.Run(fmt.Sprintf("cache=%d", cache), func(t *testing.T) {
			t.Parallel()
			s, err := pebblestore.Open(t.TempDir(), pebblestore.WithPebbleOptions(smallPebble), pebblestore.WithHeadCache(cache))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			const streams, racers = 200, 6
			var wg sync.WaitGroup
			wins := make([][racers]bool, streams)
			for w := range racers {
				wg.Go(func() {
					for i := range streams {
						_, err := s.Append(ctx, fmt.Sprintf("s%d", i), 0, event(w))
						var conflict *eventstore.ConflictError
						switch {
						case err == nil:
							wins[i][w] = true
						case errors.As(err, &conflict):
						default:
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			for i := range streams {
				n := 0
				for _, won := range wins[i] {
					if won {
						n++
					}
				}
				evs, err := s.Load(ctx, fmt.Sprintf("s%d", i), 0)
				if err != nil {
					t.Fatal(err)
				}
				if n != 1 || len(evs) != 1 {
					t.Fatalf("stream s%d: %d winners, %d events; want 1 and 1", i, n, len(evs))
				}
			}
		})
	}
}
