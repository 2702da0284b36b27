// Package logsink is the structured-log subscription of the embedded
// runtime: a queue consumer that writes every notification (an event
// envelope) as one slog record with its event type, order ID, event ID and
// data, and the trace ID of the notification (the message's traceparent
// attribute) when it has one, as every line of the order's trace has.
package logsink

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/tracing"
	"github.com/orderledger/orderledger/messaging"
)

// Handler returns a messaging.Handler that logs each message to log at Info
// level. It never fails: a body that is not an envelope is logged raw.
func Handler(log *slog.Logger) messaging.Handler {
	return func(ctx context.Context, msg messaging.Message) error {
		var env eventstore.Event
		if err := json.Unmarshal(msg.Body, &env); err != nil {
			log.WarnContext(ctx, "notification", "message_id", msg.ID, "body", string(msg.Body))
			return nil
		}
		// The notification's trace (and span), for internal/logging's trace_id.
		ctx = tracing.Continue(ctx, msg.Attributes[messaging.AttrTraceParent])
		log.InfoContext(ctx, "notification",
			"event_type", env.Type, "order_id", env.StreamID, "event_id", env.EventID,
			"version", env.Version, "occurred_at", env.OccurredAt, "data", json.RawMessage(env.Data))
		return nil
	}
}
