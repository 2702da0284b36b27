package api_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
)

// feedHarness is the API over a real pebble event store, whose change feed
// serves GET /feed.
func feedHarness(t *testing.T, opts ...func(*api.Deps)) *harness {
	t.Helper()
	store, err := pebblestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, append([]func(*api.Deps){func(d *api.Deps) {
		d.Store, d.Feed = store, store
	}}, opts...)...)
	// The server first: its streams end before the store closes.
	t.Cleanup(func() { _ = store.Close() })
	return h
}

// sseEvent is one Server-Sent Event as a client sees it; an event with an
// id and no data moves the client's last id without being dispatched.
type sseEvent struct {
	id, event, data string
	comment         bool
}

// sseStream reads one /feed answer.
type sseStream struct {
	t   *testing.T
	doc *openAPIDoc
	res *http.Response
	sc  *bufio.Scanner
}

// openFeed opens GET path (headers as "Name: value") and fails unless it
// answers a 200 event stream.
func (h *harness) openFeed(path string, headers ...string) *sseStream {
	h.t.Helper()
	req, err := http.NewRequestWithContext(h.t.Context(), "GET", h.srv.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, kv := range headers {
		k, v, _ := strings.Cut(kv, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(res.Body)
		h.t.Fatalf("GET %s: %d %s: %s", path, res.StatusCode, res.Header.Get("Content-Type"), b)
	}
	s := &sseStream{t: h.t, doc: h.doc, res: res, sc: bufio.NewScanner(res.Body)}
	h.t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() { _ = s.res.Body.Close() }

// next returns the next block (an event, an id-only block, or a comment),
// and false at the end of the stream.
func (s *sseStream) next() (sseEvent, bool) {
	s.t.Helper()
	var e sseEvent
	seen := false
	for s.sc.Scan() {
		line := s.sc.Text()
		if line == "" {
			if seen {
				return e, true
			}
			continue
		}
		seen = true
		if strings.HasPrefix(line, ":") {
			e.comment = true
			continue
		}
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimPrefix(v, " ")
		switch k {
		case "id":
			e.id = v
		case "event":
			e.event = v
		case "data":
			e.data += v
		}
	}
	return e, false
}

// nextEvent skips comments and id-only blocks and decodes the next event.
func (s *sseStream) nextEvent() api.FeedEvent {
	s.t.Helper()
	for {
		e, ok := s.next()
		if !ok {
			s.t.Fatal("the feed ended before the next event")
		}
		if e.data == "" {
			continue
		}
		var v any
		_ = json.Unmarshal([]byte(e.data), &v)
		if err := s.doc.validate(map[string]any{"$ref": "#/components/schemas/FeedEvent"}, v, "$"); err != nil {
			s.t.Errorf("OpenAPI: FeedEvent: %v", err)
		}
		var fe api.FeedEvent
		if err := json.Unmarshal([]byte(e.data), &fe); err != nil {
			s.t.Fatalf("event data %q: %v", e.data, err)
		}
		if e.id != strconv.FormatUint(fe.Position, 10) || e.event != fe.Type {
			s.t.Fatalf("id %q event %q for position %d type %s", e.id, e.event, fe.Position, fe.Type)
		}
		return fe
	}
}

func (h *harness) cancel(id string) {
	h.t.Helper()
	h.want(h.do("POST", "/orders/"+id+"/cancel", `{"reason":"test"}`), http.StatusOK)
}

// TestFeedOrder: every event, in commit order with positions 1..n, the
// backlog first and then live ones as they are committed, with the data of
// today's schema and the request's metadata.
func TestFeedOrder(t *testing.T) {
	t.Parallel()
	h := feedHarness(t)
	a, b := h.place(), h.place()
	h.cancel(a)
	c := h.place()
	want := []struct{ order, typ string }{{a, "OrderPlaced"}, {b, "OrderPlaced"}, {a, "OrderCancelled"}, {c, "OrderPlaced"}}

	s := h.openFeed("/feed")
	for i, w := range want {
		e := s.nextEvent()
		if e.Position != uint64(i+1) || e.OrderID != w.order || e.Type != w.typ {
			t.Fatalf("event %d: position %d order %s type %s; want %d %s %s", i, e.Position, e.OrderID, e.Type, i+1, w.order, w.typ)
		}
		if e.Metadata.RequestID == "" || e.EventID == "" || e.OccurredAt.IsZero() {
			t.Errorf("event %d lacks its request ID, event ID or time: %+v", i, e)
		}
	}
	// Live: an event committed while the stream is open arrives next.
	d := h.place()
	if e := s.nextEvent(); e.Position != 5 || e.OrderID != d || e.Type != "OrderPlaced" {
		t.Fatalf("live event: %+v, want position 5 OrderPlaced of %s", e, d)
	}
	var data map[string]any
	h.cancel(d)
	e := s.nextEvent()
	if err := json.Unmarshal(e.Data, &data); err != nil || data["reason"] != "test" {
		t.Fatalf("OrderCancelled data %s (%v), want its reason", e.Data, err)
	}
}

// TestFeedResume: a client that reconnects with the last id it received
// (Last-Event-ID, or ?from=) gets exactly the events after it; from=now
// starts at the head.
func TestFeedResume(t *testing.T) {
	t.Parallel()
	h := feedHarness(t)
	ids := []string{h.place(), h.place(), h.place(), h.place()}

	s := h.openFeed("/feed")
	var last api.FeedEvent
	for range 2 {
		last = s.nextEvent()
	}
	s.close() // the client goes away after position 2
	for _, how := range []string{"Last-Event-ID: 2", "from"} {
		var r *sseStream
		if how == "from" {
			r = h.openFeed("/feed?from=" + strconv.FormatUint(last.Position, 10))
		} else {
			r = h.openFeed("/feed?from=0", how) // Last-Event-ID wins over from
		}
		for i := 2; i < 4; i++ {
			if e := r.nextEvent(); e.Position != uint64(i+1) || e.OrderID != ids[i] {
				t.Fatalf("%s: resumed at position %d (%s), want %d (%s)", how, e.Position, e.OrderID, i+1, ids[i])
			}
		}
		r.close()
	}

	now := h.openFeed("/feed?from=now")
	e := h.place()
	if got := now.nextEvent(); got.Position != 5 || got.OrderID != e {
		t.Fatalf("from=now: first event %d (%s), want 5 (%s)", got.Position, got.OrderID, e)
	}
}

// TestFeedStreamFilter: ?stream= sends one order's events only, with their
// global positions; the heartbeat after skipped events carries the id of
// the last one, so a resume does not read them again.
func TestFeedStreamFilter(t *testing.T) {
	t.Parallel()
	h := feedHarness(t, func(d *api.Deps) { d.Heartbeat = time.Millisecond })
	a, b := h.place(), h.place() // 1, 2
	h.cancel(a)                  // 3
	h.place()                    // 4

	s := h.openFeed("/feed?stream=" + b)
	if e := s.nextEvent(); e.Position != 2 || e.OrderID != b {
		t.Fatalf("first event of %s: position %d of %s", b, e.Position, e.OrderID)
	}
	// Positions 3 and 4 are not b's: the next block is a heartbeat naming 4.
	for {
		blk, ok := s.next()
		if !ok {
			t.Fatal("the feed ended")
		}
		if blk.data != "" {
			t.Fatalf("an event of another order passed the filter: %s", blk.data)
		}
		if blk.id != "" {
			if !blk.comment || blk.id != "4" {
				t.Fatalf("block %+v, want a heartbeat with id 4", blk)
			}
			break
		}
	}
	h.cancel(b) // 5
	if e := s.nextEvent(); e.Position != 5 || e.OrderID != b || e.Type != "OrderCancelled" {
		t.Fatalf("live event of %s: %+v", b, e)
	}
}

// TestFeedBadPosition: a position that is no number, or is past the head,
// is a 400 problem naming the field, before any stream starts.
func TestFeedBadPosition(t *testing.T) {
	t.Parallel()
	h := feedHarness(t)
	h.place()
	for _, c := range []struct{ path, header, field string }{
		{"/feed?from=abc", "", "from"},
		{"/feed?from=-1", "", "from"},
		{"/feed?from=1.5", "", "from"},
		{"/feed?from=2", "", "from"}, // the head is 1
		{"/feed", "Last-Event-ID: x", "Last-Event-ID"},
		{"/feed?from=now", "Last-Event-ID: 99", "Last-Event-ID"},
	} {
		r := h.do("GET", c.path, "", c.header)
		h.want(r, http.StatusBadRequest, "malformed")
		if errs, _ := r.json["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != c.field {
			t.Errorf("%s %s: errors %v, want one on %s", c.path, c.header, r.json["errors"], c.field)
		}
	}
}

// TestFeedWithoutFeed: a backend without a global feed (AWS) answers 501
// saying what to use instead; the feed is behind the token like /orders.
func TestFeedWithoutFeed(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.do("GET", "/feed", "")
	h.want(r, http.StatusNotImplemented, "not_implemented")
	if !strings.Contains(r.str("detail"), "order-events") {
		t.Errorf("501 detail %q does not point to the order-events topic", r.str("detail"))
	}
	if strings.Contains(h.logs.String(), `"level":"ERROR"`) {
		t.Errorf("a 501 was logged as a server error: %s", h.logs.String())
	}

	authed := feedHarness(t, func(d *api.Deps) { d.Token = "s3cret" })
	h.want(authed.do("GET", "/feed", ""), http.StatusUnauthorized, "unauthorized")
	authed.openFeed("/feed", "Authorization: Bearer s3cret").close()
}

// TestFeedStopsOnDrain: closing FeedStop ends every open stream, so a
// server's drain does not wait for subscribers.
func TestFeedStopsOnDrain(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	h := feedHarness(t, func(d *api.Deps) { d.FeedStop = stop })
	h.place()
	s := h.openFeed("/feed")
	s.nextEvent()
	close(stop)
	for {
		if _, ok := s.next(); !ok {
			break
		}
	}
	if err := s.sc.Err(); err != nil {
		t.Fatalf("the stream ended with %v, want a clean end", err)
	}
}
