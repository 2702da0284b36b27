// Package tracing is the ledger's OpenTelemetry tracing, shared by both
// runtimes and the Lambdas: Setup installs the process's tracer provider
// from the standard OTEL_* environment, and the helpers here start spans
// and carry W3C Trace Context (traceparent) across the places where the
// ledger's work leaves the process: an HTTP request or call (a header), a
// stored event (eventstore.Metadata.TraceParent) and a queue message (the
// messaging.AttrTraceParent attribute).
//
// Guarantees and caveats:
//   - Off and free unless asked: without OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (or with OTEL_SDK_DISABLED=true or
//     OTEL_TRACES_EXPORTER=none) no SDK is installed and Start starts no
//     span (no allocation): the context keeps the span context it had.
//     So an incoming traceparent is still passed on, into events, messages
//     and calls, while nothing is recorded or exported.
//   - On, spans are batched and exported over OTLP/HTTP (protobuf) to the
//     endpoint; every other OTEL_EXPORTER_OTLP_* setting (headers, timeout,
//     compression), OTEL_TRACES_SAMPLER (and _ARG) and OTEL_BSP_* (the
//     batch's queue and sizes) are read by the SDK itself. The default
//     samples every trace. An endpoint that does not answer costs dropped
//     spans and an error line from the SDK, never a failed request: a
//     refused connection drops the batch at once; a timeout is retried
//     with backoff until the batch's 30 s export timeout, while the SDK's
//     bounded queue drops the spans that do not fit.
//   - Propagation is W3C Trace Context only (traceparent; tracestate is not
//     stored in events).
//   - Spans are started on the tracer provider installed when they start
//     (otel.GetTracerProvider), so a test may install its own.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Name is the instrumentation scope of every span of the ledger.
const Name = "github.com/orderledger/orderledger"

// HeaderTraceParent is the W3C Trace Context header (and message attribute)
// name.
const HeaderTraceParent = "traceparent"

// propagator is W3C Trace Context, whatever the global propagator is.
var propagator = propagation.TraceContext{}

// Enabled reports whether getenv asks for traces to be exported: an OTLP
// endpoint is set and the SDK is not disabled.
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")), "none") {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs the W3C Trace Context propagator and, when Enabled, a
// tracer provider exporting over OTLP/HTTP, as the process's global ones.
// service names the process in the exported resource unless
// OTEL_SERVICE_NAME is set. The returned shutdown flushes the spans still
// batched and stops the exporter (a no-op when tracing is off); call it
// once, before the process exits. Setup is for a process's main, once.
func Setup(ctx context.Context, getenv func(string) string, service string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	if !Enabled(getenv) {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", service)}
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := newProvider(exp, res, getenv)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// newProvider is the tracer provider Setup installs: spans batched to exp.
func newProvider(exp sdktrace.SpanExporter, res *resource.Resource, getenv func(string) string) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
}

// ForceFlush exports the spans the installed provider still batches, when
// it is the SDK's (a Lambda calls it before its invocation returns, since
// the function may be frozen right after). Otherwise it does nothing.
func ForceFlush(ctx context.Context) {
	if tp, ok := otel.GetTracerProvider().(interface{ ForceFlush(context.Context) error }); ok {
		_ = tp.ForceFlush(ctx)
	}
}

// Start starts a span named name as a child of the span in ctx (or of the
// remote span context Continue put there), of the given kind.
//
// With no SDK installed (tracing off) it starts nothing: it returns ctx as
// it is and the span already in it (a non-recording one, or none), so the
// span context an incoming traceparent put there is still what is passed
// on, and a call costs no allocation.
//
// On, the span's kind is passed as an option built once per kind, and
// attrs are set on the started span rather than passed as a
// trace.WithAttributes option: the SDK copies them into the span either
// way, and the option route costs three more allocations per span (the
// options slice, the boxed option and the start config's copy). So a
// sampler does not see attrs (the SDK's own samplers, and those
// OTEL_TRACES_SAMPLER names, never look at attributes).
func Start(ctx context.Context, name string, kind trace.SpanKind, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	t := tracer()
	if !t.recording {
		return ctx, trace.SpanFromContext(ctx)
	}
	opts := kindOptions[trace.SpanKindInternal] // what the SDK makes of a kind out of range
	if k := int(kind); k >= 0 && k < len(kindOptions) {
		opts = kindOptions[k]
	}
	ctx, span := t.tracer.Start(ctx, name, opts...)
	if len(attrs) > 0 {
		span.SetAttributes(attrs...)
	}
	return ctx, span
}

// kindOptions holds, for each span kind, the start options giving it,
// built once: passed on as a slice they allocate nothing per span.
var kindOptions = func() [trace.SpanKindConsumer + 1][]trace.SpanStartOption {
	var o [trace.SpanKindConsumer + 1][]trace.SpanStartOption
	for k := range o {
		o[k] = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKind(k))}
	}
	return o
}()

// cachedTracer is the ledger's tracer of the provider it came from.
type cachedTracer struct {
	provider  trace.TracerProvider
	tracer    trace.Tracer
	recording bool // the provider is an SDK's (it can flush), not the global no-op
}

var current atomic.Pointer[cachedTracer]

// tracer returns the ledger's tracer of the installed provider, asking the
// provider only when it changed (a provider's Tracer takes a lock). The
// providers installed (the SDK's, the global default) are pointers, so
// comparable.
func tracer() *cachedTracer {
	tp := otel.GetTracerProvider()
	if c := current.Load(); c != nil && c.provider == tp {
		return c
	}
	_, sdk := tp.(interface{ ForceFlush(context.Context) error })
	c := &cachedTracer{provider: tp, tracer: tp.Tracer(Name), recording: sdk}
	current.Store(c)
	return c
}

// End ends span, marking it failed with err when err is not nil.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// TraceParent returns the traceparent of the span context in ctx
// ("00-<trace ID>-<span ID>-<flags>"), or "" when ctx carries none.
func TraceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

// TraceID returns the trace ID of the span context in ctx as 32 lowercase
// hex digits, or "" when ctx carries none.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

// TraceIDOf returns the trace ID of a traceparent, or "" when it is not a
// valid one.
func TraceIDOf(traceparent string) string {
	return TraceID(Continue(context.Background(), traceparent))
}

// Continue returns ctx carrying traceparent as the remote parent of the
// spans started from it. An empty or malformed traceparent leaves ctx as
// it is (spans started from it begin a new trace, or continue the one ctx
// already has).
func Continue(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagator.Extract(ctx, traceParentCarrier(traceparent))
}

// ContinueFirst is Continue with the first of traceparents that is a
// valid one (each parsed once, no context built for the invalid ones);
// with none, ctx as it is.
func ContinueFirst(ctx context.Context, traceparents ...string) context.Context {
	for _, tp := range traceparents {
		if c := Continue(ctx, tp); c != ctx { // Continue returns ctx itself for an empty or malformed one
			return c
		}
	}
	return ctx
}

// traceParentCarrier is a carrier holding one traceparent and nothing
// else: what Continue extracts from, without a map per call.
type traceParentCarrier string

func (c traceParentCarrier) Get(key string) string {
	if key == HeaderTraceParent {
		return string(c)
	}
	return ""
}

func (traceParentCarrier) Set(string, string) {}

func (traceParentCarrier) Keys() []string { return []string{HeaderTraceParent} }

// Extract returns ctx carrying the trace context of the request headers h
// (traceparent, tracestate) as the remote parent.
func Extract(ctx context.Context, h http.Header) context.Context {
	return propagator.Extract(ctx, headerCarrier(h))
}

// Inject sets the traceparent (and tracestate) headers of the span context
// in ctx on h; it sets nothing when ctx carries none.
func Inject(ctx context.Context, h http.Header) {
	propagator.Inject(ctx, headerCarrier(h))
}

// headerCarrier is propagation.HeaderCarrier reading and writing the two
// Trace Context headers under their canonical keys directly: Header.Get
// and Set canonicalise a lowercase key into a new string on every call.
type headerCarrier http.Header

const (
	canonicalTraceParent = "Traceparent" // textproto.CanonicalMIMEHeaderKey(HeaderTraceParent)
	canonicalTraceState  = "Tracestate"
)

func canonical(key string) string {
	switch key {
	case HeaderTraceParent:
		return canonicalTraceParent
	case "tracestate":
		return canonicalTraceState
	}
	return textproto.CanonicalMIMEHeaderKey(key)
}

func (c headerCarrier) Get(key string) string {
	if v := c[canonical(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c headerCarrier) Set(key, value string) { c[canonical(key)] = []string{value} }

func (c headerCarrier) Keys() []string { return propagation.HeaderCarrier(c).Keys() }

// WithMessageAttr returns attrs with the traceparent of the span context in
// ctx under key, when attrs has no such key and ctx carries a span
// context; otherwise attrs itself. attrs is never modified (a copy is
// returned).
func WithMessageAttr(ctx context.Context, attrs map[string]string, key string) map[string]string {
	if _, ok := attrs[key]; ok {
		return attrs
	}
	tp := TraceParent(ctx)
	if tp == "" {
		return attrs
	}
	out := make(map[string]string, len(attrs)+1)
	for k, v := range attrs {
		out[k] = v
	}
	out[key] = tp
	return out
}
