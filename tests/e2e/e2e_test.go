// Package e2e tests the real ledger binary: it builds cmd/ledger, runs
// `ledger serve` on a temporary data directory, talks to it over HTTP like a
// shop would, stops it (gracefully and with SIGKILL), restarts it and checks
// that nothing accepted was lost.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/internal/ledgertest"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ledgertest.Cleanup()
	os.Exit(code)
}

// waitLimit bounds every wait for the server; it is a guard against a hung
// test, not a performance assertion.
const waitLimit = ledgertest.WaitLimit

// server is one running `ledger serve`, and a client of its API.
type server struct {
	*ledgertest.Proc
	t   *testing.T
	api *api.Client
}

// start runs `ledger serve` on dir with a free port and extra flags, and
// returns once it is serving.
func start(t *testing.T, dir string, flags ...string) *server {
	t.Helper()
	p := ledgertest.Serve(t, dir, append([]string{"--retry-backoff", "20ms"}, flags...)...)
	c, err := api.NewClient(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &server{Proc: p, t: t, api: c}
}

// stop sends sig and waits for the process to exit, returning its error.
func (s *server) stop(sig os.Signal) error {
	s.t.Helper()
	return s.Signal(sig)
}

// getRaw GETs path by hand, for the path spellings api.Client never sends
// (the README's trailing slashes); every other call goes through s.api.
func (s *server) getRaw(path string) (int, []byte) {
	s.t.Helper()
	res, err := http.Get(s.URL + path)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return res.StatusCode, b
}

// types lists the event types of a history.
func types(h orders.History) []string {
	var out []string
	for _, e := range h.Events {
		out = append(out, e.Type)
	}
	return out
}

// data decodes an event's data.
func data(t *testing.T, e orders.HistoryEvent) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Data, &m); err != nil {
		t.Fatalf("decode %s: %v", e.Data, err)
	}
	return m
}

// place places an order and returns it.
func (s *server) place(customer, product string, qty int, opts ...api.CallOption) api.Order {
	s.t.Helper()
	o, err := s.api.Place(context.Background(), api.PlaceRequest{CustomerName: customer, ProductName: product, Quantity: qty}, opts...)
	if err != nil {
		s.t.Fatalf("place: %v", err)
	}
	return o
}

// get returns the order as the read model shows it.
func (s *server) get(id string) api.Order {
	s.t.Helper()
	o, err := s.api.Get(context.Background(), id, api.GetQuery{})
	if err != nil {
		s.t.Fatalf("get %s: %v", id, err)
	}
	return o
}

// waitTerminal polls the order (read-your-writes) until it is no longer
// Pending, and then until the read model shows the same version.
func (s *server) waitTerminal(id string) api.Order {
	s.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(waitLimit)
	for {
		v, err := s.api.Get(ctx, id, api.GetQuery{Consistent: true})
		if err != nil {
			s.t.Fatalf("get %s: %v", id, err)
		}
		if v.Status != "Pending" {
			for {
				pv, err := s.api.Get(ctx, id, api.GetQuery{})
				if err != nil && api.StatusOf(err) == 0 {
					s.t.Fatalf("get %s: %v", id, err)
				}
				// The order may move on after its end (an owed void or
				// refund keeps recording its tries), so the read model
				// has caught up once it holds this version or a later one.
				if err == nil && pv.Version >= v.Version {
					return pv
				}
				if time.Now().After(deadline) {
					s.t.Fatalf("read model of %s never reached version %d (at %d)", id, v.Version, pv.Version)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("order %s still Pending: %+v", id, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) history(id string) orders.History {
	s.t.Helper()
	h, err := s.api.History(context.Background(), id)
	if err != nil {
		s.t.Fatalf("events %s: %v", id, err)
	}
	return h
}

// TestLifecycle is the tour: place orders over HTTP, watch them complete,
// read their audit histories, stop gracefully, restart, and find everything.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := start(t, dir)

	ctx := context.Background()
	if err := s.api.Health(ctx); err != nil {
		t.Fatalf("healthz: %v", err)
	}
	seed := s.place("Test Customer", "Test Product", 1, api.WithRequestID("tour-1"))
	if seed.Status != "Pending" || seed.Version != 1 {
		t.Fatalf("placed %+v", seed)
	}
	// Concurrent shoppers, some retrying with the same idempotency key.
	const n = 16
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Pairs send the same request with the same key, concurrently.
			ids[i] = s.place(fmt.Sprintf("Customer %d", i/2), "Lamp", 1+i/2%3, api.WithIdempotencyKey(fmt.Sprintf("tour-%d", i/2))).OrderID
		}()
	}
	wg.Wait()
	all := []string{seed.OrderID}
	for i := 0; i < n; i += 2 {
		if ids[i] != ids[i+1] {
			t.Errorf("idempotency key tour-%d made two orders: %s and %s", i/2, ids[i], ids[i+1])
		}
		all = append(all, ids[i])
	}
	for _, id := range all {
		v := s.waitTerminal(id)
		if v.Status != "Completed" {
			t.Errorf("order %s ended %s (%s)", id, v.Status, v.FailureReason)
		}
		h := s.history(id)
		want := []string{"OrderPlaced", "PaymentSucceeded", "InventoryReserved", "OrderCompleted"}
		if fmt.Sprint(types(h)) != fmt.Sprint(want) {
			t.Errorf("history of %s: %v", id, types(h))
		}
		for i, e := range h.Events {
			if e.Version != int64(i+1) {
				t.Errorf("history of %s: event %d has version %d", id, i, e.Version)
			}
		}
	}
	if h := s.history(seed.OrderID); h.Events[0].Metadata.RequestID != "tour-1" {
		t.Errorf("request ID not carried into metadata: %+v", h.Events[0].Metadata)
	}
	// The README's tour spells the paths with a trailing slash: they
	// answer as the client's do.
	if code, b := s.getRaw("/orders/" + seed.OrderID + "/events/"); code != http.StatusOK || !strings.Contains(string(b), `"OrderCompleted"`) {
		t.Errorf("GET /orders/{id}/events/: %d %s", code, b)
	}
	if code, b := s.getRaw("/orders/" + seed.OrderID + "/?consistent=true"); code != http.StatusOK || !strings.Contains(string(b), `"Completed"`) {
		t.Errorf("GET /orders/{id}/?consistent=true: %d %s", code, b)
	}
	list, err := s.api.List(ctx, projections.ListQuery{Status: order.StatusCompleted, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]orders.History{}
	for _, id := range all {
		before[id] = s.history(id)
	}
	if len(list.Items) != len(before) {
		t.Errorf("listing has %d completed orders, want %d", len(list.Items), len(before))
	}

	if err := s.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("graceful stop: %v\n%s", err, s.Logs.String())
	}

	// The audit history, from the data directory of the stopped ledger.
	out, err := exec.Command(ledgertest.Binary(t), "history", seed.OrderID, "--data", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OrderCompleted") || !strings.Contains(string(out), "tour-1") {
		t.Errorf("ledger history: %v\n%s", err, out)
	}

	s = start(t, dir)
	for id, h := range before {
		if got := s.history(id); fmt.Sprint(got) != fmt.Sprint(h) {
			t.Errorf("after restart %s has %v, had %v", id, types(got), types(h))
		}
		if v := s.get(id); v.Status != "Completed" {
			t.Errorf("after restart the read model has %s %s", id, v.Status)
		}
	}
	// The workers came back too.
	if v := s.waitTerminal(s.place("After Restart", "Lamp", 1).OrderID); v.Status != "Completed" {
		t.Errorf("order after restart ended %s", v.Status)
	}
	// Rebuild the read model while serving; the views come out the same.
	if _, err := s.api.StartRebuild(ctx); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(20 * time.Millisecond) {
		st, err := s.api.RebuildStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Running {
			if st.Error != "" {
				t.Fatalf("rebuild failed: %+v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rebuild never finished")
		}
	}
	for id := range before {
		if v := s.get(id); v.Status != "Completed" || v.Version != 4 {
			t.Errorf("after rebuild %s is %+v", id, v)
		}
	}
	// ledger history reads through the API of a running ledger.
	out, err = exec.Command(ledgertest.Binary(t), "history", seed.OrderID, "--url", s.URL, "--json").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"OrderCompleted"`) {
		t.Errorf("ledger history --url: %v\n%s", err, out)
	}
	if err := s.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
}

// TestFailurePaths runs the simulator's failure knobs through the binary.
func TestFailurePaths(t *testing.T) {
	t.Parallel()
	t.Run("payment declined", func(t *testing.T) {
		t.Parallel()
		s := start(t, t.TempDir(), "--sim-payment-decline-rate", "1")
		v := s.waitTerminal(s.place("Ada", "Lamp", 1).OrderID)
		if v.Status != "Failed" {
			t.Fatalf("ended %+v", v)
		}
		if got := types(s.history(v.OrderID)); fmt.Sprint(got) != "[OrderPlaced PaymentFailed OrderFailed]" {
			t.Errorf("history %v", got)
		}
	})
	t.Run("out of stock after payment is refunded", func(t *testing.T) {
		t.Parallel()
		s := start(t, t.TempDir(), "--sim-inventory-stock", "1")
		v := s.waitTerminal(s.place("Ada", "Lamp", 2).OrderID)
		if v.Status != "Failed" {
			t.Fatalf("ended %+v", v)
		}
		want := "[OrderPlaced PaymentSucceeded InventoryReservationFailed PaymentRefunded OrderFailed]"
		if got := types(s.history(v.OrderID)); fmt.Sprint(got) != want {
			t.Errorf("history %v, want %s", got, want)
		}
	})
	t.Run("payment service down fails after 3 attempts", func(t *testing.T) {
		t.Parallel()
		s := start(t, t.TempDir(), "--sim-payment-error-rate", "1")
		v := s.waitTerminal(s.place("Ada", "Lamp", 1).OrderID)
		h := s.history(v.OrderID)
		// The history reads: three failed payment tries, the failure, the
		// end; then the void's tries (the service never answers them).
		got := types(h)
		if v.Status != "Failed" || len(got) < 6 || fmt.Sprint(got[:6]) != "[OrderPlaced AttemptFailed AttemptFailed AttemptFailed PaymentFailed OrderFailed]" {
			t.Fatalf("ended %+v with history %v", v, got)
		}
		if end := h.Events[5]; data(t, end)["attempts"] != 3.0 || data(t, end)["step"] != "payment" {
			t.Errorf("OrderFailed %s, want step payment and attempts 3", end.Data)
		}
		for i, e := range h.Events[1:4] {
			if d := data(t, e); d["step"] != "payment" || d["attempt"] != float64(i+1) {
				t.Errorf("failed try %d: %s", i+1, e.Data)
			}
		}
	})
}

// TestKillNineLosesNothing: every order acknowledged with 201 before a
// SIGKILL is there after a restart, and is then processed to the end. A
// message a worker held when killed comes back after the processing queue's
// visibility timeout (30s), which is most of this test's run time.
func TestKillNineLosesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := start(t, dir, "--sim-latency", "20ms")
	var ids []string
	for i := range 10 {
		ids = append(ids, s.place(fmt.Sprintf("Customer %d", i), "Lamp", 1).OrderID)
	}
	_ = s.stop(syscall.SIGKILL)

	s = start(t, dir)
	for _, id := range ids {
		if v := s.waitTerminal(id); v.Status != "Completed" {
			t.Errorf("order %s ended %s", id, v.Status)
		}
		if got := types(s.history(id)); got[0] != "OrderPlaced" || got[len(got)-1] != "OrderCompleted" {
			t.Errorf("history of %s: %v", id, got)
		}
	}
	if err := s.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

// TestBadFlags: bad invocations fail with one line and exit status 2.
func TestBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"serve", "--backend", "floppy"},
		{"serve", "--sim-payment-decline-rate", "2"},
		{"serve", "--workers", "0"},
		{"history"},
		{"history", "not-an-id"},
	} {
		cmd := exec.CommandContext(context.Background(), ledgertest.Binary(t), args...)
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
			t.Errorf("ledger %v: %v\n%s", args, err, out)
		}
	}
}
