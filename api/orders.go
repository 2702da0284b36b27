package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
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
	// A parameter given is given, whatever its value: the zero time
	// (0001-01-01T00:00:00Z) is a time before any order, an empty value
	// is malformed.
	hasAsOf, hasVersion := q.Has("as_of"), q.Has("version")
	if hasAsOf && hasVersion {
		s.writeError(w, r, malformed("as_of", "as_of and version cannot be combined"))
		return
	}
	if hasAsOf {
		if asOf, err = time.Parse(time.RFC3339Nano, q.Get("as_of")); err != nil {
			s.writeError(w, r, malformed("as_of", "must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z"))
			return
		}
	}
	if hasVersion {
		if version, err = strconv.ParseInt(q.Get("version"), 10, 64); err != nil || version < 1 {
			s.writeError(w, r, malformed("version", "must be a positive integer"))
			return
		}
	}

	if !consistent && !hasAsOf && !hasVersion {
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
	if hasAsOf && asOf.Before(envs[0].OccurredAt) {
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
	history := s.orders.History
	switch v := r.URL.Query().Get("verify"); v {
	case "", "false":
	case "true":
		history = s.orders.VerifyHistory
	default:
		s.writeError(w, r, malformed("verify", "must be true or false"))
		return
	}
	h, err := history(r.Context(), id)
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
	im, err := parseIfMatch(r.Header.Values("If-Match"))
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
			if o.Exists() && !im.matches(o.Version) {
				return nil, &eventstore.ConflictError{StreamID: id, Expected: im.expected(), Actual: o.Version}
			}
			return order.Decide(o, cancel)
		})
	var ce *eventstore.ConflictError
	if errors.As(err, &ce) && im.present {
		err = im.failed(ce.Actual)
	}
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

// ifMatch is a parsed If-Match header (RFC 9110 13.1.1).
type ifMatch struct {
	present bool
	any     bool     // "*": any current version
	tags    []string // the entity tags as sent, in order
}

// maxShownTags is how many of the tags asked for a 412 lists.
const maxShownTags = 8

// parseIfMatch reads the If-Match header lines: "*" or a comma-separated
// list of entity tags ("3", W/"3"); bare numbers (3) are taken too. Empty
// list elements are ignored (RFC 9110 5.6.1). This server's ETags are
// versions, so a tag whose content is not a positive version ("one", "0")
// is refused as malformed rather than compared.
func parseIfMatch(values []string) (ifMatch, error) {
	h := strings.Trim(strings.Join(values, ","), " \t")
	if h == "" {
		return ifMatch{}, nil
	}
	if h == "*" {
		return ifMatch{present: true, any: true}, nil
	}
	bad := malformed("If-Match", `must be * or a list of entity tags naming versions, such as "3" or "3", W/"2"`)
	m := ifMatch{present: true}
	for rest := h; ; {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		if rest[0] == ',' {
			rest = rest[1:]
			continue
		}
		n := entityTagLen(rest)
		if n == 0 || !validVersion(tagVersion(rest[:n])) {
			return ifMatch{}, bad
		}
		m.tags = append(m.tags, rest[:n])
		rest = strings.TrimLeft(rest[n:], " \t")
		if rest != "" && rest[0] != ',' {
			return ifMatch{}, bad
		}
	}
	if len(m.tags) == 0 {
		return ifMatch{}, bad
	}
	return m, nil
}

// entityTagLen returns the length of the entity tag (or bare number) s
// starts with, 0 when it starts with none.
func entityTagLen(s string) int {
	i := 0
	if strings.HasPrefix(s, "W/") {
		i = 2
	} else if s != "" && s[0] >= '0' && s[0] <= '9' {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i
	}
	if i >= len(s) || s[i] != '"' {
		return 0
	}
	for i++; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i + 1
		case c < 0x21 || c > 0x7e:
			return 0
		}
	}
	return 0
}

// tagVersion returns the content of an entity tag: W/ and quotes removed.
func tagVersion(tag string) string {
	return strings.Trim(strings.TrimPrefix(tag, "W/"), `"`)
}

// validVersion reports whether s is a version as ETags spell it: a positive
// decimal number without leading zeros.
func validVersion(s string) bool {
	v, err := strconv.ParseInt(s, 10, 64)
	return err == nil && v > 0 && strconv.FormatInt(v, 10) == s
}

// matches reports whether the header lets a change of version go ahead:
// no header, "*", or a strong tag equal to the version's ETag. A weak tag
// never matches (If-Match compares strongly).
func (m ifMatch) matches(version int64) bool {
	if !m.present || m.any {
		return true
	}
	want := strconv.FormatInt(version, 10)
	for _, t := range m.tags {
		if !strings.HasPrefix(t, "W/") && tagVersion(t) == want {
			return true
		}
	}
	return false
}

// expected returns the version the first strong tag names, 0 when none does.
func (m ifMatch) expected() int64 {
	for _, t := range m.tags {
		if !strings.HasPrefix(t, "W/") {
			v, _ := strconv.ParseInt(tagVersion(t), 10, 64)
			return v
		}
	}
	return 0
}

// failed is the 412 for an order at version current that none of the tags
// matched: it names the version and what was asked.
func (m ifMatch) failed(current int64) error {
	shown := m.tags[:min(len(m.tags), maxShownTags)]
	asked := strings.Join(shown, ", ")
	if len(m.tags) > len(shown) {
		asked += fmt.Sprintf(" and %d more", len(m.tags)-len(shown))
	}
	msg := fmt.Sprintf("the order is at version %d (ETag %s), not one If-Match asked for: %s", current, etag(current), asked)
	for _, t := range m.tags {
		if strings.HasPrefix(t, "W/") {
			msg += " (a weak tag never matches: If-Match compares strongly, RFC 9110 13.1.1)"
			break
		}
	}
	return domain.Errorf(domain.PreconditionFailed, "%s", msg)
}

// decodeJSON reads r's JSON object body into dst. With required false an
// empty body is fine and leaves dst alone.
func decodeJSON(r *http.Request, dst any, required bool) error {
	if err := checkEncoding(r.Header.Values("Content-Encoding")); err != nil {
		return err
	}
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
	if i := loneSurrogate(body); i >= 0 {
		// encoding/json would silently turn it into U+FFFD too.
		return domain.Errorf(codeMalformed, "the body is not valid Unicode: a lone UTF-16 surrogate escape at byte %d", i)
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
	return checkKeys(body, jsonNames(dst))
}

// checkEncoding accepts a body sent as is: no Content-Encoding, or only
// identity. Other codings are refused (415, with Accept-Encoding: identity,
// RFC 9110 15.5.16) rather than decoded: bodies are small JSON objects, and
// a decompressor would be one more way to send the server 64 KiB that
// unpacks to far more.
func checkEncoding(values []string) error {
	for _, v := range values {
		for _, coding := range strings.Split(v, ",") {
			if c := strings.TrimSpace(coding); c != "" && !strings.EqualFold(c, "identity") {
				return domain.Errorf(codeUnsupportedMedia, "the body has Content-Encoding %q; only identity is accepted: send it uncompressed", c)
			}
		}
	}
	return nil
}

// loneSurrogate returns the offset of the first \u escape in body's JSON
// strings that is half of a UTF-16 surrogate pair without the other half,
// or -1. It reads valid JSON exactly and anything else without harm
// (the decoder then reports the syntax error).
func loneSurrogate(body []byte) int {
	in := false // inside a string
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case !in:
			in = c == '"'
		case c == '"':
			in = false
		case c == '\\':
			r, ok := unicodeEscape(body, i)
			switch {
			case !ok:
				i++ // another escape: skip the escaped byte
			case utf16.IsSurrogate(r) && r < 0xdc00: // a high half: a low half must follow
				if lo, ok := unicodeEscape(body, i+6); !ok || lo < 0xdc00 || lo > 0xdfff {
					return i
				}
				i += 11
			case utf16.IsSurrogate(r):
				return i
			default:
				i += 5
			}
		}
	}
	return -1
}

// unicodeEscape decodes the escape \uXXXX at body[i:], if there is one.
func unicodeEscape(body []byte, i int) (rune, bool) {
	if i+6 > len(body) || body[i] != '\\' || body[i+1] != 'u' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(body[i+2:i+6]), 16, 16)
	return rune(n), err == nil
}

// checkKeys requires every key of body's object, which has decoded, to be
// one of names spelled exactly, and no key to appear twice: encoding/json
// alone matches names case-insensitively and lets the last of equal keys
// win, while the OpenAPI document says additionalProperties: false.
func checkKeys(body []byte, names map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // the object's '{'
		return domain.Errorf(codeMalformed, "malformed JSON")
	}
	seen := make(map[string]bool, len(names))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return domain.Errorf(codeMalformed, "malformed JSON")
		}
		key, _ := tok.(string)
		switch {
		case !names[key]:
			return &domain.Error{Code: codeMalformed, Message: "the body has an unknown field (names are case-sensitive)",
				Fields: map[string]string{key: "is not a known field"}}
		case seen[key]:
			return &domain.Error{Code: codeMalformed, Message: "the body gives a field twice",
				Fields: map[string]string{key: "appears more than once"}}
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return domain.Errorf(codeMalformed, "malformed JSON")
		}
	}
	return nil
}

// jsonNames returns the JSON names of the fields of the struct dst points to.
func jsonNames(dst any) map[string]bool {
	t := reflect.TypeOf(dst).Elem()
	names := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			names[name] = true
		}
	}
	return names
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
