package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderledger/orderledger/app"
)

// checkRun checks the invariants of a run of n orders that all completed.
func checkRun(t *testing.T, run E2ERun, n, clients int) {
	t.Helper()
	if run.Orders != n || run.Clients != clients {
		t.Errorf("run of %d orders at %d clients, want %d at %d", run.Orders, run.Clients, n, clients)
	}
	if run.Statuses["Completed"] != n {
		t.Errorf("statuses %v, want %d Completed", run.Statuses, n)
	}
	if run.OrdersPerS <= 0 || run.PostsPerS < run.OrdersPerS {
		t.Errorf("orders/s %.1f, POST/s %.1f: want 0 < orders/s <= POST/s", run.OrdersPerS, run.PostsPerS)
	}
	if !(0 < run.PostP50Ms && run.PostP50Ms <= run.PostP95Ms && run.PostP95Ms <= run.PostP99Ms) {
		t.Errorf("POST percentiles %.3f %.3f %.3f not positive and ordered", run.PostP50Ms, run.PostP95Ms, run.PostP99Ms)
	}
	if !(run.PostP50Ms <= run.CompleteP50Ms && run.CompleteP50Ms <= run.CompleteP95Ms && run.CompleteP95Ms <= run.CompleteP99Ms) {
		t.Errorf("completion percentiles %.3f %.3f %.3f not ordered or below POST p50 %.3f",
			run.CompleteP50Ms, run.CompleteP95Ms, run.CompleteP99Ms, run.PostP50Ms)
	}
}

func TestE2EInProcessSweep(t *testing.T) {
	t.Parallel()
	r, err := E2E(t.Context(), E2EOptions{Orders: 40, Sweep: []int{1, 4}, Warmup: 5, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Runs) != 2 {
		t.Fatalf("%d runs, want 2", len(r.Runs))
	}
	for i, c := range []int{1, 4} {
		checkRun(t, r.Runs[i], 40, c)
	}
	if r.Best.OrdersPerS != max(r.Runs[0].OrdersPerS, r.Runs[1].OrdersPerS) {
		t.Errorf("best %.1f orders/s is not the best of %v", r.Best.OrdersPerS, r.Runs)
	}
	if _, err := os.Stat("/proc/self/status"); err == nil && r.Best.PeakRSSMiB <= 0 {
		t.Errorf("peak RSS %.1f MiB on Linux", r.Best.PeakRSSMiB)
	}

	var out bytes.Buffer
	if err := r.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !strings.Contains(out.String(), "* best rate at") || !strings.Contains(lines[1], "POST p50 ms") {
		t.Errorf("table:\n%s", out.String())
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &obj); err != nil {
		t.Fatalf("last line is not JSON: %v", err)
	}
	for _, k := range []string{"orders_per_s", "post_p50_ms", "post_p95_ms", "post_p99_ms", "complete_p50_ms",
		"complete_p95_ms", "complete_p99_ms", "peak_rss_mib", "clients", "runs"} {
		if _, ok := obj[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, lines[len(lines)-1])
		}
	}
	// The data directories are removed.
	if left, _ := filepath.Glob(filepath.Join(r.Params["dir"].(string), "bench-e2e-*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestE2EAgainstURL(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrc := make(chan string, 1)
	a, err := app.Open(ctx, app.Config{Dir: t.TempDir(), Addr: "127.0.0.1:0", Started: func(addr string) { addrc <- addr }})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	defer func() {
		cancel()
		<-served
		a.Close()
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-served:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	r, err := E2E(ctx, E2EOptions{Orders: 30, Clients: 3, Warmup: -1, URL: "http://" + addr + "/", PID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	checkRun(t, r.Best, 30, 3)
	if r.Target != "http://"+addr+"/" || r.Method != methodPoll {
		t.Errorf("target %q method %q", r.Target, r.Method)
	}
}

func TestE2EFailsOnRejectedPOST(t *testing.T) {
	t.Parallel()
	// A server that is healthy but refuses orders.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Write([]byte(`{"status":"ok"}`))
			return
		}
		http.Error(w, `{"title":"no"}`, http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	_, err := E2E(t.Context(), E2EOptions{Orders: 3, Clients: 2, Warmup: -1, URL: srv.URL})
	if err == nil || !strings.Contains(err.Error(), "POST /orders: 503") {
		t.Fatalf("E2E against a refusing server: %v", err)
	}
}

func TestPercentiles(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	p50, p95, p99 := percentiles(ds)
	if p50 != 50 || p95 != 95 || p99 != 99 {
		t.Errorf("percentiles of 1..100 ms = %v %v %v, want 50 95 99", p50, p95, p99)
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("percentiles sorted its argument in place")
	}
	if a, b, c := percentiles(nil); a != 0 || b != 0 || c != 0 {
		t.Errorf("percentiles(nil) = %v %v %v", a, b, c)
	}
}

func TestPeakRSS(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	if peakRSSMiB(os.Getpid()) < rssMiB(os.Getpid())*0.5 || rssMiB(os.Getpid()) <= 0 {
		t.Errorf("peak %.1f MiB, current %.1f MiB", peakRSSMiB(os.Getpid()), rssMiB(os.Getpid()))
	}
	if peakRSSMiB(0) != 0 {
		t.Error("peak RSS of pid 0 is not 0")
	}
}

func TestMemory(t *testing.T) {
	t.Parallel()
	r, err := Memory(t.Context(), MemoryOptions{Events: []int{2000}, Reads: 500, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(r.Runs))
	}
	run := r.Runs[0]
	if run.Events < 2000 || run.Orders < 1 || run.DiskMiB <= 0 {
		t.Errorf("run %+v: want at least 2,000 events on disk", run)
	}
	// The whole feed once, then 500 loads of at least one event each.
	if run.Reads < run.Events+500 {
		t.Errorf("%d events read, want at least %d", run.Reads, run.Events+500)
	}
	if _, err := os.Stat("/proc/self/status"); err == nil && (run.ServedMiB <= 0 || run.PeakMiB < run.ServedMiB*0.99) {
		t.Errorf("RSS after reads %.1f MiB, peak %.1f MiB", run.ServedMiB, run.PeakMiB)
	}
	var out bytes.Buffer
	if err := r.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var obj struct {
		Runs []MemoryRun `json:"runs"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &obj); err != nil || len(obj.Runs) != 1 || obj.Runs[0].Events != run.Events {
		t.Errorf("last line %q: %v", lines[len(lines)-1], err)
	}
}
