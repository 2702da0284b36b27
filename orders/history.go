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
	// Chain says whether the order's audit chain holds; set only by
	// VerifyHistory (GET /orders/{id}/events?verify=true).
	Chain *Chain `json:"chain,omitempty"`
}

// HistoryEvent is one event of a History.
type HistoryEvent struct {
	Version    int64               `json:"version"`
	Type       string              `json:"type"`
	EventID    string              `json:"event_id"`
	OccurredAt time.Time           `json:"occurred_at"`
	Data       json.RawMessage     `json:"data"`
	Metadata   eventstore.Metadata `json:"metadata"`
	// PrevHash and Hash are the event's links in the audit chain, over the
	// event as stored (see package eventstore); absent on an event stored
	// before the chain and not yet migrated.
	PrevHash eventstore.Hash `json:"prev_hash,omitzero"`
	Hash     eventstore.Hash `json:"hash,omitzero"`
}

// History returns the audit history of order id, or order.ErrNotFound.
func (s *Service) History(ctx context.Context, id string) (History, error) {
	return s.history(ctx, id, false)
}

// VerifyHistory is History with its chain verified: from the events as
// stored, before any upcasting, so an upcast event verifies as it was
// written. A broken chain is reported in History.Chain, not as an error;
// the history of a broken chain is still what is stored.
func (s *Service) VerifyHistory(ctx context.Context, id string) (History, error) {
	return s.history(ctx, id, true)
}

func (s *Service) history(ctx context.Context, id string, verify bool) (History, error) {
	envs, err := s.store.Load(ctx, id, 1)
	if err != nil {
		return History{}, fmt.Errorf("orders: history of %s: %w", id, err)
	}
	if len(envs) == 0 {
		return History{}, order.ErrNotFound
	}
	h := History{OrderID: id, Events: make([]HistoryEvent, 0, len(envs))}
	if verify {
		brk := eventstore.VerifyChain(id, envs)
		h.Chain = &Chain{Holds: brk == nil, Break: brk}
	}
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
			PrevHash: env.PrevHash, Hash: env.Hash,
		})
	}
	return h, nil
}
