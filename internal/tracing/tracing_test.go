package tracing_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderledger/orderledger/internal/tracing"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestEnabled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://localhost:4318/v1/traces"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318", "OTEL_SDK_DISABLED": "true"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
		{map[string]string{"OTEL_SERVICE_NAME": "x"}, false},
	} {
		if got := tracing.Enabled(env(tc.env)); got != tc.want {
			t.Errorf("Enabled(%v) = %v, want %v", tc.env, got, tc.want)
		}
	}
}

func TestContinueAndTraceParent(t *testing.T) {
	t.Parallel()
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := tracing.Continue(context.Background(), tp)
	if got := tracing.TraceParent(ctx); got != tp {
		t.Fatalf("TraceParent = %q, want %q", got, tp)
	}
	if got := tracing.TraceIDOf(tp); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("TraceIDOf = %q", got)
	}
	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"} {
		if got := tracing.TraceParent(tracing.Continue(context.Background(), bad)); got != "" {
			t.Errorf("Continue(%q): TraceParent = %q, want none", bad, got)
		}
	}
	// A no-op span (tracing off) passes the remote context on unchanged.
	ctx2, span := noop.NewTracerProvider().Tracer("x").Start(ctx, "op")
	defer span.End()
	if got := tracing.TraceParent(ctx2); got != tp {
		t.Fatalf("through a no-op span: %q, want %q", got, tp)
	}
	h := http.Header{}
	tracing.Inject(ctx, h)
	if h.Get("traceparent") != tp {
		t.Fatalf("Inject: header %q", h.Get("traceparent"))
	}
	if got := tracing.TraceParent(tracing.Extract(context.Background(), h)); got != tp {
		t.Fatalf("Extract: %q", got)
	}
	if got := tracing.TraceParent(tracing.Extract(context.Background(), http.Header{"Traceparent": {tp}, "Tracestate": {"k=v"}})); got != tp {
		t.Fatalf("Extract of canonical headers: %q", got)
	}
	if sc := trace.SpanContextFromContext(tracing.Extract(context.Background(), http.Header{"Traceparent": {tp}, "Tracestate": {"k=v"}})); sc.TraceState().Get("k") != "v" {
		t.Fatalf("Extract dropped tracestate: %v", sc.TraceState())
	}
	h = http.Header{}
	tracing.Inject(context.Background(), h)
	if len(h) != 0 {
		t.Fatalf("Inject without a span set %v", h)
	}
}

func TestContinueFirst(t *testing.T) {
	t.Parallel()
	const a = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const b = "00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b8-01"
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{a, b}, a},
		{[]string{"", b}, b},
		{[]string{"garbage", b}, b},
		{[]string{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", a}, a},
		{[]string{"", "garbage"}, ""},
		{nil, ""},
	} {
		if got := tracing.TraceParent(tracing.ContinueFirst(context.Background(), tc.in...)); got != tc.want {
			t.Errorf("ContinueFirst(%q) carries %q, want %q", tc.in, got, tc.want)
		}
	}
	// None valid: ctx as it was, with the trace it already had.
	in := tracing.Continue(context.Background(), b)
	if got := tracing.TraceParent(tracing.ContinueFirst(in, "", "garbage")); got != b {
		t.Errorf("ContinueFirst of nothing valid dropped the context's trace: %q", got)
	}
}

// TestSetup exports a span over OTLP/HTTP to a local endpoint when
// OTEL_EXPORTER_OTLP_ENDPOINT is set, and installs nothing when it is not.
func TestSetup(t *testing.T) {
	before := otel.GetTracerProvider()
	shutdown, err := tracing.Setup(context.Background(), env(nil), "ledger-test")
	if err != nil {
		t.Fatal(err)
	}
	if otel.GetTracerProvider() != before {
		t.Fatal("Setup without an endpoint installed a tracer provider")
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, span := tracing.Start(context.Background(), "off", trace.SpanKindInternal)
	if span.IsRecording() {
		t.Fatal("a span records with tracing off")
	}
	span.End()

	var posts atomic.Int32
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/traces" && r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			body.Store(string(b))
			posts.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL) // the exporter reads the environment itself
	shutdown, err = tracing.Setup(context.Background(), env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}), "ledger-test")
	if err != nil {
		t.Fatal(err)
	}
	defer otel.SetTracerProvider(before)
	ctx, span := tracing.Start(context.Background(), "exported-span", trace.SpanKindServer)
	if !span.IsRecording() || tracing.TraceID(ctx) == "" {
		t.Fatal("tracing on: span not recording")
	}
	span.End()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if posts.Load() == 0 {
		t.Fatal("no OTLP export reached the endpoint")
	}
	if b, _ := body.Load().(string); !strings.Contains(b, "exported-span") || !strings.Contains(b, "ledger-test") {
		t.Fatalf("export does not carry the span name and the service name: %q", b)
	}
}

// TestSetupHonoursTheSampler: OTEL_TRACES_SAMPLER is read by the SDK's
// provider that Setup installs (always_off: spans start, none records).
// Not parallel: it sets the environment and the global provider.
func TestSetupHonoursTheSampler(t *testing.T) {
	before := otel.GetTracerProvider()
	defer otel.SetTracerProvider(before)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	shutdown, err := tracing.Setup(context.Background(), env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}), "ledger-test")
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	if _, span := tracing.Start(context.Background(), "sampled-out", trace.SpanKindInternal); span.IsRecording() {
		t.Fatal("OTEL_TRACES_SAMPLER=always_off: the span records")
	}
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	shutdown2, err := tracing.Setup(context.Background(), env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}), "ledger-test")
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown2(context.Background())
	if _, span := tracing.Start(context.Background(), "sampled", trace.SpanKindInternal); !span.IsRecording() {
		t.Fatal("default sampler: the span does not record")
	}
}

// TestStartIsFreeWhenOff: with no SDK installed, Start starts nothing and
// allocates nothing, and what it returns still carries an incoming trace
// context (so events and messages still pass it on). Not parallel: it
// needs the process's default provider.
func TestStartIsFreeWhenOff(t *testing.T) {
	if _, sdk := otel.GetTracerProvider().(interface{ ForceFlush(context.Context) error }); sdk {
		t.Fatal("an SDK provider is installed before this test; it needs the default")
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	in := tracing.Continue(context.Background(), tp)
	ctx, span := tracing.Start(in, "op", trace.SpanKindInternal)
	span.End()
	if got := tracing.TraceParent(ctx); got != tp || span.IsRecording() {
		t.Fatalf("off: TraceParent = %q (recording %v), want %q passed on", got, span.IsRecording(), tp)
	}
	if n := testing.AllocsPerRun(100, func() {
		_, s := tracing.Start(in, "op", trace.SpanKindInternal)
		s.End()
	}); n != 0 {
		t.Fatalf("Start allocates %v times per call with tracing off, want 0", n)
	}
}
