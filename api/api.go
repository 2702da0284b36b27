// Package api is orderledger's REST API: a chi router over the order use
// cases of package orders (the command side and the audit history) and the
// order read model (the query side). Its handlers parse, call and write:
// they hold no retry loop and no domain rule.
//
// It owns the HTTP contract: routes with an optional trailing slash, RFC 9457
// problem+json errors with one table from error kind to status, request IDs
// carried into event metadata, JSON access logs, optional bearer-token
// authentication, a 64 KiB body limit, and the OpenAPI 3.1 document served at
// /openapi.json. It declares the narrow ports it needs (Views) and is wired
// to real adapters by package app (embedded) and the API Lambda (AWS), which
// both serve the handler NewRouter returns.
//
// Beside the server is its client: NewClient returns a Client with one
// typed method per route, sharing the request and answer bodies with the
// handlers (PlaceRequest, CancelRequest, ListResponse, Readiness, Problem),
// so that the contract is written once. Every program that calls the API
// (`ledger history --url`, the benches, the soak, the end-to-end and
// reliability tests) goes through it. A non-2xx answer is a
// *ResponseError; the client never retries (see client.go for its
// guarantees).
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
)

// MaxBodyBytes is the largest request body accepted (HTTP 413 above it).
const MaxBodyBytes = 64 << 10

// Views is the read side the API queries: the Get and List of a
// projections.ReadModel, which every read-model adapter satisfies.
type Views interface {
	// Get returns the view of order id, or an error of kind domain.NotFound.
	Get(ctx context.Context, id string) (projections.View, error)
	// List returns one page of orders, newest first. A cursor it did not
	// issue is an error of kind domain.Invalid.
	List(ctx context.Context, q projections.ListQuery) (projections.Page, error)
}

var _ Views = projections.ReadModel(nil)

// Check is one readiness check.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Rebuilds starts and reports read-model rebuilds in the background
// (*projections.Rebuilds is one).
type Rebuilds interface {
	// Start starts a rebuild and returns its status, or an error of kind
	// domain.Conflict while one runs. The API passes a context detached
	// from the request; servers bind the rebuild to their own lifetime.
	Start(ctx context.Context) (projections.RebuildStatus, error)
	// Status returns the running or last rebuild's status.
	Status() projections.RebuildStatus
}

var _ Rebuilds = (*projections.Rebuilds)(nil)

// Deps is what the router needs. Store, Views and Codec are required.
type Deps struct {
	Store eventstore.Store
	Views Views
	Codec *orders.Codec
	// Clock and IDs default to the wall clock and crypto-random ULIDs.
	Clock domain.Clock
	IDs   domain.IDSource
	// Logger receives the JSON access log and server errors; nil discards.
	Logger *slog.Logger
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// /orders, /admin and /feed; health and the OpenAPI document stay open.
	Token string
	// Ready reports readiness checks for /readyz; nil means always ready.
	Ready func(ctx context.Context) []Check
	// Rebuilds serves POST (start) and GET (status) on
	// /admin/projections/rebuild; nil answers 503.
	Rebuilds Rebuilds
	// DeadLetters serves GET /admin/dlq and POST /admin/dlq/redrive
	// through the dead-letter use cases of package orders; nil answers 503.
	DeadLetters orders.DeadLetterQueue
	// Feed, when set, serves GET /feed (Server-Sent Events over the
	// store's change feed, see feed.go); nil answers 501 (the AWS backend
	// has no global order).
	Feed eventstore.Feed
	// FeedStop, when set, is closed when the server begins to drain: every
	// open /feed stream then ends, so that the drain need not wait for
	// clients that never hang up.
	FeedStop <-chan struct{}
	// Heartbeat is how often an idle /feed stream sends a comment line so
	// that proxies keep it open (0: DefaultHeartbeat).
	Heartbeat time.Duration
}

// server holds the handlers' dependencies.
type server struct {
	Deps
	orders *orders.Service
	log    *slog.Logger
}

// NewRouter returns the API handler. It panics when a required dependency is
// missing: that is a wiring bug, found at start-up, never at request time.
func NewRouter(d Deps) http.Handler {
	switch {
	case d.Store == nil:
		panic("api: NewRouter: Deps.Store is required")
	case d.Views == nil:
		panic("api: NewRouter: Deps.Views is required")
	case d.Codec == nil:
		panic("api: NewRouter: Deps.Codec is required")
	}
	if d.Clock == nil {
		d.Clock = domain.SystemClock
	}
	if d.IDs == nil {
		d.IDs = domain.NewULIDSource(nil)
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	svc, err := orders.New(orders.Config{Store: d.Store, Codec: d.Codec, Clock: d.Clock, IDs: d.IDs})
	if err != nil {
		panic("api: NewRouter: " + err.Error())
	}
	s := &server{Deps: d, orders: svc, log: d.Logger}

	r := chi.NewRouter()
	r.Use(s.requestID, s.traceRequest, s.accessLog, s.recoverer, limitBody, middleware.StripSlashes, middleware.GetHead)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, domain.Errorf(domain.NotFound, "no such resource: %s", r.URL.Path))
	})
	r.MethodNotAllowed(s.methodNotAllowed(r))

	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Get("/openapi.json", serveOpenAPI)
	r.Group(func(r chi.Router) {
		r.Use(s.auth)
		r.Post("/orders", s.placeOrder)
		r.Get("/orders", s.listOrders)
		r.Get("/orders/{id}", s.getOrder)
		r.Get("/orders/{id}/events", s.orderEvents)
		r.Post("/orders/{id}/cancel", s.cancelOrder)
		r.Post("/admin/projections/rebuild", s.startRebuild)
		r.Get("/admin/projections/rebuild", s.rebuildStatus)
		r.Get("/admin/dlq", s.listDeadLetters)
		r.Post("/admin/dlq/redrive", s.redriveDeadLetters)
		r.Get("/feed", s.feed)
	})
	return r
}

// now returns the injected clock's time in UTC.
func (s *server) now() time.Time { return s.Clock().UTC() }
