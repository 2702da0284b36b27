package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/orders"
)

// Dead-letter listing bounds.
const (
	DefaultDLQLimit = 100
	MaxDLQLimit     = 1000
)

// DeadLetterItem is one dead letter of GET /admin/dlq.
type DeadLetterItem struct {
	// ID is the queue's message ID.
	ID string `json:"id"`
	// OrderID is the order the message names ("" when it names none).
	OrderID string `json:"order_id"`
	// EventType is the message's event type (OrderPlaced for a real one).
	EventType string `json:"event_type,omitempty"`
	// Attempts is how many deliveries the message had before it was
	// dead-lettered.
	Attempts int `json:"attempts"`
	// LastError is the last processing error ("" when the queue keeps none).
	LastError string `json:"last_error"`
	// DeadAt is when it was dead-lettered (or first sent, where the queue
	// does not record that).
	DeadAt time.Time `json:"dead_at"`
	// OrderStatus is the order's status now ("" when there is no such order).
	OrderStatus string `json:"order_status"`
	// Problem says why the message names no existing order, if it does not.
	Problem string `json:"problem,omitempty"`
}

// DeadLetterList is the answer of GET /admin/dlq.
type DeadLetterList struct {
	Items []DeadLetterItem `json:"items"`
	Count int              `json:"count"`
}

// RedriveResponse is the answer of POST /admin/dlq/redrive.
type RedriveResponse = orders.RedriveReport

func (s *server) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	limit := DefaultDLQLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxDLQLimit {
			s.writeError(w, r, malformed("limit", "must be an integer from 1 to %d", MaxDLQLimit))
			return
		}
		limit = n
	}
	if s.DeadLetters == nil {
		s.writeError(w, r, domain.Errorf(domain.Unavailable, "api: the dead-letter queue is not wired on this backend"))
		return
	}
	infos, err := s.orders.DeadLetters(r.Context(), s.DeadLetters, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := DeadLetterList{Items: make([]DeadLetterItem, 0, len(infos)), Count: len(infos)}
	for _, d := range infos {
		resp.Items = append(resp.Items, DeadLetterItem{ID: d.ID, OrderID: d.OrderID, EventType: d.EventType,
			Attempts: d.Attempts, LastError: d.LastError, DeadAt: d.DeadAt.UTC(), OrderStatus: string(d.OrderStatus), Problem: d.Problem})
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *server) redriveDeadLetters(w http.ResponseWriter, r *http.Request) {
	dryRun := false
	switch v := r.URL.Query().Get("dry_run"); v {
	case "", "false":
	case "true":
		dryRun = true
	default:
		s.writeError(w, r, malformed("dry_run", "must be true or false"))
		return
	}
	if s.DeadLetters == nil {
		s.writeError(w, r, domain.Errorf(domain.Unavailable, "api: the dead-letter queue is not wired on this backend"))
		return
	}
	rep, err := s.orders.RedriveDeadLetters(r.Context(), s.DeadLetters, dryRun)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
