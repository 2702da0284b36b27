// Package telemetry is the ledger's Prometheus instrumentation, shared by
// both runtimes: one Metrics per process owns a registry (the Go runtime's
// and the process's collectors included), an HTTP middleware that times
// every request by chi route pattern and status class, a decorator of
// eventstore.Store that times appends and counts the events, conflicts and
// idempotent replays they produce, and gauges read at scrape time from the
// runtime's own state (feed head and consumer positions, queue depths).
//
// Guarantees and caveats:
//   - Labels are bounded: a route pattern (never a raw path; an unmatched
//     request is "unmatched"), a status class (2xx..5xx), an event type from
//     the domain's fixed set, a queue or consumer name from the topology.
//     No order ID, request ID or customer value is ever a label.
//   - Counters are per process and start at zero on each start: PromQL's
//     rate() and increase() handle the resets.
//   - ledger_events_appended_total counts events the store accepted in this
//     process; an idempotent replay appends nothing and counts only in
//     ledger_eventstore_idempotent_replays_total. Where the processors run
//     elsewhere (the AWS Lambdas), their appends are counted there.
//   - A gauge function that fails at scrape time is skipped for that scrape
//     (the series is absent, not zero), so an outage never reads as "idle".
package telemetry

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/orderledger/orderledger/eventstore"
)

// Namespace prefixes every metric of the ledger's own.
const Namespace = "ledger"

// ScrapeTimeout bounds the gauge functions of one scrape.
const ScrapeTimeout = 5 * time.Second

// Metrics is one process's instrumentation.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	appendDuration *prometheus.HistogramVec
	appendEvents   prometheus.Histogram
	eventsAppended *prometheus.CounterVec
	conflicts      prometheus.Counter
	replays        prometheus.Counter
	appendErrors   prometheus.Counter

	services *serviceMetrics
	saga     *sagaMetrics
}

// New returns Metrics with a fresh registry holding the Go runtime and
// process collectors and the ledger's own metrics.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "http", Name: "requests_total",
		Help: "HTTP requests served, by method, chi route pattern and status class.",
	}, []string{"method", "route", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
		Help:    "Time to serve an HTTP request, by method, chi route pattern and status class.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5ms .. ~16s
	}, []string{"method", "route", "code"})
	m.appendDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "eventstore", Name: "append_duration_seconds",
		Help:    "Time for an event store append to be durable (or refused), by result: ok, conflict, replay, error.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 0.1ms .. ~3s
	}, []string{"result"})
	m.appendEvents = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "eventstore", Name: "append_events",
		Help:    "Events per successful append (one append is atomic: all of its events or none).",
		Buckets: []float64{1, 2, 3, 4, 6, 8, 16},
	})
	m.eventsAppended = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "events_appended_total",
		Help: "Events appended to the event store by this process, by event type (OrderPlaced counts orders placed, OrderCompleted orders completed).",
	}, []string{"type"})
	m.conflicts = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "eventstore", Name: "conflicts_total",
		Help: "Appends refused because the stream's version had moved (optimistic concurrency conflicts).",
	})
	m.replays = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "eventstore", Name: "idempotent_replays_total",
		Help: "Appends whose idempotency key had been used: nothing appended, the original result returned.",
	})
	m.appendErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "eventstore", Name: "append_errors_total",
		Help: "Appends that failed for a reason other than a conflict (storage errors, outages, cancellations).",
	})
	m.reg.MustRegister(m.httpRequests, m.httpDuration, m.appendDuration, m.appendEvents,
		m.eventsAppended, m.conflicts, m.replays, m.appendErrors)
	m.services = newServiceMetrics(m.reg)
	m.saga = newSagaMetrics(m.reg)
	return m
}

// Registry returns the registry, for collectors of other packages.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format. Errors of a
// collector are logged by the client library into the response's absence
// of those series, never a failed scrape.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// statusClass maps 200..599 to "2xx".."5xx".
func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code/100) + "xx"
}

// Middleware counts and times every request of next, labelled with the
// route pattern chi matched. It must wrap the chi router (outside it): it
// hands the router a routing context and reads the pattern back after.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rctx := chi.RouteContext(r.Context())
		if rctx == nil {
			rctx = chi.NewRouteContext()
			r = r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, rctx))
		}
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		code := ww.Status()
		if code == 0 {
			code = http.StatusOK
		}
		route := rctx.RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		labels := prometheus.Labels{"method": method(r.Method), "route": route, "code": statusClass(code)}
		m.httpRequests.With(labels).Inc()
		m.httpDuration.With(labels).Observe(time.Since(start).Seconds())
	})
}

// method bounds the method label to the standard methods.
func method(s string) string {
	switch s {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return s
	}
	return "other"
}

// Store returns s with its appends timed and counted. Loads pass through.
func (m *Metrics) Store(s eventstore.Store) eventstore.Store { return &store{Store: s, m: m} }

type store struct {
	eventstore.Store
	m *Metrics
}

func (s *store) Append(ctx context.Context, streamID string, expected int64, events ...eventstore.Event) (eventstore.Result, error) {
	start := time.Now()
	res, err := s.Store.Append(ctx, streamID, expected, events...)
	s.m.observeAppend(start, res, err, events)
	return res, err
}

func (s *store) AppendIdempotent(ctx context.Context, key, streamID string, expected int64, events ...eventstore.Event) (eventstore.Result, error) {
	start := time.Now()
	res, err := s.Store.AppendIdempotent(ctx, key, streamID, expected, events...)
	s.m.observeAppend(start, res, err, events)
	return res, err
}

func (m *Metrics) observeAppend(start time.Time, res eventstore.Result, err error, events []eventstore.Event) {
	var conflict *eventstore.ConflictError
	result := "ok"
	switch {
	case errors.As(err, &conflict):
		result = "conflict"
		m.conflicts.Inc()
	case err != nil:
		result = "error"
		m.appendErrors.Inc()
	case res.Duplicate:
		result = "replay"
		m.replays.Inc()
	}
	m.appendDuration.WithLabelValues(result).Observe(time.Since(start).Seconds())
	if result != "ok" {
		return
	}
	m.appendEvents.Observe(float64(len(events)))
	for _, ev := range events {
		m.eventsAppended.WithLabelValues(ev.Type).Inc()
	}
}

// Gauge is one sample of a gauge read at scrape time.
type Gauge struct {
	// Labels are the values of the GaugeSet's label names, in order.
	Labels []string
	Value  float64
}

// GaugeSet registers a gauge family whose samples read returns at each
// scrape (within ScrapeTimeout). When read fails the family is absent from
// that scrape.
func (m *Metrics) GaugeSet(name, help string, labels []string, read func(ctx context.Context) ([]Gauge, error)) {
	m.reg.MustRegister(&gaugeSet{desc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil), read: read})
}

type gaugeSet struct {
	desc *prometheus.Desc
	read func(ctx context.Context) ([]Gauge, error)
}

func (g *gaugeSet) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *gaugeSet) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	samples, err := g.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(g.desc, err)
		return
	}
	for _, s := range samples {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, s.Value, s.Labels...)
	}
}

// Mount returns a handler serving GET /metrics from the registry and every
// other request from api, counted and timed by Middleware. When token is
// set, /metrics requires it as a bearer token, as the API does.
func (m *Metrics) Mount(api http.Handler, token string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Protect(m.Handler(), token))
	mux.Handle("/", m.Middleware(api))
	return mux
}

// Protect requires the bearer token on h when token is set. Both sides are
// hashed so the constant-time compare hides the token's length too.
func (m *Metrics) Protect(h http.Handler, token string) http.Handler {
	if token == "" {
		return h
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		sum := sha256.Sum256([]byte(got))
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ledger"`)
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"type":"about:blank","title":"Unauthorized","status":401,"detail":"a valid bearer token is required"}`+"\n")
			return
		}
		h.ServeHTTP(w, r)
	})
}
