package projections

import (
	"context"

	"github.com/orderledger/orderledger/eventstore"
)

// Put is one write of a CheckpointedWriter's PutBatch: store View when the
// stored view of View.OrderID is at version Expected (0: no stored view).
type Put struct {
	Expected int64
	View     View
}

// CheckpointedWriter is a ReadModel that also stores subscriptions'
// checkpoints, and can store a batch of views together with a checkpoint in
// one atomic, durable write. A Subscription whose checkpoint store is its
// read model writes each projector batch that way: one write (one fsync on
// the embedded read model) per batch of the feed, instead of one per group
// of concurrent Puts and one more for the checkpoint. Views and checkpoint
// then never disagree: after a crash the read model holds either the whole
// batch and its checkpoint, or neither.
type CheckpointedWriter interface {
	ReadModel
	eventstore.Checkpoints
	// PutBatch stores every put and moves consumer's checkpoint to pos
	// (never backwards; an empty consumer moves none) in one atomic write,
	// durable before it returns, when every put's Expected matches the
	// stored version. Otherwise it stores nothing and returns a
	// *ConflictError for the first put that did not match. Each OrderID
	// appears at most once in puts.
	PutBatch(ctx context.Context, puts []Put, consumer string, pos uint64) error
}
