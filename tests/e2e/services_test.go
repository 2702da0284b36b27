package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/internal/ledgertest"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/services/sim"
)

var simulatingRE = regexp.MustCompile(`simulating payment and inventory on (http://\S+)`)

// simulate starts `ledger simulate` in its own process with flags and
// returns its URL.
func simulate(t *testing.T, flags ...string) string {
	t.Helper()
	cmd := exec.Command(ledgertest.Binary(t), append([]string{"simulate", "--addr", "127.0.0.1:0"}, flags...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := simulatingRE.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
	}()
	select {
	case u := <-urlc:
		return u
	case <-time.After(waitLimit):
		t.Fatal("ledger simulate did not start")
	}
	return ""
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// TestMixedLoadAgainstAnOutsideSimulator is issue 13's mixed run against
// real services in another process: `ledger serve --services-url` sends
// every charge, refund and reservation to `ledger simulate` (declines,
// transient errors, latency) while 8 writers place orders and every 4th is
// cancelled at once. When every order has settled, the simulator's own
// record is the ledger's: its charges and refunds are the histories'
// PaymentSucceeded and PaymentRefunded events, each order holds what its
// history says, and the orders still charged are exactly the Completed ones.
func TestMixedLoadAgainstAnOutsideSimulator(t *testing.T) {
	t.Parallel()
	svc := simulate(t, "--sim-payment-decline-rate", "0.2", "--sim-payment-error-rate", "0.3", "--sim-latency", "5ms", "--sim-seed", "5")
	s := start(t, t.TempDir(), "--services-url", svc, "--retry-backoff", "100ms", "--workers", "8")
	ctx := context.Background()
	const writers, perWriter = 8, 15
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range perWriter {
				o, err := s.api.Place(ctx, api.PlaceRequest{CustomerName: fmt.Sprintf("w%d-%d", w, n), ProductName: "tea", Quantity: 1 + n%3})
				if err != nil {
					t.Errorf("place: %v", err)
					return
				}
				mu.Lock()
				ids = append(ids, o.OrderID)
				mu.Unlock()
				if n%4 == 0 {
					if _, err := s.api.Cancel(ctx, o.OrderID, "changed my mind"); err != nil && api.StatusOf(err) != http.StatusConflict {
						t.Errorf("cancel %s: %v", o.OrderID, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// A charge in flight when its order was cancelled lands a moment later
	// (then its refund): compare once the histories and the simulator have
	// both stopped moving, that is, until they agree or time runs out.
	var charges, refunds, completed int
	var st sim.Stats
	var problems []string
	deadline := time.Now().Add(waitLimit)
	for {
		charges, refunds, completed, problems = 0, 0, 0, nil
		held := map[string]int64{}
		for _, id := range ids {
			h := totals(s.history(id))
			if !h.settled {
				problems = append(problems, fmt.Sprintf("order %s has not settled: %v", id, h.types))
			}
			charges += h.charges
			refunds += h.refunds
			if h.status == "Completed" {
				completed++
			}
			held[id] = h.held
		}
		getJSON(t, svc+"/stats", &st)
		var simHeld map[string]int64
		getJSON(t, svc+"/held", &simHeld)
		if st.Charges != charges || st.Refunds != refunds {
			problems = append(problems, fmt.Sprintf("the simulator made %d charges and %d refunds; the histories record %d and %d", st.Charges, st.Refunds, charges, refunds))
		}
		if st.Charges-st.Refunds != completed {
			problems = append(problems, fmt.Sprintf("%d charges net of refunds at the simulator, %d Completed orders", st.Charges-st.Refunds, completed))
		}
		for _, id := range ids {
			if held[id] != simHeld[id] {
				problems = append(problems, fmt.Sprintf("order %s: the history holds %d, the simulator %d", id, held[id], simHeld[id]))
			}
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d orders, %d completed; simulator %+v", len(ids), completed, st)
}

// historyTotals is what one order's history says about its money.
type historyTotals struct {
	status           string
	charges, refunds int
	held             int64
	settled          bool
	types            []string
}

// totals reads an order's money and whether it settled (ended, owing no
// refund) from its history alone, as an outside auditor would.
func totals(h orders.History) historyTotals {
	var t historyTotals
	var amount int64
	ended := false
	for _, e := range h.Events {
		t.types = append(t.types, e.Type)
		switch e.Type {
		case "PaymentSucceeded":
			var d struct{ Amount int64 }
			_ = json.Unmarshal(e.Data, &d)
			amount = d.Amount
			t.charges++
			t.held += amount
		case "PaymentRefunded":
			t.refunds++
			t.held -= amount
		case "OrderCompleted", "OrderFailed", "OrderCancelled":
			ended = true
			t.status = map[string]string{"OrderCompleted": "Completed", "OrderFailed": "Failed", "OrderCancelled": "Cancelled"}[e.Type]
		}
	}
	t.settled = ended && (t.status == "Completed" || t.held == 0)
	return t
}
