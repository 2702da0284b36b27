package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/app"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/internal/ledgertest"
	"github.com/orderledger/orderledger/messaging/pebblequeue"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/pebbleviews"
)

// load is the clients of the crash test: what they were told and what they
// do not know.
type load struct {
	mu sync.Mutex
	// accepted maps an order ID that got a 201 to its idempotency key.
	accepted map[string]string
	// unknown holds the idempotency keys of placements whose answer was
	// lost to a kill: they may or may not have been stored.
	unknown []string
	// bad collects answers no client should ever get.
	bad []string
	seq int
}

func (l *load) nextKey(client int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	return fmt.Sprintf("crash-%d-%d", client, l.seq)
}

func (l *load) badf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bad = append(l.bad, fmt.Sprintf(format, args...))
}

// run places orders (and cancels some) through c until ctx ends. Calls
// are not bound to ctx: one in flight when the server is killed fails as
// a real client's would.
func (l *load) run(ctx context.Context, c *api.Client, client int, rng *rand.Rand) {
	for ctx.Err() == nil {
		// A steady trickle rather than a flood: enough to be killed
		// mid-write at every step, few enough to drain quickly.
		time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
		key := l.nextKey(client)
		v, err := c.Place(context.Background(), placeRequest(key, 1+rng.IntN(5)), api.WithIdempotencyKey(key))
		switch {
		case errors.Is(err, api.ErrUnexpectedAnswer):
			l.badf("POST /orders: %s", truncate(err.Error(), 200))
			continue
		case err != nil && api.StatusOf(err) == 0:
			l.mu.Lock()
			l.unknown = append(l.unknown, key)
			l.mu.Unlock()
			return // the server is gone
		case err != nil:
			l.badf("POST /orders: %s", truncate(err.Error(), 200))
			continue
		}
		l.mu.Lock()
		l.accepted[v.OrderID] = key
		l.mu.Unlock()
		if rng.IntN(4) == 0 { // race the saga with a cancel
			_, err := c.Cancel(context.Background(), v.OrderID, "")
			if status := statusOf(err, http.StatusOK); status == 0 && !errors.Is(err, api.ErrUnexpectedAnswer) {
				return
			} else if status != http.StatusOK && status != http.StatusConflict {
				l.badf("cancel: %s", truncate(err.Error(), 200))
			}
		}
	}
}

// The real binary under load, killed with SIGKILL at random moments and
// restarted, several times. Afterwards: every order that got a 201 exists
// and is terminal; no stream has a gap or a duplicate; every order has one
// terminal event; a retried placement never doubled an order; the read
// model equals a rebuild from the log; every terminal event was notified;
// and no message is left in any queue.
func TestCrashUnderLoad(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := filepath.Join(t.TempDir(), "data")
	rc := newReceiver(t)
	// Declines (final, not retried) but no transient payment errors by
	// default: the broker forgives one crash-interrupted receive per message
	// (TestCrashDuringLastAttemptStrandsNoOrder), so with retries in play two
	// kills landing on one message's attempts could still, rarely and by
	// design, dead-letter it for `ledger dlq redrive`. CRASH_PAYMENT_ERROR_RATE=0.2
	// adds transient errors.
	errRate := os.Getenv("CRASH_PAYMENT_ERROR_RATE")
	if errRate == "" {
		errRate = "0"
	}
	flags := []string{"--retry-backoff", "20ms", "--workers", "4", "--notify-webhook", rc.srv.URL + "/hook",
		"--sim-payment-error-rate", errRate, "--sim-payment-decline-rate", "0.1", "--sim-seed", fmt.Sprint(seed%1000 + 1)}
	const clients = 4
	cycles := 5
	if testing.Short() {
		cycles = 3
	}
	l := &load{accepted: map[string]string{}}
	for c := range cycles {
		p := serve(t, dir, flags...)
		pc := newClient(t, p.URL)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i := range clients {
			wg.Add(1)
			crng := rand.New(rand.NewPCG(seed, uint64(c*clients+i+1)))
			go func() {
				defer wg.Done()
				l.run(ctx, pc, i, crng)
			}()
		}
		time.Sleep(time.Duration(500+rng.IntN(2000)) * time.Millisecond)
		err := p.Signal(syscall.SIGKILL)
		cancel()
		wg.Wait()
		if err == nil || !strings.Contains(err.Error(), "signal: killed") {
			t.Fatalf("cycle %d: the server did not die of SIGKILL: %v", c, err)
		}
		l.mu.Lock()
		t.Logf("cycle %d: %d orders accepted so far, %d answers lost to kills", c, len(l.accepted), len(l.unknown))
		l.mu.Unlock()
	}
	for _, b := range l.bad {
		t.Errorf("a client got: %s", b)
	}
	if len(l.accepted) == 0 {
		t.Fatal("no order was accepted")
	}

	// The last start: retry the placements whose answer was lost (same
	// idempotency key: the order is stored once whatever happened), then let
	// everything finish.
	p := serve(t, dir, flags...)
	c := newClient(t, p.URL)
	ctx := context.Background()
	for _, key := range l.unknown {
		o, err := c.Place(ctx, placeRequest(key, 1), api.WithIdempotencyKey(key))
		switch statusOf(err, http.StatusCreated) {
		case http.StatusCreated: // stored before the kill (replayed) or now
			l.accepted[orderIDOf(t, o)] = key
		case http.StatusUnprocessableEntity: // stored before the kill with another quantity
		case 0:
			t.Fatalf("retrying placement %s: %v", key, err)
		default:
			t.Errorf("retrying placement %s: %v", key, err)
		}
	}
	terminal := map[string]string{} // order ID -> terminal event ID
	codec := orders.NewCodec()
	finished := func() (bool, string) {
		for id := range l.accepted {
			if _, ok := terminal[id]; ok {
				continue
			}
			h, err := c.History(ctx, id)
			if err != nil || len(h.Events) == 0 {
				return false, fmt.Sprintf("history of %s: %v %+v", id, err, h)
			}
			envs := make([]eventstore.Event, len(h.Events))
			for i, e := range h.Events {
				envs[i] = eventstore.Event{EventID: e.EventID, StreamID: id, Version: e.Version, Type: e.Type,
					SchemaVersion: codec.SchemaVersion(e.Type), Data: e.Data}
			}
			end, done := settled(codec, envs)
			if !done {
				return false, fmt.Sprintf("order %s is at %s", id, h.Events[len(h.Events)-1].Type)
			}
			terminal[id] = end.EventID
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for id, eid := range terminal {
			if !rc.got[id][eid] {
				return false, fmt.Sprintf("order %s finished but was not notified yet", id)
			}
		}
		if _, err := c.Ready(ctx); err != nil {
			return false, fmt.Sprintf("not ready: %v", err)
		}
		return true, ""
	}
	if ok, state := poll(finished); !ok {
		// Keep the evidence: stop the server and describe the queues.
		_ = p.Signal(syscall.SIGKILL)
		code, out, errOut := runLedger(t, "dlq", "list", "--data", dir)
		t.Logf("ledger dlq list: exit %d\n%s%s", code, out, errOut)
		if br, err := app.OpenBroker(filepath.Join(dir, "queue"), 0, 1, true); err == nil {
			for _, q := range []*pebblequeue.Queue{br.Processing, br.DLQ} {
				st, err := q.Stats(context.Background())
				t.Logf("queue %s: %+v %v", q.Name(), st, err)
			}
			br.Close()
		}
		t.Fatalf("gave up waiting for every accepted order to finish and be notified: %s", state)
	}
	// Wait for the queues to drain, then stop gracefully.
	waitFor(t, "the read model to show every order terminal", func() (bool, string) {
		page, err := c.List(ctx, projections.ListQuery{Status: order.StatusPending, Limit: 1})
		if err != nil || len(page.Items) != 0 {
			return false, fmt.Sprintf("pending orders: %v %+v", err, page.Items)
		}
		return true, ""
	})
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("graceful stop: %v\n%s", err, ledgertest.LastLines(p.Logs.String(), 30))
	}
	if strings.Contains(p.Logs.String(), `"level":"ERROR"`) {
		t.Errorf("the server logged errors:\n%s", grepLines(p.Logs.String(), `"level":"ERROR"`, 10))
	}
	t.Logf("%d orders accepted over %d kills; %d notifications received", len(l.accepted), cycles, rc.deliveries)

	verifyDataDir(t, dir, l, rc)
}

// verifyDataDir checks the stopped runtime's data directory.
func verifyDataDir(t *testing.T, dir string, l *load, rc *receiver) {
	t.Helper()
	ctx := context.Background()
	codec := orders.NewCodec()
	store, err := pebblestore.Open(filepath.Join(dir, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rep := checkLog(t, store, codec)
	for id := range l.accepted {
		if len(rep.streams[id]) == 0 {
			t.Errorf("order %s got a 201 but is not in the log", id)
		}
	}
	perKey := map[string]int{}
	for id, evs := range rep.streams {
		if _, ok := rep.terminal[id]; !ok {
			t.Errorf("order %s has no terminal event: %d events, last %s", id, len(evs), evs[len(evs)-1].Type)
		}
		var placed order.Placed
		if err := json.Unmarshal(evs[0].Data, &placed); err == nil {
			perKey[placed.CustomerName]++
		}
	}
	for key, n := range perKey {
		if n > 1 {
			t.Errorf("placement %s was stored %d times", key, n)
		}
	}
	outcomes := map[string]int{}
	for _, e := range rep.terminal {
		outcomes[e.Type]++
	}
	t.Logf("log: %d orders, %d events; outcomes %v", len(rep.streams), rep.head, outcomes)

	// The read model equals the log, and equals a rebuild from it.
	views, err := pebbleviews.Open(filepath.Join(dir, "views"))
	if err != nil {
		t.Fatal(err)
	}
	defer views.Close()
	checkViews(t, views, codec, rep)
	var ids []string
	for id := range rep.streams {
		ids = append(ids, id)
	}
	live := snapshotViews(t, views, ids)
	liveCounts, err := views.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := views.Rebuild(ctx, store, codec, pebbleviews.RebuildOptions{}); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	rebuilt := snapshotViews(t, views, ids)
	for id, v := range live {
		if !reflect.DeepEqual(v, rebuilt[id]) {
			t.Errorf("order %s: the live view differs from the rebuilt one:\n live    %+v\n rebuilt %+v", id, v, rebuilt[id])
		}
	}
	if rebuiltCounts, err := views.Counts(ctx); err != nil || !reflect.DeepEqual(liveCounts, rebuiltCounts) {
		t.Errorf("counts: live %v, rebuilt %v (%v)", liveCounts, rebuiltCounts, err)
	}

	// Every terminal order was notified.
	rc.checkNotified(t, rep)

	// No message is left in any queue.
	br, err := app.OpenBroker(filepath.Join(dir, "queue"), 0, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	for _, q := range append([]*pebblequeue.Queue{br.Processing, br.DLQ, br.Log}, br.Webhooks...) {
		st, err := q.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Visible+st.InFlight != 0 {
			t.Errorf("queue %s still holds %+v", q.Name(), st)
		}
	}
	// The CLI opens the data directory itself: release it first.
	br.Close()
	views.Close()
	store.Close()
	code, stdout, stderr := runLedger(t, "dlq", "list", "--data", dir, "--json")
	var listed struct {
		Count *int `json:"count"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &listed) != nil || listed.Count == nil || *listed.Count != 0 {
		t.Errorf("ledger dlq list: exit %d, stdout %q, stderr %q; want an empty list", code, stdout, stderr)
	}
}

func grepLines(s, substr string, n int) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && len(out) < n {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
