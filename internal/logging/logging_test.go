package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/orderledger/orderledger/internal/logging"
)

// line logs one line with ctx and returns it decoded.
func line(t *testing.T, ctx context.Context, log func(l *slog.Logger)) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	log(logging.New(&buf, nil))
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
	}
	return m
}

func TestHandlerAddsContextFields(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("test").Start(context.Background(), "op")
	defer span.End()
	ctx = logging.WithOrderID(logging.WithRequestID(ctx, "req-1"), "01ORDER")

	m := line(t, ctx, func(l *slog.Logger) { l.InfoContext(ctx, "hello", "k", "v") })
	want := map[string]string{
		"trace_id":   span.SpanContext().TraceID().String(),
		"span_id":    span.SpanContext().SpanID().String(),
		"request_id": "req-1",
		"order_id":   "01ORDER",
		"msg":        "hello",
		"k":          "v",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %q (line %v)", k, m[k], v, m)
		}
	}
}

func TestHandlerOmitsFieldsWithoutContext(t *testing.T) {
	t.Parallel()
	for name, ctx := range map[string]context.Context{
		"no span, no IDs":   context.Background(),
		"a request ID only": logging.WithRequestID(context.Background(), "req-2"),
	} {
		m := line(t, ctx, func(l *slog.Logger) { l.InfoContext(ctx, "hello") })
		for _, k := range []string{"trace_id", "span_id", "order_id"} {
			if _, ok := m[k]; ok {
				t.Errorf("%s: line has %s without one in ctx: %v", name, k, m)
			}
		}
		if got, want := m["request_id"] != nil, logging.RequestID(ctx) != ""; got != want {
			t.Errorf("%s: request_id present = %v, want %v: %v", name, got, want, m)
		}
	}
	// Without a context at all.
	m := line(t, nil, func(l *slog.Logger) { l.Info("plain") })
	if len(m) != 3 { // time, level, msg
		t.Errorf("a line without context has extra fields: %v", m)
	}
}

func TestHandlerDoesNotRepeatAField(t *testing.T) {
	t.Parallel()
	ctx := logging.WithOrderID(context.Background(), "01CTX")
	var buf bytes.Buffer
	l := logging.New(&buf, nil)
	l.InfoContext(ctx, "explicit", "order_id", "01EXPLICIT")
	l.With("order_id", "01WITH").InfoContext(ctx, "with")
	for i, raw := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		if n := bytes.Count(raw, []byte(`"order_id"`)); n != 1 {
			t.Errorf("line %d has order_id %d times: %s", i, n, raw)
		}
		if bytes.Contains(raw, []byte("01CTX")) {
			t.Errorf("line %d: the context's order ID replaced the explicit one: %s", i, raw)
		}
	}
}
