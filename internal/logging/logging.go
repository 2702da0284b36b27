// Package logging is the ledger's one log format: JSON lines (log/slog's
// JSON handler) in which every line written with a context carries the
// identifiers that join it to the rest of an order's flow:
//
//	trace_id, span_id  the span in ctx (package tracing), when there is one
//	request_id         the HTTP request ctx belongs to (WithRequestID)
//	order_id           the order ctx is working on (WithOrderID)
//
// Both runtimes and the Lambdas log through New, and set it as slog's
// default so that the storage engine's and the AWS SDK's lines (through
// internal/pebblelog and internal/awsconfig) come out the same way.
//
// Caveats: a field is only added when the line does not carry it already
// (an explicit "order_id" attribute wins); lines logged without a context
// (slog.Info rather than slog.InfoContext) carry none of them; under
// WithGroup the fields are written inside the group.
package logging

import (
	"context"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Field names.
const (
	KeyTraceID   = "trace_id"
	KeySpanID    = "span_id"
	KeyRequestID = "request_id"
	KeyOrderID   = "order_id"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	orderIDKey
)

// WithRequestID returns ctx carrying the request ID id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestID returns the request ID of ctx ("" when none).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// WithOrderID returns ctx carrying the order ID id.
func WithOrderID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, orderIDKey, id)
}

// OrderID returns the order ID of ctx ("" when none).
func OrderID(ctx context.Context) string {
	id, _ := ctx.Value(orderIDKey).(string)
	return id
}

// New returns a logger writing JSON lines to w with the context fields
// added (opts as for slog.NewJSONHandler; nil: info level).
func New(w io.Writer, opts *slog.HandlerOptions) *slog.Logger {
	return slog.New(NewHandler(slog.NewJSONHandler(w, opts)))
}

// NewHandler returns next with the context fields added to every record.
func NewHandler(next slog.Handler) slog.Handler { return &handler{next: next} }

type handler struct {
	next slog.Handler
	// have is the set of field names already given by WithAttrs (outside
	// any group): those are not added again.
	have map[string]bool
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	var add [4]slog.Attr
	n := 0
	sc := trace.SpanContextFromContext(ctx)
	if sc.IsValid() {
		add[n], add[n+1] = slog.String(KeyTraceID, sc.TraceID().String()), slog.String(KeySpanID, sc.SpanID().String())
		n += 2
	}
	if id := RequestID(ctx); id != "" {
		add[n] = slog.String(KeyRequestID, id)
		n++
	}
	if id := OrderID(ctx); id != "" {
		add[n] = slog.String(KeyOrderID, id)
		n++
	}
	if n == 0 {
		return h.next.Handle(ctx, r)
	}
	r.Attrs(func(a slog.Attr) bool {
		for i := 0; i < n; i++ {
			if add[i].Key == a.Key {
				add[i].Key = "" // the line has it already
			}
		}
		return true
	})
	r = r.Clone()
	for _, a := range add[:n] {
		if a.Key != "" && !h.have[a.Key] {
			r.AddAttrs(a)
		}
	}
	return h.next.Handle(ctx, r)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	have := make(map[string]bool, len(h.have)+len(attrs))
	for k := range h.have {
		have[k] = true
	}
	for _, a := range attrs {
		have[a.Key] = true
	}
	return &handler{next: h.next.WithAttrs(attrs), have: have}
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	// Inside a group, WithAttrs keys are the group's: none is top level.
	return &handler{next: h.next.WithGroup(name), have: nil}
}
