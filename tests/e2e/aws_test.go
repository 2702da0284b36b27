package e2e

import (
	"context"
	"net/http"
	"os/exec"
	"sync"
	"testing"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/internal/ledgertest"
	"github.com/orderledger/orderledger/services/sim"
)

// startAWS bootstraps a fresh environment on the AWS emulator with the real
// binary and starts `ledger serve --backend aws` on it, its payment and
// inventory calls sent to svc.
func startAWS(t *testing.T, svc string) *server {
	t.Helper()
	endpoint := awstest.Endpoint(t)
	env := awstest.UniqueEnv()
	t.Setenv("AWS_ENDPOINT_URL", endpoint)
	t.Setenv("LEDGER_ENV", env)
	if out, err := exec.Command(ledgertest.Binary(t), "aws", "bootstrap", "--env", env).CombinedOutput(); err != nil {
		t.Fatalf("ledger aws bootstrap: %v\n%s", err, out)
	}
	return start(t, t.TempDir(), "--backend", "aws", "--services-url", svc)
}

// TestAWSBackendConcurrency: on `serve --backend aws` over moto served one
// request at a time (scripts/moto.sh), 20 concurrent POSTs with one
// Idempotency-Key make one order and one charge, and all 20 answers name
// it; 50 concurrent cancels with its ETag have exactly one winner. Against
// moto's threaded server this made up to three charged orders.
func TestAWSBackendConcurrency(t *testing.T) {
	svc := simulate(t, "--sim-latency", "20ms")
	s := startAWS(t, svc)
	ctx := context.Background()

	const posts = 20
	ids := make([]string, posts)
	errs := make([]error, posts)
	var wg sync.WaitGroup
	for i := range posts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := s.api.Place(ctx, api.PlaceRequest{CustomerName: "Ada", ProductName: "tea", Quantity: 1}, api.WithIdempotencyKey("one-key"))
			ids[i], errs[i] = o.OrderID, err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("POST %d: %v", i, err)
		}
		if ids[i] != ids[0] {
			t.Fatalf("POST %d answered order %s, POST 0 order %s: one key made two orders", i, ids[i], ids[0])
		}
	}
	s.waitTerminal(ids[0])
	var st sim.Stats
	getJSON(t, svc+"/stats", &st)
	if st.Charges != 1 {
		t.Fatalf("one Idempotency-Key, 20 POSTs: %d charges at the payment service, want 1", st.Charges)
	}

	// A fresh order, cancelled by 50 clients at once with its ETag.
	o, err := s.api.Place(ctx, api.PlaceRequest{CustomerName: "Bob", ProductName: "tea", Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	const cancels = 50
	statuses := make([]int, cancels)
	for i := range cancels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.api.Cancel(ctx, o.OrderID, "race", api.WithIfMatch(o.ETag))
			statuses[i] = api.StatusOf(err)
			if err == nil {
				statuses[i] = http.StatusOK
			}
		}()
	}
	wg.Wait()
	won := 0
	for i, code := range statuses {
		switch code {
		case http.StatusOK:
			won++
		case http.StatusPreconditionFailed, http.StatusConflict:
		default:
			t.Errorf("cancel %d answered %d, want 200, 409 or 412", i, code)
		}
	}
	h := s.history(o.OrderID)
	cancelled := 0
	for _, e := range h.Events {
		if e.Type == "OrderCancelled" {
			cancelled++
		}
	}
	// The saga may have charged first (then every cancel is refused), or a
	// cancel wins; never two.
	if won > 1 || cancelled > 1 || (won == 1) != (cancelled == 1) {
		t.Fatalf("50 cancels with If-Match %s: %d answered 200, the history holds %d OrderCancelled: %v", o.ETag, won, cancelled, types(h))
	}
}
