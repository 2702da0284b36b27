package app

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/orderledger/orderledger/services/sim"
)

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", res.StatusCode, b)
	}
	return string(b)
}

// sample returns the value of the exposition line starting with series.
func sample(t *testing.T, body, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("scrape lacks %s", series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMetricsCountOrdersAndFeedLag(t *testing.T) {
	a := open(t, t.TempDir(), sim.Config{})
	t.Cleanup(func() { a.Close() })
	const n = 3
	var ids []string
	for range n {
		code, v := call(t, a.Handler(), "POST", "/orders/", seed)
		if code != http.StatusCreated {
			t.Fatalf("place: %d %v", code, v)
		}
		ids = append(ids, v["order_id"].(string))
	}
	for _, id := range ids {
		if v := waitStatus(t, a.Handler(), id); v["status"] != "Completed" {
			t.Fatalf("order %s: %v", id, v["status"])
		}
	}
	var body string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		body = scrape(t, a.Handler())
		head := sample(t, body, "ledger_feed_head_position")
		if head == sample(t, body, `ledger_feed_consumer_position{consumer="projector"}`) &&
			head == sample(t, body, `ledger_feed_consumer_position{consumer="publisher"}`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("feed lag never reached 0:\n%s", body)
		}
	}
	for _, db := range []string{"events", "views", "queue"} {
		if v := sample(t, body, `ledger_pebble_disk_usage_bytes{db="`+db+`"}`); v <= 0 {
			t.Errorf("pebble %s disk usage %v, want > 0", db, v)
		}
	}
	for series, want := range map[string]float64{
		`ledger_events_appended_total{type="OrderPlaced"}`:                     n,
		`ledger_events_appended_total{type="OrderCompleted"}`:                  n,
		`ledger_feed_head_position`:                                            4 * n,
		`ledger_http_requests_total{code="2xx",method="POST",route="/orders"}`: n,
		`ledger_queue_messages{queue="order-processing",state="visible"}`:      0,
		`ledger_queue_messages{queue="order-dlq",state="visible"}`:             0,
		`ledger_eventstore_conflicts_total`:                                    0,
		`ledger_eventstore_commit_group_events_sum`:                            4 * n,
	} {
		if got := sample(t, body, series); got != want {
			t.Errorf("%s = %v, want %v\n%s", series, got, want, body)
		}
	}
	// Every event went through a commit group: at least one group, at most
	// one per event, and the +Inf bucket is the count.
	groups := sample(t, body, `ledger_eventstore_commit_group_events_count`)
	if groups < 1 || groups > 4*n || sample(t, body, `ledger_eventstore_commit_group_events_bucket{le="+Inf"}`) != groups {
		t.Errorf("commit groups: %v for %d events\n%s", groups, 4*n, body)
	}
	if le1 := sample(t, body, `ledger_eventstore_commit_group_events_bucket{le="1"}`); le1 > groups {
		t.Errorf("groups of one event %v > all groups %v", le1, groups)
	}
}
