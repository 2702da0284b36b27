package api_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
)

var testCodec = orders.NewCodec()

// seen records every status a test received; TestMain checks that the whole
// suite covered every status of the contract (each checked against the
// OpenAPI document on the way).
var seen struct {
	sync.Mutex
	statuses map[int]bool
}

// contractStatuses are the statuses the HTTP contract promises.
var contractStatuses = []int{200, 201, 202, 400, 401, 404, 405, 409, 412, 413, 415, 422, 500, 501, 503}

func TestMain(m *testing.M) {
	seen.statuses = map[int]bool{}
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" {
		for _, s := range contractStatuses {
			if !seen.statuses[s] {
				fmt.Fprintf(os.Stderr, "no test received status %d\n", s)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// lockedBuffer is a goroutine-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type harness struct {
	t     *testing.T
	srv   *httptest.Server
	store *memStore
	views *memViews
	doc   *openAPIDoc
	logs  *lockedBuffer
	clock *stepClock
}

// stepClock advances one second per reading, so every event has its own time.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func newHarness(t *testing.T, opts ...func(*api.Deps)) *harness {
	t.Helper()
	h := &harness{t: t, store: newMemStore(), views: newMemViews(), doc: loadDoc(t), logs: &lockedBuffer{},
		clock: &stepClock{t: time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)}}
	d := api.Deps{
		Store: h.store, Views: h.views, Codec: testCodec,
		Clock: h.clock.now, IDs: domain.NewULIDSource(nil),
		Logger: slog.New(slog.NewJSONHandler(h.logs, nil)),
	}
	for _, o := range opts {
		o(&d)
	}
	h.srv = httptest.NewServer(api.NewRouter(d))
	t.Cleanup(h.srv.Close)
	return h
}

type response struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func (r *response) str(key string) string { s, _ := r.json[key].(string); return s }

// do sends a request (headers as "Name: value") and checks the response
// against the OpenAPI document.
func (h *harness) do(method, path, body string, headers ...string) *response {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, kv := range headers {
		k, v, _ := strings.Cut(kv, ":")
		if strings.TrimSpace(v) == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, strings.TrimSpace(v))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	r := &response{status: res.StatusCode, header: res.Header, body: b}
	_ = json.Unmarshal(b, &r.json)
	if err := h.doc.checkResponse(method, req.URL.Path, res.StatusCode, res.Header, b); err != nil {
		h.t.Errorf("OpenAPI: %v", err)
	}
	if rid := res.Header.Get("X-Request-ID"); rid == "" {
		h.t.Errorf("%s %s: no X-Request-ID in the response", method, path)
	}
	seen.Lock()
	seen.statuses[res.StatusCode] = true
	seen.Unlock()
	return r
}

// want fails unless r has the status (and, for a problem, its type suffix).
func (h *harness) want(r *response, status int, problem ...string) {
	h.t.Helper()
	if r.status != status {
		h.t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if status >= 400 {
		if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
			h.t.Fatalf("content type %q for an error", ct)
		}
		if len(problem) > 0 && r.str("type") != api.ProblemTypePrefix+problem[0] {
			h.t.Fatalf("problem type %q, want %q", r.str("type"), api.ProblemTypePrefix+problem[0])
		}
	}
}

const seedBody = `{"customer_name": "Test Customer", "product_name": "Test Product", "quantity": 1}`

// place places the seed's order and returns its ID.
func (h *harness) place() string {
	h.t.Helper()
	r := h.do("POST", "/orders/", seedBody)
	h.want(r, http.StatusCreated)
	return r.str("order_id")
}

// project copies the log's current state of id into the read model.
func (h *harness) project(id string) {
	h.t.Helper()
	r := h.do("GET", "/orders/"+id+"?consistent=true", "")
	h.want(r, http.StatusOK)
	var v projections.View
	if err := json.Unmarshal(r.body, &v); err != nil {
		h.t.Fatal(err)
	}
	h.views.put(v)
}

// appendEvents appends domain events to an order as the processor would.
func (h *harness) appendEvents(id string, events ...order.Event) {
	h.t.Helper()
	cur, _ := h.store.Load(h.t.Context(), id, 1)
	var envs []eventstore.Event
	for _, e := range events {
		env, err := testCodec.Encode(e, domain.NewULIDSource(nil)(h.clock.now()), h.clock.now(), eventstore.Metadata{})
		if err != nil {
			h.t.Fatal(err)
		}
		envs = append(envs, env)
	}
	if _, err := h.store.Append(h.t.Context(), id, int64(len(cur)), envs...); err != nil {
		h.t.Fatal(err)
	}
}
