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
	"github.com/orderledger/orderledger/projections"
)

// PlaceRequest is the body of POST /orders.
type PlaceRequest struct {
	CustomerName string `json:"customer_name"`
	ProductName  string `json:"product_name"`
	Quantity     int    `json:"quantity"`
}

// CancelRequest is the optional body of POST /orders/{id}/cancel.
type CancelRequest struct {
	Reason string `json:"reason"`
}

// ListResponse is the body of GET /orders: a page of orders, newest first,
// and the cursor of the next page (null on the last).
type ListResponse struct {
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
	var req PlaceRequest
	if err := decodeJSON(r, &req, true); err != nil {
		s.writeError(w, r, err)
		return
	}
	rid := RequestID(ctx)
	p, err := s.orders.Place(ctx, key, order.Place{CustomerName: req.CustomerName, ProductName: req.ProductName, Quantity: req.Quantity},
		eventstore.Metadata{RequestID: rid, CorrelationID: correlationID(r, rid)})
	if err != nil {
		s.writeError(w, r, fmt.Errorf("api: place order: %w", err))
		return
	}
	v, err := projections.Fold(s.Codec, p.Events)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("api: place order: %w", err))
		return
	}
	if p.Replayed {
		// A repeated key: the answer the first request got.
		w.Header().Set("Idempotent-Replayed", "true")
	}
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
	st, err := s.orders.Load(ctx, id)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("api: get order: %w", err))
		return
	}
	envs := st.Events
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
	h, err := s.orders.History(r.Context(), id)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("api: order events: %w", err))
		return
	}
	w.Header().Set("ETag", etag(h.Events[len(h.Events)-1].Version))
	writeJSON(w, http.StatusOK, h)
}

func (s *server) listOrders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lq := projections.ListQuery{Status: order.Status(q.Get("status")), Customer: q.Get("customer"), Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.writeError(w, r, malformed("limit", "must be an integer from 1 to %d", projections.MaxLimit))
			return
		}
		lq.Limit = n
	}
	// The read model's own rules, checked here so that a bad parameter is
	// a malformed request (400) rather than an invalid order (422).
	lq, err := lq.Validate()
	var de *domain.Error
	if errors.As(err, &de) {
		bad := &domain.Error{Code: codeMalformed, Message: "the query parameters are invalid: see errors", Fields: de.Fields}
		for f, msg := range de.Fields {
			if len(de.Fields) == 1 {
				bad = malformed(f, "%s", msg)
			}
		}
		s.writeError(w, r, bad)
		return
	}
	page, err := s.Views.List(r.Context(), lq)
	if err != nil {
		if domain.CodeOf(err) == domain.Invalid {
			err = malformed("cursor", "is not a cursor from this listing")
		}
		s.writeError(w, r, err)
		return
	}
	resp := ListResponse{Items: page.Items}
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
	var req CancelRequest
	if err := decodeJSON(r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	cancel := order.Cancel{Reason: req.Reason}
	rid := RequestID(ctx)
	st, err := s.orders.Update(ctx, id, eventstore.Metadata{RequestID: rid, CorrelationID: correlationID(r, rid), CausationID: rid},
		func(o order.Order) ([]order.Event, error) {
			if hasIfMatch && !anyVersion && o.Exists() && !containsVersion(want, o.Version) {
				return nil, &eventstore.ConflictError{StreamID: id, Expected: want[0], Actual: o.Version}
			}
			return order.Decide(o, cancel)
		})
	if err != nil {
		s.writeError(w, r, fmt.Errorf("api: cancel order: %w", err))
		return
	}
	v, err := projections.Fold(s.Codec, st.Events)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("api: cancel order: %w", err))
		return
	}
	s.writeOrder(w, http.StatusOK, v, false)
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
