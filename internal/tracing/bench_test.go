package tracing

import (
	"context"
	"net"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// closedEndpoint returns host:port of a local port where nothing listens
// (one just closed), as in the BENCHMARKS.md runs exporting to nowhere.
func closedEndpoint(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// installExporting installs, for the benchmark, the provider Setup
// installs (newProvider), exporting over OTLP/HTTP to a closed port: every
// span is started, ended, batched, encoded and its export fails, so the
// allocations counted include the exporter's. It returns a flush to call
// before the timer stops.
func installExporting(b *testing.B) (flush func()) {
	b.Helper()
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(closedEndpoint(b)), otlptracehttp.WithInsecure())
	if err != nil {
		b.Fatal(err)
	}
	res, err := resource.New(context.Background(), resource.WithAttributes(attribute.String("service.name", "bench")), resource.WithTelemetrySDK())
	if err != nil {
		b.Fatal(err)
	}
	before := otel.GetTracerProvider()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {})) // the failed exports
	tp := newProvider(exp, res, func(string) string { return "" })
	otel.SetTracerProvider(tp)
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		otel.SetTracerProvider(before)
	})
	return func() { _ = tp.ForceFlush(context.Background()) }
}

// exportBatch is the batch span processor's default batch size: the
// benchmarks flush every exportBatch spans, so that the queue never fills
// and drops spans unexported (which would hide the encoding's cost).
const exportBatch = 512

const benchParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// discard is an exporter that drops every span: with it the benchmarks
// measure the SDK alone (Start, End, the batch processor's queue), the
// floor of any tracing built on it, whatever the exporter.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// installDiscarding installs the provider Setup installs with the
// discarding exporter.
func installDiscarding(b *testing.B) (flush func()) {
	b.Helper()
	before := otel.GetTracerProvider()
	tp := newProvider(discard{}, resource.Empty(), func(string) string { return "" })
	otel.SetTracerProvider(tp)
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		otel.SetTracerProvider(before)
	})
	return func() { _ = tp.ForceFlush(context.Background()) }
}

// BenchmarkSpan is one span of the ledger's kind (a child, with the
// attributes its call sites give) from Start to End and through the
// exporter, with tracing on and every trace sampled.
func BenchmarkSpan(b *testing.B) { benchmarkSpan(b, installExporting(b)) }

// BenchmarkSpanSDKOnly is BenchmarkSpan with the discarding exporter: what
// the SDK costs before any encoding.
func BenchmarkSpanSDKOnly(b *testing.B) { benchmarkSpan(b, installDiscarding(b)) }

func benchmarkSpan(b *testing.B, flush func()) {
	parent := Continue(context.Background(), benchParent)
	const id = "01M89DMVT2QB88CQVBCCMPKH9W"
	for _, bc := range []struct {
		name  string
		start func() trace.Span // as the call sites call Start
	}{
		{"attrs=0", func() trace.Span {
			_, span := Start(parent, "saga payment", trace.SpanKindInternal)
			return span
		}},
		{"attrs=1", func() trace.Span {
			_, span := Start(parent, "process order", trace.SpanKindConsumer, attribute.String("order_id", id))
			return span
		}},
		{"attrs=3", func() trace.Span {
			_, span := Start(parent, "eventstore append", trace.SpanKindInternal,
				attribute.String("order_id", id), attribute.Int64("expected_version", 1), attribute.Int("events", 2))
			return span
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				End(bc.start(), nil)
				if n++; n%exportBatch == 0 {
					flush() // as the exporter keeps up in ledger bench e2e: no span dropped
				}
			}
			flush()
		})
	}
}

// BenchmarkPropagation is the traceparent work of the call sites: reading
// one (Continue, TraceIDOf) and writing one (TraceParent) per hop.
func BenchmarkPropagation(b *testing.B) {
	ctx := Continue(context.Background(), benchParent)
	b.Run("Continue", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Continue(context.Background(), benchParent)
		}
	})
	b.Run("ContinueFirst", func(b *testing.B) { // the processor: the message's attribute, else the event's metadata
		b.ReportAllocs()
		for b.Loop() {
			ContinueFirst(context.Background(), "", benchParent)
		}
	})
	h := http.Header{"Traceparent": {benchParent}}
	b.Run("Extract", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Extract(context.Background(), h)
		}
	})
	b.Run("Inject", func(b *testing.B) {
		b.ReportAllocs()
		out := http.Header{}
		for b.Loop() {
			Inject(ctx, out)
		}
	})
	b.Run("TraceIDOf", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			TraceIDOf(benchParent)
		}
	})
	b.Run("TraceParent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			TraceParent(ctx)
		}
	})
}
