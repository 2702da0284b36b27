package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/services/sim"
)

// cancelled is the answer to one cancel: the order, or the error.
type cancelled struct {
	order api.Order
	err   error
}

func (c cancelled) String() string {
	if c.err != nil {
		return c.err.Error()
	}
	return fmt.Sprintf("200 %+v", c.order.View)
}

// cancelAll sends n cancels of id at once, each with the If-Match header
// ifMatch(i) ("" for none), and returns the answers in request order.
func cancelAll(t *testing.T, c *api.Client, id string, n int, ifMatch func(i int) string) []cancelled {
	t.Helper()
	out := make([]cancelled, n)
	var ready, wg sync.WaitGroup
	gate := make(chan struct{})
	ready.Add(n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready.Done()
			<-gate // release every request together
			o, err := c.Cancel(context.Background(), id, "changed my mind", api.WithIfMatch(ifMatch(i)))
			out[i] = cancelled{order: o, err: err}
		}()
	}
	ready.Wait()
	close(gate)
	wg.Wait()
	for i, r := range out {
		if r.err != nil && statusOf(r.err, http.StatusOK) == 0 {
			t.Fatalf("cancel %d: %v", i, r.err)
		}
	}
	return out
}

// checkCancelledOnce checks that id's stream is Placed then one Cancelled.
func checkCancelledOnce(t *testing.T, s *stack, id string) {
	t.Helper()
	evs, err := s.store.Load(context.Background(), id, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Type != order.TypePlaced || evs[1].Type != order.TypeCancelled || evs[1].Version != 2 {
		var types []string
		for _, e := range evs {
			types = append(types, fmt.Sprintf("%d:%s", e.Version, e.Type))
		}
		t.Fatalf("stream %s is %v, want [1:OrderPlaced 2:OrderCancelled]", id, types)
	}
	rep := checkLog(t, s.store, s.codec)
	s.waitProjected(t)
	checkViews(t, s.views, s.codec, rep)
}

// Fifty cancels carrying the current ETag race: exactly one wins, every
// other one is a clean 412, and the stream holds one cancellation.
func TestConcurrentCancelsWithIfMatchOneWins(t *testing.T) {
	t.Parallel()
	s := newStack(t, t.TempDir(), stackConfig{})
	id := place(t, s.api, "race")
	head := s.head(t)

	answers := cancelAll(t, s.api, id, 50, func(int) string { return `"1"` })
	var ok, pre int
	for i, r := range answers {
		switch {
		case statusOf(r.err, http.StatusOK) == http.StatusOK:
			ok++
			if r.order.ETag != `"2"` {
				t.Errorf("cancel %d: 200 with ETag %s, want \"2\"", i, r.order.ETag)
			}
		case statusOf(r.err, http.StatusOK) == http.StatusPreconditionFailed && isProblem(r.err):
			pre++
		default:
			t.Errorf("cancel %d: %s", i, r)
		}
	}
	if ok != 1 || pre != 49 {
		t.Errorf("%d succeeded and %d got 412; want exactly 1 and 49", ok, pre)
	}
	if got := s.head(t); got != head+1 {
		t.Errorf("the feed grew by %d events, want 1", got-head)
	}
	checkCancelledOnce(t, s, id)
}

// A mix of stale, fresh and absent If-Match headers: stale ones always fail
// with 412, at most one fresh one succeeds, those without If-Match succeed
// (idempotently) or report a conflict, and exactly one Cancelled is stored.
func TestConcurrentCancelsMixedIfMatch(t *testing.T) {
	t.Parallel()
	s := newStack(t, t.TempDir(), stackConfig{})
	id := place(t, s.api, "mixed")
	head := s.head(t)

	kind := func(i int) string { return [...]string{"stale", "fresh", "none"}[i%3] }
	answers := cancelAll(t, s.api, id, 50, func(i int) string {
		switch kind(i) {
		case "stale":
			return `"7"`
		case "fresh":
			return `"1"`
		}
		return ""
	})
	freshWins := 0
	for i, r := range answers {
		status := statusOf(r.err, http.StatusOK)
		switch k := kind(i); {
		case status >= 500:
			t.Errorf("cancel %d (%s If-Match): %s", i, k, r)
		case k == "stale" && status != http.StatusPreconditionFailed:
			t.Errorf("cancel %d with a stale If-Match: %s, want 412", i, r)
		case k == "fresh" && status == http.StatusOK:
			freshWins++
		case k == "fresh" && status != http.StatusPreconditionFailed:
			t.Errorf("cancel %d with a fresh If-Match: %s, want 200 or 412", i, r)
		case k == "none" && status != http.StatusOK && status != http.StatusConflict:
			t.Errorf("cancel %d without If-Match: %s, want 200 or 409", i, r)
		}
		if status == http.StatusOK {
			if v := r.order; v.Status != order.StatusCancelled || v.Version != 2 {
				t.Errorf("cancel %d: 200 with %s, want the cancelled order at version 2", i, r)
			}
		} else if !isProblem(r.err) {
			t.Errorf("cancel %d: %d without a problem+json body: %s", i, status, r)
		}
	}
	if freshWins > 1 {
		t.Errorf("%d cancels with the fresh ETag succeeded, want at most 1", freshWins)
	}
	if got := s.head(t); got != head+1 {
		t.Errorf("the feed grew by %d events, want 1", got-head)
	}
	checkCancelledOnce(t, s, id)
}

// Many writers on many orders while the saga processes them: clients place
// orders and fire concurrent cancels at each while the processors charge,
// reserve and complete it. Every order ends with exactly one terminal event,
// every stream is gap-free, cancels answer 200 or a clean 409/412, and the
// read model equals the log. Run under -race in CI.
func TestManyWritersManyOrders(t *testing.T) {
	t.Parallel()
	simulator, err := sim.New(sim.Config{Latency: time.Millisecond, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, t.TempDir(), stackConfig{Pipeline: true, Payment: simulator, Inventory: simulator, Workers: 4})
	const writers, perWriter, cancels = 6, 8, 5
	if testing.Short() {
		t.Log("short: fewer orders")
	}
	var mu sync.Mutex
	var ids []string
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range perWriter {
				v, err := s.api.Place(context.Background(), placeRequest(fmt.Sprintf("writer-%d-%d", w, n), 1+n))
				if err != nil {
					t.Errorf("place: %v", err)
					return
				}
				mu.Lock()
				ids = append(ids, v.OrderID)
				mu.Unlock()
				var cw sync.WaitGroup
				for c := range cancels {
					cw.Add(1)
					go func() {
						defer cw.Done()
						// Spread the cancels over the saga's steps.
						time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
						ifMatch := ""
						if c%2 == 1 {
							ifMatch = `"1"`
						}
						_, err := s.api.Cancel(context.Background(), v.OrderID, "", api.WithIfMatch(ifMatch))
						status := statusOf(err, http.StatusOK)
						if status == 0 {
							t.Errorf("cancel: %v", err)
							return
						}
						mu.Lock()
						statuses[status]++
						mu.Unlock()
						if status != http.StatusOK && !isProblem(err) {
							t.Errorf("cancel: %v without a problem body", err)
						}
					}()
				}
				cw.Wait()
			}
		}()
	}
	wg.Wait()
	for st := range statuses {
		if st != http.StatusOK && st != http.StatusConflict && st != http.StatusPreconditionFailed {
			t.Errorf("cancels answered %d (%d times); want only 200, 409 or 412", st, statuses[st])
		}
	}
	t.Logf("cancel answers: %v", statuses)
	if t.Failed() {
		return
	}
	waitFor(t, "every order to finish", func() (bool, string) {
		for _, id := range ids {
			evs, err := s.store.Load(context.Background(), id, 1)
			if _, done := settled(s.codec, evs); err != nil || !done {
				return false, "order " + id + " not finished"
			}
		}
		return true, ""
	})
	rep := checkLog(t, s.store, s.codec)
	if len(rep.streams) != len(ids) {
		t.Errorf("the log holds %d orders, %d were placed", len(rep.streams), len(ids))
	}
	ends := map[string]int{}
	for _, id := range ids {
		e, ok := rep.terminal[id]
		if !ok {
			t.Errorf("order %s has no terminal event", id)
		}
		ends[e.Type]++
	}
	t.Logf("outcomes: %v", ends)
	s.waitProjected(t)
	checkViews(t, s.views, s.codec, rep)
}
