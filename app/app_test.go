package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orderledger/orderledger/services/sim"
)

func open(t *testing.T, dir string, s sim.Config) *App {
	t.Helper()
	a, err := Open(t.Context(), Config{Dir: dir, Addr: "127.0.0.1:0", RetryBackoff: 10 * time.Millisecond, Sim: s})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func call(t *testing.T, h http.Handler, method, path, body string) (int, map[string]any) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return res.StatusCode, m
}

// waitStatus polls the order until it leaves Pending (a guard, not a timing
// assertion: the limit only stops a hung test).
func waitStatus(t *testing.T, h http.Handler, id string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		code, v := call(t, h, "GET", "/orders/"+id+"?consistent=true", "")
		if code != http.StatusOK {
			t.Fatalf("get %s: %d %v", id, code, v)
		}
		if v["status"] != "Pending" {
			return v
		}
	}
	t.Fatalf("order %s stayed Pending", id)
	return nil
}

const seed = `{"customer_name": "Test Customer", "product_name": "Test Product", "quantity": 1}`

// TestRuntimeProcessesAndReopens: an order placed through the wired API is
// processed by the pipeline and projected; after Close and Open it is all
// still there, and the read model answers without the log.
func TestRuntimeProcessesAndReopens(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := open(t, dir, sim.Config{})
	code, v := call(t, a.Handler(), "POST", "/orders/", seed)
	if code != http.StatusCreated {
		t.Fatalf("place: %d %v", code, v)
	}
	id := v["order_id"].(string)
	if got := waitStatus(t, a.Handler(), id); got["status"] != "Completed" || got["version"] != 4.0 {
		t.Fatalf("ended %v", got)
	}
	code, ready := call(t, a.Handler(), "GET", "/readyz", "")
	if code != http.StatusOK {
		t.Errorf("readyz %d %v", code, ready)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	a = open(t, dir, sim.Config{})
	defer a.Close()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		v, err := a.views.Get(t.Context(), id)
		if err == nil && v.Version == 4 && v.Status == "Completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read model after reopen: %+v %v", v, err)
		}
	}
}

// TestRuntimeDecline: the simulator flags reach the processors.
func TestRuntimeDecline(t *testing.T) {
	t.Parallel()
	a := open(t, t.TempDir(), sim.Config{PaymentDeclineRate: 1})
	defer a.Close()
	_, v := call(t, a.Handler(), "POST", "/orders", seed)
	if got := waitStatus(t, a.Handler(), v["order_id"].(string)); got["status"] != "Failed" {
		t.Fatalf("ended %v", got)
	}
}

// TestServeDrainsRequests: a request in flight when shutdown begins still
// gets its answer, and Serve returns cleanly.
func TestServeDrainsRequests(t *testing.T) {
	t.Parallel()
	a := open(t, t.TempDir(), sim.Config{})
	defer a.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	a.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "drained")
	})
	addrc := make(chan string, 1)
	a.cfg.Started = func(addr string) { addrc <- addr }
	shutdown := make(chan struct{})
	a.onShutdown = func() { close(shutdown) }
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	addr := <-addrc

	got := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		got <- string(b)
	}()
	<-entered
	cancel()
	<-shutdown // the shutdown has begun with the request in flight
	close(release)
	if body := <-got; body != "drained" {
		t.Errorf("in-flight request got %q", body)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
}

// TestRebuildEndpoint: the admin endpoint rebuilds the read model from the
// log into a new generation, and the views are the same afterwards.
func TestRebuildEndpoint(t *testing.T) {
	t.Parallel()
	a := open(t, t.TempDir(), sim.Config{})
	defer a.Close()
	var ids []string
	for range 5 {
		_, v := call(t, a.Handler(), "POST", "/orders/", seed)
		ids = append(ids, v["order_id"].(string))
	}
	before := map[string]any{}
	for _, id := range ids {
		before[id] = waitStatus(t, a.Handler(), id)
	}
	gen := a.views.Generation()
	code, st := call(t, a.Handler(), "POST", "/admin/projections/rebuild", "")
	if code != http.StatusAccepted {
		t.Fatalf("rebuild: %d %v", code, st)
	}
	if err := a.rebuilds.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	code, st = call(t, a.Handler(), "GET", "/admin/projections/rebuild", "")
	if code != http.StatusOK || st["running"] != false || st["error"] != nil || st["events_done"].(float64) < 20 {
		t.Fatalf("status: %d %v", code, st)
	}
	if a.views.Generation() == gen {
		t.Errorf("still on generation %d", gen)
	}
	for _, id := range ids {
		_, v := call(t, a.Handler(), "GET", "/orders/"+id, "")
		b1, _ := json.Marshal(v)
		b2, _ := json.Marshal(before[id])
		if string(b1) != string(b2) {
			t.Errorf("after rebuild %s\nbefore %s", b1, b2)
		}
	}
}

// TestServeEndsFeedStreams: a GET /feed stream open when shutdown begins
// ends at once, after the events it was sent, and Serve returns cleanly
// instead of waiting out the drain for a client that never hangs up.
func TestServeEndsFeedStreams(t *testing.T) {
	t.Parallel()
	a := open(t, t.TempDir(), sim.Config{})
	defer a.Close()
	a.cfg.ShutdownTimeout = time.Hour // a stream left open would hang the test, not pass it
	addrc := make(chan string, 1)
	a.cfg.Started = func(addr string) { addrc <- addr }
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	addr := <-addrc

	code, v := call(t, a.Handler(), "POST", "/orders/", seed)
	if code != http.StatusCreated {
		t.Fatalf("place: %d %v", code, v)
	}
	res, err := http.Get("http://" + addr + "/feed")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("GET /feed: %d %s", res.StatusCode, ct)
	}
	buf := make([]byte, 4096)
	var got strings.Builder
	for !strings.Contains(got.String(), `"order_id":"`+v["order_id"].(string)+`"`) {
		n, err := res.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("the feed ended before the order's first event: %v\n%s", err, got.String())
		}
	}
	cancel()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		t.Errorf("the stream ended with %v, want a clean end", err)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
}
