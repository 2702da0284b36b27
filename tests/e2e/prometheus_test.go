package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/orderledger/orderledger/internal/ledgertest"
)

// prometheusTool returns the path of a Prometheus binary (prometheus or
// promtool; scripts/test.sh installs Debian's package). Outside CI a
// missing one skips the test; under CI=true it fails it.
func prometheusTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (scripts/test.sh installs Debian's prometheus package)", name)
		}
		t.Skipf("%s is not installed (apt-get install -y prometheus; scripts/test.sh does)", name)
	}
	return p
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startPrometheus runs a real Prometheus server in a temporary directory,
// scraping target's /metrics every 200ms, and returns its base URL.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	bin := prometheusTool(t, "prometheus")
	dir := t.TempDir()
	conf := fmt.Sprintf(`global:
  scrape_interval: 200ms
  scrape_timeout: 150ms
scrape_configs:
  - job_name: ledger
    static_configs:
      - targets: [%q]
`, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	var logs ledgertest.SyncBuffer
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", ledgertest.LastLines(logs.String(), 30))
		}
	})
	base := "http://" + addr
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(50 * time.Millisecond) {
		if res, err := http.Get(base + "/-/ready"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus never became ready:\n%s", ledgertest.LastLines(logs.String(), 30))
		}
	}
}

// promQuery runs an instant PromQL query whose answer is one number; ok is
// false while the query has no result yet.
func promQuery(t *testing.T, base, query string) (v float64, ok bool) {
	t.Helper()
	res, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.Status != "success" {
		t.Fatalf("query %s: %s", query, body.Error)
	}
	if len(body.Data.Result) != 1 {
		return 0, false
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	v, err = strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("query %s: value %q", query, s)
	}
	return v, true
}

// TestPrometheusScrapesTheLedger: a real Prometheus scrapes `ledger serve`;
// after N orders PromQL answers N placed, N completed, a feed lag of 0, N
// payment and N inventory decisions on N first deliveries, nothing owed,
// and promtool finds nothing to say about the exposition.
func TestPrometheusScrapesTheLedger(t *testing.T) {
	promtool := prometheusTool(t, "promtool")
	s := start(t, t.TempDir())
	target := s.URL[len("http://"):]
	prom := startPrometheus(t, target)

	const n = 12
	var ids []string
	for i := range n {
		ids = append(ids, s.place(fmt.Sprint("Customer ", i), "Lamp", 1).OrderID)
	}
	for _, id := range ids {
		if o := s.waitTerminal(id); o.Status != "Completed" {
			t.Fatalf("order %s: %s", id, o.Status)
		}
	}

	want := map[string]float64{
		`sum(ledger_events_appended_total{job="ledger",type="OrderPlaced"})`:                              n,
		`sum(ledger_events_appended_total{job="ledger",type="OrderCompleted"})`:                           n,
		`max(ledger_feed_head_position{job="ledger"}) - min(ledger_feed_consumer_position{job="ledger"})`: 0,
		`sum(ledger_http_requests_total{job="ledger",method="POST",route="/orders",code="2xx"})`:          n,
		// Every order charged and reserved once, on its first delivery.
		`sum(ledger_saga_decisions_total{job="ledger",step="payment",result="ok"})`:   n,
		`sum(ledger_saga_decisions_total{job="ledger",step="inventory",result="ok"})`: n,
		`sum(ledger_processing_message_receive_count_bucket{job="ledger",le="1"})`:    n,
		`sum(ledger_saga_money_owed_total{job="ledger"})`:                             0,
	}
	got := map[string]float64{}
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(100 * time.Millisecond) {
		settled := true
		for q, w := range want {
			v, ok := promQuery(t, prom, q)
			got[q] = v
			settled = settled && ok && v == w
		}
		if settled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PromQL never settled:\n got %v\nwant %v", got, want)
		}
	}

	res, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scrape, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", res.StatusCode, err)
	}
	check := exec.CommandContext(context.Background(), promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(scrape)
	out, err := check.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
