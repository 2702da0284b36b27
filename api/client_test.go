package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/projections"
)

// checkedTransport passes every call of a Client through the harness's
// checks: each answer is checked against the OpenAPI document and counted
// for TestMain's status coverage, as h.do does.
type checkedTransport struct{ h *harness }

func (ct checkedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(b))
	if err := ct.h.doc.checkResponse(req.Method, req.URL.Path, res.StatusCode, res.Header, b); err != nil {
		ct.h.t.Errorf("OpenAPI: %v", err)
	}
	if res.Header.Get("X-Request-ID") == "" {
		ct.h.t.Errorf("%s %s: no X-Request-ID in the response", req.Method, req.URL.Path)
	}
	seen.Lock()
	seen.statuses[res.StatusCode] = true
	seen.Unlock()
	return res, nil
}

// client returns a Client of the harness's server.
func (h *harness) client(opts ...api.ClientOption) *api.Client {
	h.t.Helper()
	c, err := api.NewClient(h.srv.URL+"/", append([]api.ClientOption{api.WithHTTPClient(&http.Client{Transport: checkedTransport{h}})}, opts...)...)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

var seedPlace = api.PlaceRequest{CustomerName: "Test Customer", ProductName: "Test Product", Quantity: 1}

// wantProblem fails unless err is a *ResponseError of status with a
// problem of code.
func wantProblem(t *testing.T, err error, status int, code domain.Code) *api.ResponseError {
	t.Helper()
	var re *api.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T), want a *api.ResponseError", err, err)
	}
	if re.Status != status || api.StatusOf(err) != status || re.Problem.Status != status || re.Problem.Code() != code || !re.IsProblem() {
		t.Fatalf("error %v: status %d, problem %+v; want %d %s", err, re.Status, re.Problem, status, code)
	}
	if re.Header.Get("Content-Type") != "application/problem+json" || !json.Valid(re.Body) {
		t.Fatalf("error %v: %s %s, want a problem+json body", err, re.Header.Get("Content-Type"), re.Body)
	}
	return re
}

func TestClientPlace(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.client()
	ctx := t.Context()
	o, err := c.Place(ctx, seedPlace, api.WithRequestID("req-1"), api.WithCorrelationID("flow-1"), api.WithIdempotencyKey("k-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !domain.ValidULID(o.OrderID) || o.Status != order.StatusPending || o.Version != 1 || o.CustomerName != "Test Customer" || o.Quantity != 1 {
		t.Errorf("placed %+v", o)
	}
	if o.ETag != `"1"` || o.Location != "/orders/"+o.OrderID || o.RequestID != "req-1" || o.Replayed {
		t.Errorf("headers: ETag %q Location %q RequestID %q Replayed %v", o.ETag, o.Location, o.RequestID, o.Replayed)
	}
	envs, _ := h.store.Load(ctx, o.OrderID, 1)
	if len(envs) != 1 || envs[0].Metadata.RequestID != "req-1" || envs[0].Metadata.CorrelationID != "flow-1" {
		t.Errorf("stored %+v", envs)
	}
	again, err := c.Place(ctx, seedPlace, api.WithIdempotencyKey("k-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Replayed || again.OrderID != o.OrderID || again.ETag != o.ETag || again.Location != o.Location {
		t.Errorf("repeat %+v, want the first order replayed", again)
	}
	_, err = c.Place(ctx, api.PlaceRequest{CustomerName: "Someone Else", ProductName: "Test Product", Quantity: 1}, api.WithIdempotencyKey("k-1"))
	wantProblem(t, err, http.StatusUnprocessableEntity, domain.Invalid)
	_, err = c.Place(ctx, api.PlaceRequest{CustomerName: "Ada", ProductName: "Lamp"})
	re := wantProblem(t, err, http.StatusUnprocessableEntity, domain.Invalid)
	if len(re.Problem.Errors) == 0 || re.Problem.Errors[0].Field != "quantity" || !strings.Contains(err.Error(), "POST /orders: 422") {
		t.Errorf("validation problem %+v, error %q", re.Problem, err)
	}
	if n := len(h.store.streamIDs()); n != 1 {
		t.Errorf("%d orders exist, want 1", n)
	}
}

func TestClientGet(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.client()
	ctx := t.Context()
	placed, err := c.Place(ctx, seedPlace)
	if err != nil {
		t.Fatal(err)
	}
	id := placed.OrderID
	// Not projected yet: the log answers.
	if o, err := c.Get(ctx, id, api.GetQuery{}); err != nil || o.OrderID != id || o.ETag != `"1"` || o.Location != "" {
		t.Fatalf("Get = %+v, %v", o, err)
	}
	h.project(id)
	h.appendEvents(id, order.PaymentSucceeded{PaymentID: "pay-1", Amount: 1999}, order.InventoryReserved{ReservationID: "res-1"}, order.Completed{})
	if o, err := c.Get(ctx, id, api.GetQuery{}); err != nil || o.Status != order.StatusPending {
		t.Errorf("read model Get = %+v, %v; want the lagging Pending view", o, err)
	}
	o, err := c.Get(ctx, id, api.GetQuery{Consistent: true})
	if err != nil || o.Status != order.StatusCompleted || o.ETag != `"4"` || o.Amount != 1999 || o.PaymentID != "pay-1" {
		t.Errorf("consistent Get = %+v, %v", o, err)
	}
	if o, err := c.Get(ctx, strings.ToLower(id), api.GetQuery{Version: 2}); err != nil || o.Version != 2 || o.PaymentID != "pay-1" || o.ReservationID != "" {
		t.Errorf("Get version 2 = %+v, %v", o, err)
	}
	envs, _ := h.store.Load(ctx, id, 1)
	if o, err := c.Get(ctx, id, api.GetQuery{AsOf: envs[2].OccurredAt}); err != nil || o.Version != 3 {
		t.Errorf("Get as of event 3 = %+v, %v", o, err)
	}
	_, err = c.Get(ctx, id, api.GetQuery{Version: 5})
	wantProblem(t, err, http.StatusNotFound, domain.NotFound)
	_, err = c.Get(ctx, id, api.GetQuery{Version: 1, AsOf: envs[0].OccurredAt})
	wantProblem(t, err, http.StatusBadRequest, "malformed")
	_, err = c.Get(ctx, "01KAW5Y8Z9ABCDEFGHJKMNPQRS", api.GetQuery{})
	wantProblem(t, err, http.StatusNotFound, domain.NotFound)
	// An ID is escaped into its path segment.
	_, err = c.Get(ctx, "not an id", api.GetQuery{})
	if re := wantProblem(t, err, http.StatusBadRequest, "malformed"); re.Path != "/orders/not%20an%20id" {
		t.Errorf("path %q", re.Path)
	}
}

func TestClientList(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.client()
	ctx := t.Context()
	var ids []string
	for range 5 {
		o, err := c.Place(ctx, seedPlace)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.OrderID)
		h.project(o.OrderID)
	}
	if _, err := c.Cancel(ctx, ids[0], ""); err != nil {
		t.Fatal(err)
	}
	h.project(ids[0])

	page, err := c.List(ctx, projections.ListQuery{Limit: 2})
	if err != nil || len(page.Items) != 2 || page.Items[0].OrderID != ids[4] || page.NextCursor == "" {
		t.Fatalf("page 1 = %+v, %v", page, err)
	}
	var all []string
	for v, err := range c.ListAll(ctx, projections.ListQuery{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, v.OrderID)
	}
	if want := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}; !slices.Equal(all, want) {
		t.Errorf("ListAll %v, want %v", all, want)
	}
	// Stopping early stops paging.
	n := 0
	for range c.ListAll(ctx, projections.ListQuery{Limit: 1}) {
		if n++; n == 2 {
			break
		}
	}
	page, err = c.List(ctx, projections.ListQuery{Status: order.StatusCancelled})
	if err != nil || len(page.Items) != 1 || page.Items[0].OrderID != ids[0] || page.NextCursor != "" {
		t.Errorf("status filter = %+v, %v", page, err)
	}
	page, err = c.List(ctx, projections.ListQuery{Customer: "Nobody"})
	if err != nil || page.Items == nil || len(page.Items) != 0 {
		t.Errorf("empty listing = %#v, %v", page, err)
	}
	for _, q := range []projections.ListQuery{{Status: "Shipped"}, {Limit: 101}, {Limit: -1}, {Cursor: "garbage"}} {
		_, err := c.List(ctx, q)
		wantProblem(t, err, http.StatusBadRequest, "malformed")
		got := 0
		for _, err := range c.ListAll(ctx, q) {
			if got++; err == nil {
				t.Errorf("ListAll(%+v) yielded an order", q)
			}
		}
		if got != 1 {
			t.Errorf("ListAll(%+v) yielded %d times, want the error once", q, got)
		}
	}
}

func TestClientCancel(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.client()
	ctx := t.Context()
	placed, err := c.Place(ctx, seedPlace)
	if err != nil {
		t.Fatal(err)
	}
	id := placed.OrderID
	_, err = c.Cancel(ctx, id, "changed my mind", api.WithIfMatch(`"7"`))
	wantProblem(t, err, http.StatusPreconditionFailed, domain.PreconditionFailed)
	o, err := c.Cancel(ctx, id, "changed my mind", api.WithIfMatch(placed.ETag), api.WithRequestID("cancel-1"))
	if err != nil || o.Status != order.StatusCancelled || o.ETag != `"2"` || o.Version != 2 || o.RequestID != "cancel-1" {
		t.Fatalf("Cancel = %+v, %v", o, err)
	}
	envs, _ := h.store.Load(ctx, id, 1)
	if len(envs) != 2 || !strings.Contains(string(envs[1].Data), "changed my mind") || envs[1].Metadata.RequestID != "cancel-1" {
		t.Errorf("stored %+v", envs)
	}
	_, err = c.Cancel(ctx, id, strings.Repeat("r", 501))
	wantProblem(t, err, http.StatusUnprocessableEntity, domain.Invalid)

	paid, err := c.Place(ctx, seedPlace)
	if err != nil {
		t.Fatal(err)
	}
	h.appendEvents(paid.OrderID, order.PaymentSucceeded{PaymentID: "p", Amount: 1})
	_, err = c.Cancel(ctx, paid.OrderID, "")
	wantProblem(t, err, http.StatusConflict, domain.Conflict)
	_, err = c.Cancel(ctx, "01KAW5Y8Z9ABCDEFGHJKMNPQRS", "")
	wantProblem(t, err, http.StatusNotFound, domain.NotFound)
}

func TestClientHistory(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.client()
	ctx := t.Context()
	placed, err := c.Place(ctx, seedPlace, api.WithRequestID("tour-1"))
	if err != nil {
		t.Fatal(err)
	}
	h.appendEvents(placed.OrderID, order.PaymentFailed{Reason: "card declined"}, order.Failed{Reason: "card declined", Step: "payment", Attempts: 1})
	hist, err := c.History(ctx, placed.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	if hist.OrderID != placed.OrderID || len(hist.Events) != 3 || hist.Events[0].Metadata.RequestID != "tour-1" {
		t.Fatalf("history %+v", hist)
	}
	for i, want := range []string{order.TypePlaced, order.TypePaymentFailed, order.TypeFailed} {
		if e := hist.Events[i]; e.Version != int64(i+1) || e.Type != want || !domain.ValidULID(e.EventID) || e.OccurredAt.IsZero() {
			t.Errorf("event %d: %+v, want %s", i, e, want)
		}
	}
	var data struct{ Attempts int }
	if err := json.Unmarshal(hist.Events[2].Data, &data); err != nil || data.Attempts != 1 {
		t.Errorf("OrderFailed data %s", hist.Events[2].Data)
	}
	_, err = c.History(ctx, "01KAW5Y8Z9ABCDEFGHJKMNPQRS")
	wantProblem(t, err, http.StatusNotFound, domain.NotFound)
}

func TestClientHealthAndReadiness(t *testing.T) {
	t.Parallel()
	var notReady atomic.Bool
	h := newHarness(t, func(d *api.Deps) {
		d.Ready = func(context.Context) []api.Check {
			return []api.Check{{Name: "store", OK: true}, {Name: "projector", OK: !notReady.Load(), Detail: "0 events behind"}}
		}
	})
	c := h.client()
	ctx := t.Context()
	if err := c.Health(ctx); err != nil {
		t.Errorf("Health: %v", err)
	}
	r, err := c.Ready(ctx)
	if err != nil || r.Status != "ready" || len(r.Checks) != 2 || r.Checks[1].Detail != "0 events behind" {
		t.Errorf("Ready = %+v, %v", r, err)
	}
	notReady.Store(true)
	_, err = c.Ready(ctx)
	re := wantProblem(t, err, http.StatusServiceUnavailable, domain.Unavailable)
	if len(re.Problem.Checks) != 2 || re.Problem.Checks[1].OK || re.Header.Get("Retry-After") == "" {
		t.Errorf("not ready: %+v %v", re.Problem, re.Header)
	}
	doc, err := c.OpenAPI(ctx)
	if err != nil || !bytes.Equal(doc, bytes.TrimSpace(api.OpenAPI)) {
		t.Errorf("OpenAPI = %.60s, %v", doc, err)
	}
}

func TestClientRebuild(t *testing.T) {
	t.Parallel()
	_, err := newHarness(t).client().StartRebuild(t.Context())
	wantProblem(t, err, http.StatusServiceUnavailable, domain.Unavailable)

	release := make(chan struct{})
	rb, err := projections.NewRebuilds(fakeRebuild(release))
	if err != nil {
		t.Fatal(err)
	}
	c := newHarness(t, func(d *api.Deps) { d.Rebuilds = rb }).client()
	st, err := c.StartRebuild(t.Context())
	if err != nil || !st.Running || st.StartedAt.IsZero() {
		t.Fatalf("StartRebuild = %+v, %v", st, err)
	}
	_, err = c.StartRebuild(t.Context())
	wantProblem(t, err, http.StatusConflict, domain.Conflict)
	close(release)
	if err := rb.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	st, err = c.RebuildStatus(t.Context())
	if err != nil || st.Running || st.Done != 40 || st.FinishedAt.IsZero() {
		t.Errorf("RebuildStatus = %+v, %v", st, err)
	}
}

func TestClientToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(d *api.Deps) { d.Token = "s3cret" })
	ctx := t.Context()
	for _, c := range []*api.Client{h.client(), h.client(api.WithToken("wrong"))} {
		_, err := c.Place(ctx, seedPlace)
		re := wantProblem(t, err, http.StatusUnauthorized, "unauthorized")
		if re.Header.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
		_, err = c.StartRebuild(ctx)
		wantProblem(t, err, http.StatusUnauthorized, "unauthorized")
		if err := c.Health(ctx); err != nil {
			t.Errorf("Health without the token: %v", err)
		}
		if _, err := c.Ready(ctx); err != nil {
			t.Errorf("Ready without the token: %v", err)
		}
	}
	if h.store.total() != 0 {
		t.Error("an unauthorized request appended")
	}
	c := h.client(api.WithToken("s3cret"))
	o, err := c.Place(ctx, seedPlace)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, o.OrderID, api.GetQuery{Consistent: true}); err != nil {
		t.Error(err)
	}
}

// TestClientErrors: answers that are not the API's problems still come
// back as a *ResponseError with the status and body; calls that get no
// answer do not.
func TestClientErrors(t *testing.T) {
	t.Parallel()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/prefix/healthz" {
			_, _ = w.Write([]byte(`{"status":"ok"}`))
			return
		}
		if r.URL.Path == "/prefix/orders" && r.Method == http.MethodGet {
			_, _ = w.Write([]byte(`not json`))
			return
		}
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer proxy.Close()
	c, err := api.NewClient(proxy.URL + "/prefix/")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := c.Health(ctx); err != nil {
		t.Errorf("Health under a path prefix: %v", err)
	}
	_, err = c.Place(ctx, seedPlace)
	var re *api.ResponseError
	if !errors.As(err, &re) || re.Status != http.StatusBadGateway || re.IsProblem() || re.Problem.Code() != "" || !strings.Contains(string(re.Body), "bad gateway") {
		t.Fatalf("Place through a failing proxy = %v (%+v)", err, re)
	}
	if got := err.Error(); got != "api: POST /orders: 502 Bad Gateway: bad gateway" {
		t.Errorf("error text %q", got)
	}
	if _, err := c.List(ctx, projections.ListQuery{}); !errors.Is(err, api.ErrUnexpectedAnswer) || api.StatusOf(err) != 0 {
		t.Errorf("List of an undecodable 200 = %v, want a decode error without a status", err)
	}
	proxy.Close()
	if err := c.Health(ctx); err == nil || api.StatusOf(err) != 0 || !strings.HasPrefix(err.Error(), "api: GET /healthz: ") {
		t.Errorf("Health of a closed server = %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.History(cancelled, "01KAW5Y8Z9ABCDEFGHJKMNPQRS"); !errors.Is(err, context.Canceled) {
		t.Errorf("History with a cancelled context = %v", err)
	}
}

func TestNewClientRejectsBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "localhost:8000", "ftp://x", "http://", "http://h/?q=1", "://x"} {
		if _, err := api.NewClient(u); err == nil || !strings.HasPrefix(err.Error(), "api: ") {
			t.Errorf("NewClient(%q) = %v, want an api: error", u, err)
		}
	}
}
