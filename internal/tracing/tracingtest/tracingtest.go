// Package tracingtest records the spans of a test process in memory, with
// the SDK's span recorder (go.opentelemetry.io/otel/sdk/trace/tracetest),
// so that tests can assert on whole traces.
//
// Install sets the process's global tracer provider, once per test binary:
// every test of the package then records into the same Recorder, so a
// test selects its own spans by trace ID (ByTrace), never by count.
package tracingtest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Recorder holds the spans ended in this process since Install.
type Recorder struct {
	rec *tracetest.SpanRecorder
}

var (
	once sync.Once
	rec  *Recorder
)

// Install installs a recording tracer provider (every span sampled) as the
// global one, the first time it is called, and returns its Recorder.
func Install(t testing.TB) *Recorder {
	t.Helper()
	once.Do(func() {
		r := tracetest.NewSpanRecorder()
		otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r)))
		rec = &Recorder{rec: r}
	})
	return rec
}

// Ended returns every span ended so far.
func (r *Recorder) Ended() []sdktrace.ReadOnlySpan { return r.rec.Ended() }

// ByTrace returns the spans ended so far in trace id (32 hex digits), in
// the order they ended.
func (r *Recorder) ByTrace(id string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.rec.Ended() {
		if s.SpanContext().TraceID().String() == id {
			out = append(out, s)
		}
	}
	return out
}

// Named returns the spans of spans whose name is name.
func Named(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// Names returns the names of spans, in order.
func Names(spans []sdktrace.ReadOnlySpan) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name()
	}
	return out
}

// Parent returns the span of spans that is s's parent, or nil.
func Parent(spans []sdktrace.ReadOnlySpan, s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	for _, p := range spans {
		if p.SpanContext().SpanID() == s.Parent().SpanID() {
			return p
		}
	}
	return nil
}

// Wait waits until trace id holds a span of every one of names (spans end
// asynchronously: a notification after the order has settled) and returns
// the trace's spans; after limit it fails the test, naming what is missing.
func (r *Recorder) Wait(t testing.TB, id string, limit time.Duration, names ...string) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		spans := r.ByTrace(id)
		have := Names(spans)
		missing := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return slices.Contains(have, n) })
		if len(missing) == 0 {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s lacks %v; has %v", id, missing, have)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitAttr waits until a span with attribute key = value has ended and
// returns it; after limit it fails the test.
func (r *Recorder) WaitAttr(t testing.TB, key, value string, limit time.Duration) sdktrace.ReadOnlySpan {
	t.Helper()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, s := range r.rec.Ended() {
			for _, kv := range s.Attributes() {
				if string(kv.Key) == key && kv.Value.AsString() == value {
					return s
				}
			}
		}
	}
	t.Fatalf("no span with %s=%s", key, value)
	return nil
}

// NameOf returns s's name, or "none" for nil.
func NameOf(s sdktrace.ReadOnlySpan) string {
	if s == nil {
		return "none"
	}
	return s.Name()
}
