package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
)

// DeadLetter is one message of a dead-letter queue, as an operator sees it.
type DeadLetter struct {
	// ID is the queue's message ID.
	ID string
	// Body is the message as it was sent (an OrderPlaced envelope as JSON).
	Body []byte
	// Attributes are the message's string attributes (order_id, event_type).
	Attributes map[string]string
	// Attempts is how many times the source queue delivered it before it
	// was dead-lettered (0 when the queue does not say).
	Attempts int
	// LastError is the last processing error, when the queue keeps it.
	LastError string
	// DeadAt is when the message reached the dead-letter queue, or, where
	// the queue does not record that (SQS), when it was first sent.
	DeadAt time.Time
	// Handle is the adapter's handle on the message for Redrive and Delete
	// (a receipt handle on SQS).
	Handle string
}

// DeadLetterQueue is the port to a dead-letter queue that the dead-letter
// use cases need: every queue adapter of the runtimes provides one.
type DeadLetterQueue interface {
	// Hold returns up to limit dead letters (0: all), in the queue's order,
	// and keeps them from other readers of the queue until they are
	// redriven, deleted or released.
	Hold(ctx context.Context, limit int) ([]DeadLetter, error)
	// Redrive sends the message back to the queue it was dead-lettered
	// from, visible at once with a fresh receive count, and removes it.
	Redrive(ctx context.Context, d DeadLetter) error
	// Delete removes the message.
	Delete(ctx context.Context, d DeadLetter) error
	// Release makes held messages visible again, unchanged.
	Release(ctx context.Context, ds []DeadLetter) error
}

// DeadLetterInfo is a dead letter with the order it names.
type DeadLetterInfo struct {
	DeadLetter
	// OrderID is the order the message names ("" when it names none).
	OrderID string
	// EventType is the envelope's type ("" when the body is no envelope).
	EventType string
	// OrderStatus is the order's status now ("" when there is no such order).
	OrderStatus order.Status
	// Problem says why the message names no order that exists, if it does not.
	Problem string
}

// Redrive actions.
const (
	ActionRedrive = "redrive" // back to the processing queue: work is owed
	ActionDelete  = "delete"  // removed: the order is settled
	ActionKeep    = "keep"    // left in place: the message names no order
)

// RedriveItem is the decision about one dead letter.
type RedriveItem struct {
	ID      string `json:"id"`
	OrderID string `json:"order_id,omitempty"`
	Action  string `json:"action"`
	Reason  string `json:"reason"`
}

// RedriveReport is the result of RedriveDeadLetters.
type RedriveReport struct {
	DryRun   bool          `json:"dry_run"`
	Redriven int           `json:"redriven"`
	Deleted  int           `json:"deleted"`
	Kept     int           `json:"kept"`
	Items    []RedriveItem `json:"items"`
}

// DeadLetters returns up to limit dead letters (0: all) with the order
// each names and its status now. It changes nothing: the messages held to
// read them are released before it returns.
func (s *Service) DeadLetters(ctx context.Context, q DeadLetterQueue, limit int) ([]DeadLetterInfo, error) {
	held, err := q.Hold(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetterInfo, 0, len(held))
	var loadErr error
	for _, d := range held {
		info, _, err := s.inspect(ctx, d)
		if err != nil {
			loadErr = err
			break
		}
		out = append(out, info)
	}
	if err := errors.Join(loadErr, q.Release(context.WithoutCancel(ctx), held)); err != nil {
		return nil, err
	}
	return out, nil
}

// RedriveDeadLetters decides about every dead letter from the state of its
// order (orders.Load): a message whose order exists and is not settled
// (still pending, or ended with a refund owed) goes back to the processing
// queue; one whose order is settled is deleted, as its work is done; one
// that names no order that exists is kept and reported, as resending it
// would only dead-letter it again. With dryRun it changes nothing.
//
// A store failure stops it: messages decided so far stay acted on, the
// rest are released unchanged, and the error is returned.
func (s *Service) RedriveDeadLetters(ctx context.Context, q DeadLetterQueue, dryRun bool) (RedriveReport, error) {
	held, err := q.Hold(ctx, 0)
	if err != nil {
		return RedriveReport{}, err
	}
	rep := RedriveReport{DryRun: dryRun, Items: []RedriveItem{}}
	var release []DeadLetter
	var runErr error
	for i, d := range held {
		info, o, err := s.inspect(ctx, d)
		if err != nil {
			runErr = err
			release = append(release, held[i:]...)
			break
		}
		it := RedriveItem{ID: d.ID, OrderID: info.OrderID}
		switch {
		case info.Problem != "":
			it.Action, it.Reason = ActionKeep, info.Problem
		case o.Settled():
			it.Action, it.Reason = ActionDelete, "order is already "+string(o.Status)
		case o.Status.Terminal():
			it.Action, it.Reason = ActionRedrive, "order is "+string(o.Status)+" but its "+string(o.NextStep())+" is owed"
		default:
			it.Action, it.Reason = ActionRedrive, "order is "+string(o.Status)
		}
		if dryRun || it.Action == ActionKeep {
			release = append(release, d)
		} else {
			act := q.Redrive
			if it.Action == ActionDelete {
				act = q.Delete
			}
			if err := act(ctx, d); err != nil {
				runErr = fmt.Errorf("%s dead letter %s: %w", it.Action, d.ID, err)
				release = append(release, held[i:]...)
				break
			}
		}
		switch it.Action {
		case ActionRedrive:
			rep.Redriven++
		case ActionDelete:
			rep.Deleted++
		default:
			rep.Kept++
		}
		rep.Items = append(rep.Items, it)
	}
	if err := errors.Join(runErr, q.Release(context.WithoutCancel(ctx), release)); err != nil {
		return rep, err
	}
	return rep, nil
}

// inspect reads the order a dead letter names. A message that names no
// existing order is no error: its Problem says why. The error is a store
// failure.
func (s *Service) inspect(ctx context.Context, d DeadLetter) (DeadLetterInfo, order.Order, error) {
	info := DeadLetterInfo{DeadLetter: d}
	var env eventstore.Event
	if json.Unmarshal(d.Body, &env) == nil {
		info.OrderID, info.EventType = env.StreamID, env.Type
	}
	if info.OrderID == "" {
		info.OrderID = d.Attributes["order_id"]
	}
	switch {
	case info.EventType != order.TypePlaced:
		info.Problem = "not an OrderPlaced message"
		return info, order.Order{}, nil
	case !domain.ValidULID(info.OrderID):
		info.Problem = fmt.Sprintf("invalid order ID %q", info.OrderID)
		return info, order.Order{}, nil
	}
	st, err := s.Load(ctx, info.OrderID)
	switch {
	case errors.Is(err, ErrCorrupt):
		info.Problem = err.Error()
		return info, order.Order{}, nil
	case err != nil:
		return DeadLetterInfo{}, order.Order{}, err
	case !st.Order.Exists():
		info.Problem = "unknown order"
		return info, order.Order{}, nil
	}
	info.OrderStatus = st.Order.Status
	return info, st.Order, nil
}
