package api

import (
	"time"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
)

// View is an order as the API shows it: the read model's view, or the fold
// of the order's events for consistent and temporal reads.
type View struct {
	OrderID       string    `json:"order_id"`
	CustomerName  string    `json:"customer_name"`
	ProductName   string    `json:"product_name"`
	Quantity      int       `json:"quantity"`
	Status        string    `json:"status"`
	Version       int64     `json:"version"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	PaymentID     string    `json:"payment_id,omitempty"`
	Amount        int64     `json:"amount,omitempty"`
	ReservationID string    `json:"reservation_id,omitempty"`
	FailureReason string    `json:"failure_reason,omitempty"`
	FailedStep    string    `json:"failed_step,omitempty"`
	CancelReason  string    `json:"cancel_reason,omitempty"`
}

// ViewOf returns the view of a folded order.
func ViewOf(o order.Order) View {
	v := View{
		OrderID:       o.ID,
		CustomerName:  o.CustomerName,
		ProductName:   o.ProductName,
		Quantity:      o.Quantity,
		Status:        string(o.Status),
		Version:       o.Version,
		CreatedAt:     o.CreatedAt.UTC(),
		UpdatedAt:     o.UpdatedAt.UTC(),
		ReservationID: o.ReservationID,
		CancelReason:  o.CancelReason,
	}
	if o.Paid {
		v.PaymentID, v.Amount = o.PaymentID, o.Amount
	}
	if o.Status == order.StatusFailed {
		v.FailureReason, v.FailedStep = o.FailureReason, o.FailedStep
	}
	return v
}

// foldEnvelopes decodes envs (in version order) and folds those for which
// keep returns true, stopping at the first it rejects. It returns the
// order, which does not exist (Version 0) when no event was kept.
func foldEnvelopes(c *eventstore.Codec, id string, envs []eventstore.Event, keep func(eventstore.Event) bool) (order.Order, error) {
	o := order.Order{ID: id}
	for i, env := range envs {
		if keep != nil && !keep(env) {
			break
		}
		e, err := c.Decode(env)
		if err != nil {
			return order.Order{}, err
		}
		o = o.Apply(e)
		if i == 0 {
			o.CreatedAt = env.OccurredAt
		}
		o.UpdatedAt = env.OccurredAt
	}
	return o, nil
}
