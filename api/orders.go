package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
)

// placeRequest is the body of POST /orders.
type placeRequest struct {
	CustomerName string `json:"customer_name"`
	ProductName  string `json:"product_name"`
	Quantity     int    `json:"quantity"`
}

// cancelRequest is the optional body of POST /orders/{id}/cancel.
type cancelRequest struct {
	Reason string `json:"reason"`
}

// MaxCancelReason is the longest cancellation reason accepted, in characters.
const MaxCancelReason = 500

// cancelRetries bounds how often a cancel without If-Match reloads and
// decides again after losing a race with another writer.
const cancelRetries = 5

// History is an order's audit history, the body of GET /orders/{id}/events.
type History struct {
	OrderID string         `json:"order_id"`
	Events  []HistoryEvent `json:"events"`
}

// HistoryEvent is one event of a History, its data in today's schema.
type HistoryEvent struct {
	Version    int64               `json:"version"`
	Type       string              `json:"type"`
	EventID    string              `json:"event_id"`
	OccurredAt time.Time           `json:"occurred_at"`
	Data       json.RawMessage     `json:"data"`
	Metadata   eventstore.Metadata `json:"metadata"`
}

// listResponse is the body of GET /orders.
type listResponse struct {
	Items      []projections.View `json:"items"`
	NextCursor *string            `json:"next_cursor"`
}

func (s *server) placeOrder(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	key := r.Header.Get("Idempotency-Key")
	if key != "" && !validRequestID(key) {
		s.writeError(w, r, malformed("Idempotency-Key", "must be 1 to 128 visible ASCII characters"))
		return
	}
	var req placeRequest
	if err := decodeJSON(r, &req, true); err != nil {
		s.writeError(w, r, err)
		return
	}
	events, err := order.Decide(order.Order{}, order.Place{CustomerName: req.CustomerName, ProductName: req.ProductName, Quantity: req.Quantity})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.now()
	id := s.IDs(now)
	rid := RequestID(ctx)
	envs, err := s.encode(events, now, eventstore.Metadata{RequestID: rid, CorrelationID: correlationID(r, rid)})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var res eventstore.Result
	if key != "" {
		res, err = s.Store.AppendIdempotent(ctx, key, id, 0, envs...)
	} else {
		res, err = s.Store.Append(ctx, id, 0, envs...)
	}
	if err != nil {
		s.writeError(w, r, fmt.Errorf("api: place order: %w", err))
		return
	}
	if !res.Duplicate {
		for i := range envs {
			envs[i].StreamID, envs[i].Version = id, int64(i+1)
		}
		v, err := projections.Fold(s.Codec, envs)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeOrder(w, http.StatusCreated, v, true)
		return
	}
	// A repeated key: answer what the first request was answered, the
	// order as it was right after its placement.
	stored, err := s.Store.Load(ctx, res.StreamID, 1)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("api: place order: load original: %w", err))
		return
	}
	v, err := projections.FoldAsOf(s.Codec, stored, projections.AsOf{Version: res.Version})
	if err != nil {
		s.writeError(w, r, fmt.Errorf("api: place order: fold original: %w", err))
		return
	}
	placed := events[0].(order.Placed)
	if v.CustomerName != placed.CustomerName || v.ProductName != placed.ProductName || v.Quantity != placed.Quantity {
		s.writeError(w, r, &domain.Error{Code: domain.Invalid, Message: "the Idempotency-Key was already used with a different request",
			Fields: map[string]string{"Idempotency-Key": "was already used with a different request"}})
		return
	}
	w.Header().Set("Idempotent-Replayed", "true")
	s.writeOrder(w, http.StatusCreated, v, true)
}

func (s *server) getOrder(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, err := orderID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	var asOf time.Time
	var version int64
	consistent := false
	if v := q.Get("consistent"); v != "" {
		if consistent, err = strconv.ParseBool(v); err != nil {
			s.writeError(w, r, malformed("consistent", "must be true or false"))
			return
		}
	}
	if v := q.Get("as_of"); v != "" {
		if asOf, err = time.Parse(time.RFC3339Nano, v); err != nil {
			s.writeError(w, r, malformed("as_of", "must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z"))
			return
		}
	}
	if v := q.Get("version"); v != "" {
		if version, err = strconv.ParseInt(v, 10, 64); err != nil || version < 1 {
			s.writeError(w, r, malformed("version", "must be a positive integer"))
			return
		}
	}
	if !asOf.IsZero() && version > 0 {
		s.writeError(w, r, malformed("as_of", "as_of and version cannot be combined"))
		return
	}

	if !consistent && asOf.IsZero() && version == 0 {
		v, err := s.Views.Get(ctx, id)
		if err == nil {
			s.writeOrder(w, http.StatusOK, v, false)
			return
		}
		if domain.CodeOf(err) != domain.NotFound {
			s.writeError(w, r, fmt.Errorf("api: get order: %w", err))
			return
		}
		// Not projected yet (or never placed): the log decides.
	}
	envs, err := s.Store.Load(ctx, id, 1)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("api: get order: %w", err))
		return
	}
	if len(envs) == 0 {
		s.writeError(w, r, order.ErrNotFound)
		return
	}
	if version > envs[len(envs)-1].Version {
		s.writeError(w, r, domain.Errorf(domain.NotFound, "order has no version %d (latest is %d)", version, envs[len(envs)-1].Version))
		return
	}
	if !asOf.IsZero() && asOf.Before(envs[0].OccurredAt) {
		s.writeError(w, r, domain.Errorf(domain.NotFound, "order did not exist at %s", asOf.UTC().Format(time.RFC3339Nano)))
		return
	}
	v, err := projections.FoldAsOf(s.Codec, envs, projections.AsOf{Version: version, Time: asOf})
	if err != nil {
		s.writeError(w, r, fmt.Errorf("api: get order: %w", err))
		return
	}
	s.writeOrder(w, http.StatusOK, v, false)
}

func (s *server) orderEvents(w http.ResponseWriter, r *http.Request) {
	id, err := orderID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	envs, err := s.Store.Load(r.Context(), id, 1)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("api: order events: %w", err))
		return
	}
	if len(envs) == 0 {
		s.writeError(w, r, order.ErrNotFound)
		return
	}
	h, err := HistoryOf(s.Codec, id, envs)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(envs[len(envs)-1].Version))
	writeJSON(w, http.StatusOK, h)
}

// HistoryOf returns the audit history of order id from its envelopes,
// each event's data decoded and upcast to today's schema.
func HistoryOf(c *orders.Codec, id string, envs []eventstore.Event) (History, error) {
	h := History{OrderID: id, Events: make([]HistoryEvent, 0, len(envs))}
	for _, env := range envs {
		e, err := c.Decode(env)
		if err != nil {
			return History{}, err
		}
		data, err := json.Marshal(e)
		if err != nil {
			return History{}, fmt.Errorf("api: history of %s: %w", id, err)
		}
		h.Events = append(h.Events, HistoryEvent{
			Version: env.Version, Type: env.Type, EventID: env.EventID,
			OccurredAt: env.OccurredAt.UTC(), Data: data, Metadata: env.Metadata,
		})
	}
	return h, nil
}

func (s *server) listOrders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lq := projections.ListQuery{Status: order.Status(q.Get("status")), Customer: q.Get("customer"), Cursor: q.Get("cursor"), Limit: DefaultLimit}
	if lq.Status != "" && !lq.Status.Valid() {
		s.writeError(w, r, malformed("status", "must be one of Pending, Completed, Failed, Cancelled"))
		return
	}
	if len(lq.Customer) > 4*order.MaxNameLength {
		s.writeError(w, r, malformed("customer", "is too long"))
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			s.writeError(w, r, malformed("limit", "must be an integer from 1 to %d", MaxLimit))
			return
		}
		lq.Limit = n
	}
	page, err := s.Views.List(r.Context(), lq)
	if err != nil {
		if domain.CodeOf(err) == domain.Invalid {
			err = malformed("cursor", "is not a cursor from this listing")
		}
		s.writeError(w, r, err)
		return
	}
	resp := listResponse{Items: page.Items}
	if resp.Items == nil {
		resp.Items = []projections.View{}
	}
	if page.NextCursor != "" {
		resp.NextCursor = &page.NextCursor
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *server) cancelOrder(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, err := orderID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	want, anyVersion, hasIfMatch, err := parseIfMatch(r.Header.Get("If-Match"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req cancelRequest
	if err := decodeJSON(r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if n := len([]rune(strings.TrimSpace(req.Reason))); n > MaxCancelReason {
		s.writeError(w, r, &domain.Error{Code: domain.Invalid, Message: "order: invalid cancellation",
			Fields: map[string]string{"reason": fmt.Sprintf("must be at most %d characters", MaxCancelReason)}})
		return
	}
	rid := RequestID(ctx)
	for attempt := 1; ; attempt++ {
		envs, err := s.Store.Load(ctx, id, 1)
		if err != nil {
			s.writeError(w, r, fmt.Errorf("api: cancel order: %w", err))
			return
		}
		if len(envs) == 0 {
			s.writeError(w, r, order.ErrNotFound)
			return
		}
		evs, err := s.Codec.DecodeAll(envs)
		if err != nil {
			s.writeError(w, r, fmt.Errorf("api: cancel order: %w", err))
			return
		}
		o := order.Fold(id, evs...)
		if hasIfMatch && !anyVersion && !containsVersion(want, o.Version) {
			s.writeError(w, r, &eventstore.ConflictError{StreamID: id, Expected: want[0], Actual: o.Version})
			return
		}
		events, err := order.Decide(o, order.Cancel{Reason: req.Reason})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if len(events) == 0 { // already cancelled
			v, err := projections.Fold(s.Codec, envs)
			if err != nil {
				s.writeError(w, r, fmt.Errorf("api: cancel order: %w", err))
				return
			}
			s.writeOrder(w, http.StatusOK, v, false)
			return
		}
		now := s.now()
		meta := eventstore.Metadata{RequestID: rid, CorrelationID: envs[0].Metadata.CorrelationID, CausationID: rid}
		if meta.CorrelationID == "" {
			meta.CorrelationID = correlationID(r, rid)
		}
		news, err := s.encode(events, now, meta)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		_, err = s.Store.Append(ctx, id, o.Version, news...)
		var ce *eventstore.ConflictError
		if errors.As(err, &ce) && !hasIfMatch {
			if attempt < cancelRetries {
				continue // someone else wrote first: decide again on fresh state
			}
			err = domain.Errorf(domain.Conflict, "the order kept changing while cancelling; retry")
		}
		if err != nil {
			s.writeError(w, r, fmt.Errorf("api: cancel order: %w", err))
			return
		}
		for i := range news {
			news[i].StreamID, news[i].Version = id, o.Version+int64(i+1)
		}
		after, err := projections.Fold(s.Codec, append(envs, news...))
		if err != nil {
			s.writeError(w, r, fmt.Errorf("api: cancel order: %w", err))
			return
		}
		s.writeOrder(w, http.StatusOK, after, false)
		return
	}
}

// encode wraps events in envelopes with fresh event IDs.
func (s *server) encode(events []order.Event, at time.Time, meta eventstore.Metadata) ([]eventstore.Event, error) {
	out := make([]eventstore.Event, len(events))
	for i, e := range events {
		env, err := s.Codec.Encode(e, s.IDs(at), at, meta)
		if err != nil {
			return nil, err
		}
		out[i] = env
	}
	return out, nil
}

// writeOrder writes an order view with its ETag (and Location on creation).
func (s *server) writeOrder(w http.ResponseWriter, status int, v projections.View, created bool) {
	w.Header().Set("ETag", etag(v.Version))
	if created {
		w.Header().Set("Location", "/orders/"+v.OrderID)
	}
	writeJSON(w, status, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// correlationID is X-Correlation-ID when the client sent a valid one, else
// the request ID: the request starts the flow.
func correlationID(r *http.Request, requestID string) string {
	if c := r.Header.Get("X-Correlation-ID"); validRequestID(c) {
		return c
	}
	return requestID
}

// orderID returns the {id} path parameter, canonicalised, or a 400 error.
func orderID(r *http.Request) (string, error) {
	id := strings.ToUpper(chi.URLParam(r, "id"))
	if !domain.ValidULID(id) {
		return "", malformed("id", "must be a ULID: 26 characters of Crockford base32")
	}
	return id, nil
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// parseIfMatch reads an If-Match header of strong entity tags ("3") or "*".
// Bare numbers are accepted too. Weak tags never match (RFC 9110 13.1.1).
func parseIfMatch(h string) (versions []int64, any, present bool, err error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return nil, false, false, nil
	}
	if h == "*" {
		return nil, true, true, nil
	}
	for _, part := range strings.Split(h, ",") {
		part = strings.TrimSpace(part)
		if strings.HasPrefix(part, "W/") {
			versions = append(versions, -1)
			continue
		}
		part = strings.TrimSuffix(strings.TrimPrefix(part, `"`), `"`)
		v, perr := strconv.ParseInt(part, 10, 64)
		if perr != nil || v < 1 {
			return nil, false, true, malformed("If-Match", `must be an entity tag such as "3" or *`)
		}
		versions = append(versions, v)
	}
	return versions, false, true, nil
}

func containsVersion(vs []int64, v int64) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// decodeJSON reads r's JSON object body into dst. With required false an
// empty body is fine and leaves dst alone.
func decodeJSON(r *http.Request, dst any, required bool) error {
	if !required && r.ContentLength == 0 {
		return nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" || required {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return domain.Errorf(codeUnsupportedMedia, "the body must be application/json, not %q", ct)
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge()
		}
		return domain.Errorf(codeMalformed, "the request body could not be read")
	}
	body = bytes.TrimSpace(body)
	if !utf8.Valid(body) {
		// encoding/json would silently turn invalid bytes into U+FFFD.
		return domain.Errorf(codeMalformed, "the body is not valid UTF-8")
	}
	if len(body) == 0 {
		if required {
			return domain.Errorf(codeMalformed, "a JSON object body is required")
		}
		return nil
	}
	if body[0] != '{' {
		return domain.Errorf(codeMalformed, "the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return domain.Errorf(codeMalformed, "malformed JSON at byte %d", se.Offset)
		case errors.As(err, &te) && te.Field != "":
			return &domain.Error{Code: codeMalformed, Message: "a field has the wrong type",
				Fields: map[string]string{te.Field: "must be " + jsonType(te.Type.Kind().String())}}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
			return &domain.Error{Code: codeMalformed, Message: "the body has an unknown field",
				Fields: map[string]string{name: "is not a known field"}}
		default:
			return domain.Errorf(codeMalformed, "malformed JSON")
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return domain.Errorf(codeMalformed, "unexpected data after the JSON object")
	}
	return nil
}

func jsonType(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "an integer"
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "a boolean"
	}
	return "of another type"
}
