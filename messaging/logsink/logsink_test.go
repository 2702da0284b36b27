package logsink_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/orderledger/orderledger/internal/logging"
	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/messaging/logsink"
)

// TestNotificationLineJoinsItsTrace: the notification's line carries the
// order and event, and the trace ID of the message's traceparent; a
// message without one has no trace_id.
func TestNotificationLineJoinsItsTrace(t *testing.T) {
	t.Parallel()
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	body := []byte(`{"event_id":"E1","stream_id":"01ORDER","version":4,"type":"OrderCompleted","data":{}}`)
	for _, tc := range []struct {
		attrs map[string]string
		want  any
	}{
		{map[string]string{messaging.AttrTraceParent: "00-" + traceID + "-00f067aa0ba902b7-01"}, traceID},
		{map[string]string{}, nil},
	} {
		var buf bytes.Buffer
		h := logsink.Handler(logging.New(&buf, nil))
		if err := h(context.Background(), messaging.Message{ID: "m1", Body: body, Attributes: tc.attrs}); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatalf("%q: %v", buf.String(), err)
		}
		if m["msg"] != "notification" || m["order_id"] != "01ORDER" || m["event_id"] != "E1" || m["trace_id"] != tc.want {
			t.Errorf("line %v, want trace_id %v", m, tc.want)
		}
	}
}
