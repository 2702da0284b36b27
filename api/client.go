package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
)

// This file is the client of the contract NewRouter serves: one typed
// method per route, the request and answer bodies shared with the handlers.
//
// What a Client guarantees:
//   - every answer that is not 2xx is returned as a *ResponseError carrying
//     the status, the headers, the raw body and, for application/problem+json,
//     the decoded Problem; check it with errors.As (or StatusOf);
//   - a call that could not be made or read (connection refused, timeout, a
//     cancelled ctx) returns another error, wrapped with %w: the caller
//     cannot tell whether the server acted on it, so only an idempotent call
//     (a Place with WithIdempotencyKey, a read) is safe to repeat;
//   - a 2xx answer whose body does not decode is an error wrapping
//     ErrUnexpectedAnswer: the server acted, and broke the contract;
//   - the Client never retries on its own, and reads at most
//     MaxResponseBytes of an answer;
//   - a Client is safe for concurrent use.

// ErrUnexpectedAnswer is wrapped by the error of a 2xx answer whose body
// is not what the contract promises.
var ErrUnexpectedAnswer = errors.New("api: unexpected answer")

// MaxResponseBytes bounds the body of one answer the client reads.
const MaxResponseBytes = 64 << 20

// Client calls the ledger's REST API at one base URL.
type Client struct {
	base  string // scheme://host[/prefix], no trailing slash
	http  *http.Client
	token string
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithToken sends "Authorization: Bearer <token>" on every call (the API's
// LEDGER_API_TOKEN); empty sends none.
func WithToken(token string) ClientOption { return func(c *Client) { c.token = token } }

// WithHTTPClient makes calls with hc (its transport and timeout) instead of
// http.DefaultClient.
func WithHTTPClient(hc *http.Client) ClientOption {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// NewClient returns a client of the API at baseURL, an http:// or https://
// URL with a host (a path prefix and a trailing slash are allowed).
func NewClient(baseURL string, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("api: client: base URL %q is not an http:// or https:// URL of a host", baseURL)
	}
	c := &Client{base: strings.TrimRight(u.String(), "/"), http: http.DefaultClient}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// CallOption sets a header of one call. An empty value sets nothing.
type CallOption func(http.Header)

// WithRequestID sends X-Request-ID: the server echoes it, logs it and
// stores it in the metadata of the events the call appends.
func WithRequestID(id string) CallOption { return setHeader("X-Request-ID", id) }

// WithCorrelationID sends X-Correlation-ID (Place, Cancel): the flow the
// call belongs to, stored in the events' metadata; without it the server
// uses the request ID.
func WithCorrelationID(id string) CallOption { return setHeader("X-Correlation-ID", id) }

// WithIdempotencyKey sends Idempotency-Key (Place): a repeat with the same
// key and body answers the first order (Order.Replayed) and creates
// nothing; the same key with another body is a 422.
func WithIdempotencyKey(key string) CallOption { return setHeader("Idempotency-Key", key) }

// WithIfMatch sends If-Match (Cancel): an entity tag such as Order.ETag
// (`"3"`), or "*"; the cancel then applies only to that version (412
// otherwise).
func WithIfMatch(etag string) CallOption { return setHeader("If-Match", etag) }

func setHeader(name, value string) CallOption {
	return func(h http.Header) {
		if value != "" {
			h.Set(name, value)
		}
	}
}

// Order is an order as one answer showed it, with the headers the contract
// sends with it.
type Order struct {
	projections.View
	// ETag is the entity tag of the order's version (`"3"`), for WithIfMatch.
	ETag string
	// Location is the order's path (/orders/{id}); set by Place only.
	Location string
	// Replayed reports Idempotent-Replayed: true, the answer to a repeated
	// Idempotency-Key: nothing was created.
	Replayed bool
	// RequestID is the answer's X-Request-ID.
	RequestID string
}

// GetQuery selects which state of an order Get returns. The zero value
// reads the read model, which trails the log by a moment.
type GetQuery struct {
	// Consistent folds the event log instead (read-your-writes).
	Consistent bool
	// Version, when positive, returns the order as of that version.
	Version int64
	// AsOf, when set, returns the order as it was at that time. It cannot
	// be combined with Version.
	AsOf time.Time
}

// ResponseError is an answer of the API that is not 2xx.
type ResponseError struct {
	// Method and Path are the call's ("POST", "/orders").
	Method, Path string
	// Status is the HTTP status code.
	Status int
	// Header holds the answer's headers (Retry-After, WWW-Authenticate, ...).
	Header http.Header
	// Problem is the decoded RFC 9457 body when the answer is
	// application/problem+json, else the zero Problem.
	Problem Problem
	// Body is the answer's body as read.
	Body []byte
}

func (e *ResponseError) Error() string {
	msg := fmt.Sprintf("api: %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	switch {
	case e.Problem.Detail != "":
		msg += ": " + e.Problem.Detail
	case e.Problem.Title != "":
		msg += ": " + e.Problem.Title
	default:
		if b := strings.TrimSpace(string(e.Body)); b != "" {
			msg += ": " + b[:min(len(b), 200)]
		}
	}
	return msg
}

// IsProblem reports whether the answer was application/problem+json.
func (e *ResponseError) IsProblem() bool { return e.Problem.Type != "" }

// Code returns the error code of the problem's type ("invalid" for
// urn:orderledger:problem:invalid), or "" when the type is not one of ours.
func (p Problem) Code() domain.Code {
	code, ok := strings.CutPrefix(p.Type, ProblemTypePrefix)
	if !ok {
		return ""
	}
	return domain.Code(code)
}

// StatusOf returns the HTTP status of err's *ResponseError, or 0 when err
// holds none (nil, or a call that got no answer).
func StatusOf(err error) int {
	var re *ResponseError
	if errors.As(err, &re) {
		return re.Status
	}
	return 0
}

// Place places an order (POST /orders) and returns it with its ETag,
// Location and whether it was Replayed. Options: WithIdempotencyKey,
// WithCorrelationID, WithRequestID.
func (c *Client) Place(ctx context.Context, req PlaceRequest, opts ...CallOption) (Order, error) {
	return c.order(ctx, http.MethodPost, "/orders", nil, req, opts)
}

// Get returns order id (GET /orders/{id}), as q selects.
func (c *Client) Get(ctx context.Context, id string, q GetQuery, opts ...CallOption) (Order, error) {
	v := url.Values{}
	if q.Consistent {
		v.Set("consistent", "true")
	}
	if q.Version != 0 {
		v.Set("version", strconv.FormatInt(q.Version, 10))
	}
	if !q.AsOf.IsZero() {
		v.Set("as_of", q.AsOf.UTC().Format(time.RFC3339Nano))
	}
	return c.order(ctx, http.MethodGet, "/orders/"+url.PathEscape(id), v, nil, opts)
}

// Cancel cancels order id (POST /orders/{id}/cancel) and returns it. An
// empty reason sends no body. Options: WithIfMatch, WithCorrelationID,
// WithRequestID.
func (c *Client) Cancel(ctx context.Context, id, reason string, opts ...CallOption) (Order, error) {
	var body any
	if reason != "" {
		body = CancelRequest{Reason: reason}
	}
	return c.order(ctx, http.MethodPost, "/orders/"+url.PathEscape(id)+"/cancel", nil, body, opts)
}

func (c *Client) order(ctx context.Context, method, path string, q url.Values, body any, opts []CallOption) (Order, error) {
	var o Order
	h, err := c.call(ctx, method, path, q, body, &o.View, opts)
	if err != nil {
		return Order{}, err
	}
	o.ETag, o.Location, o.RequestID = h.Get("ETag"), h.Get("Location"), h.Get("X-Request-ID")
	o.Replayed = h.Get("Idempotent-Replayed") == "true"
	return o, nil
}

// List returns one page of orders, newest first (GET /orders). Empty
// fields of q are not sent: the server's defaults apply (limit 20). The
// query is sent as given; the server validates it.
func (c *Client) List(ctx context.Context, q projections.ListQuery, opts ...CallOption) (projections.Page, error) {
	v := url.Values{}
	if q.Status != "" {
		v.Set("status", string(q.Status))
	}
	if q.Customer != "" {
		v.Set("customer", q.Customer)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var res ListResponse
	if _, err := c.call(ctx, http.MethodGet, "/orders", v, nil, &res, opts); err != nil {
		return projections.Page{}, err
	}
	p := projections.Page{Items: res.Items}
	if res.NextCursor != nil {
		p.NextCursor = *res.NextCursor
	}
	return p, nil
}

// ListAll yields every order q matches, newest first, following the
// cursors from q.Cursor on, one List call (of q.Limit orders) per page. A
// failed call is yielded once, with the zero View, and ends the sequence.
func (c *Client) ListAll(ctx context.Context, q projections.ListQuery, opts ...CallOption) iter.Seq2[projections.View, error] {
	return func(yield func(projections.View, error) bool) {
		for {
			page, err := c.List(ctx, q, opts...)
			if err != nil {
				yield(projections.View{}, err)
				return
			}
			for _, v := range page.Items {
				if !yield(v, nil) {
					return
				}
			}
			if page.NextCursor == "" {
				return
			}
			q.Cursor = page.NextCursor
		}
	}
}

// History returns the audit history of order id (GET /orders/{id}/events).
func (c *Client) History(ctx context.Context, id string, opts ...CallOption) (orders.History, error) {
	var h orders.History
	if _, err := c.call(ctx, http.MethodGet, "/orders/"+url.PathEscape(id)+"/events", nil, nil, &h, opts); err != nil {
		return orders.History{}, err
	}
	return h, nil
}

// VerifyHistory returns the audit history of order id with its chain
// verified by the server (GET /orders/{id}/events?verify=true): a broken
// chain is h.Chain.Holds false, not an error.
func (c *Client) VerifyHistory(ctx context.Context, id string, opts ...CallOption) (orders.History, error) {
	var h orders.History
	if _, err := c.call(ctx, http.MethodGet, "/orders/"+url.PathEscape(id)+"/events?verify=true", nil, nil, &h, opts); err != nil {
		return orders.History{}, err
	}
	return h, nil
}

// Health returns nil when the server is alive (GET /healthz answers 200).
func (c *Client) Health(ctx context.Context, opts ...CallOption) error {
	var h Health
	_, err := c.call(ctx, http.MethodGet, "/healthz", nil, nil, &h, opts)
	return err
}

// Ready returns the readiness checks when the server is ready (GET
// /readyz). When it is not, the error is a *ResponseError with status 503
// whose Problem holds the checks.
func (c *Client) Ready(ctx context.Context, opts ...CallOption) (Readiness, error) {
	var r Readiness
	if _, err := c.call(ctx, http.MethodGet, "/readyz", nil, nil, &r, opts); err != nil {
		return Readiness{}, err
	}
	return r, nil
}

// StartRebuild starts a read-model rebuild (POST /admin/projections/rebuild)
// and returns its status; a rebuild already running is a 409.
func (c *Client) StartRebuild(ctx context.Context, opts ...CallOption) (projections.RebuildStatus, error) {
	var st projections.RebuildStatus
	if _, err := c.call(ctx, http.MethodPost, "/admin/projections/rebuild", nil, nil, &st, opts); err != nil {
		return projections.RebuildStatus{}, err
	}
	return st, nil
}

// RebuildStatus returns the running or last rebuild's status (GET
// /admin/projections/rebuild).
func (c *Client) RebuildStatus(ctx context.Context, opts ...CallOption) (projections.RebuildStatus, error) {
	var st projections.RebuildStatus
	if _, err := c.call(ctx, http.MethodGet, "/admin/projections/rebuild", nil, nil, &st, opts); err != nil {
		return projections.RebuildStatus{}, err
	}
	return st, nil
}

// DeadLetters lists up to limit dead letters (GET /admin/dlq; 0: the
// server's default) with the order each names.
func (c *Client) DeadLetters(ctx context.Context, limit int, opts ...CallOption) (DeadLetterList, error) {
	var q url.Values
	if limit > 0 {
		q = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	var l DeadLetterList
	if _, err := c.call(ctx, http.MethodGet, "/admin/dlq", q, nil, &l, opts); err != nil {
		return DeadLetterList{}, err
	}
	return l, nil
}

// RedriveDeadLetters redrives the dead letters whose order still owes work
// and deletes those of settled orders (POST /admin/dlq/redrive); with
// dryRun it only reports what it would do.
func (c *Client) RedriveDeadLetters(ctx context.Context, dryRun bool, opts ...CallOption) (RedriveResponse, error) {
	var rep RedriveResponse
	q := url.Values{"dry_run": {strconv.FormatBool(dryRun)}}
	if _, err := c.call(ctx, http.MethodPost, "/admin/dlq/redrive", q, nil, &rep, opts); err != nil {
		return RedriveResponse{}, err
	}
	return rep, nil
}

// OpenAPI returns the server's OpenAPI document (GET /openapi.json).
func (c *Client) OpenAPI(ctx context.Context, opts ...CallOption) (json.RawMessage, error) {
	var doc json.RawMessage
	if _, err := c.call(ctx, http.MethodGet, "/openapi.json", nil, nil, &doc, opts); err != nil {
		return nil, err
	}
	return doc, nil
}

// call sends one request (body, when not nil, as JSON) and decodes a 2xx
// answer into out. It returns the answer's headers.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, body, out any, opts []CallOption) (http.Header, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("api: %s %s: encode: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for _, o := range opts {
		o(req.Header)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("api: %s %s: read the answer: %w", method, path, err)
	}
	if len(b) > MaxResponseBytes {
		return nil, fmt.Errorf("api: %s %s: the answer is larger than %d bytes", method, path, MaxResponseBytes)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		re := &ResponseError{Method: method, Path: path, Status: res.StatusCode, Header: res.Header, Body: b}
		if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt == "application/problem+json" {
			_ = json.Unmarshal(b, &re.Problem)
		}
		return nil, re
	}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("%w: %s %s: %d with an undecodable body: %w", ErrUnexpectedAnswer, method, path, res.StatusCode, err)
	}
	return res.Header, nil
}
