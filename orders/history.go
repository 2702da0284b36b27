package orders

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
)

// History is an order's audit history: every event it has, oldest first,
// its data in today's schema. Its JSON is the body of GET
// /orders/{id}/events and of `ledger history --json`.
type History struct {
	OrderID string         `json:"order_id"`
	Events  []HistoryEvent `json:"events"`
}

// HistoryEvent is one event of a History.
type HistoryEvent struct {
	Version    int64               `json:"version"`
	Type       string              `json:"type"`
	EventID    string              `json:"event_id"`
	OccurredAt time.Time           `json:"occurred_at"`
	Data       json.RawMessage     `json:"data"`
	Metadata   eventstore.Metadata `json:"metadata"`
}

// History returns the audit history of order id, or order.ErrNotFound.
func (s *Service) History(ctx context.Context, id string) (History, error) {
	envs, err := s.store.Load(ctx, id, 1)
	if err != nil {
		return History{}, fmt.Errorf("orders: history of %s: %w", id, err)
	}
	if len(envs) == 0 {
		return History{}, order.ErrNotFound
	}
	h := History{OrderID: id, Events: make([]HistoryEvent, 0, len(envs))}
	for _, env := range envs {
		e, err := s.codec.Decode(env)
		if err != nil {
			return History{}, fmt.Errorf("orders: history of %s: %w: %w", id, ErrCorrupt, err)
		}
		// Today's schema, encoded again: an upcast v1 event reads as v2.
		data, err := json.Marshal(e)
		if err != nil {
			return History{}, fmt.Errorf("orders: history of %s: %w", id, err)
		}
		h.Events = append(h.Events, HistoryEvent{
			Version: env.Version, Type: env.Type, EventID: env.EventID,
			OccurredAt: env.OccurredAt.UTC(), Data: data, Metadata: env.Metadata,
		})
	}
	return h, nil
}
