// Package messaging holds orderledger's messaging ports: a Queue with
// at-least-once delivery, visibility timeouts, receive counts and a
// dead-letter queue (the shape of Amazon SQS), and a Topic whose
// subscriptions fan each published message out to queues (the shape of Amazon
// SNS with raw message delivery). It also holds Consume, the one worker loop
// that drains a queue into a handler with retries and backoff.
//
// Adapters live in sub-packages: embedded (one pebble database in DIR/queue)
// and, for AWS, the SQS/SNS adapters. Every adapter passes the conformance
// suites in messaging/queuetest and messaging/topictest. Webhook delivery and
// the structured-log sink (sub-packages webhook and logsink) are queue
// consumers, so a notification is durable from the moment it is published.
//
// Messages of orderledger carry an event envelope (eventstore.Event as JSON)
// in Body and the attributes event_type and order_id; delivery is at least
// once, so consumers de-duplicate by the envelope's event ID.
package messaging

import (
	"context"
	"errors"
	"time"

	"github.com/orderledger/orderledger/domain"
)

// Attribute names set on every published message, used by subscription
// filters (the SNS filter policy and the Terraform checks read them here).
const (
	// AttrEventType carries the event type, e.g. "OrderPlaced".
	AttrEventType = "event_type"
	// AttrOrderID carries the order (stream) ID.
	AttrOrderID = "order_id"
	// AttrEventID carries the event ID, the key consumers de-duplicate by.
	AttrEventID = "event_id"
	// AttrTraceParent carries the W3C traceparent of the span that sent
	// the message (internal/tracing), so that its consumer continues the
	// trace. Absent when there was no trace.
	AttrTraceParent = "traceparent"
)

// MaxReceiveCount is how many times a queue delivers a message before the
// next receive moves it to the dead-letter queue (the redrive policy; the
// seed's "3 attempts"). The embedded queues, the SQS redrive policy that
// `ledger aws bootstrap` and Terraform create, and the saga's attempt
// budget all use it.
const MaxReceiveCount = 3

// Message is one message received from a queue.
type Message struct {
	// ID is the queue's ID for the message, stable across redeliveries.
	ID string
	// Body is the payload; for orderledger an eventstore.Event as JSON.
	Body []byte
	// Attributes are string message attributes (event_type, order_id, ...).
	Attributes map[string]string
	// ReceiveCount is how many times the message has been received,
	// including this time (SQS ApproximateReceiveCount): 1 on first delivery.
	ReceiveCount int
	// ReceiptHandle identifies this receipt for Delete and ChangeVisibility.
	// It changes with every receive.
	ReceiptHandle string
	// SentAt is when the message was first sent (zero if unknown).
	SentAt time.Time
}

// Queue is a durable at-least-once queue.
//
// A received message is invisible to other receivers until its visibility
// timeout passes, then it is delivered again with ReceiveCount one higher,
// unless it was deleted. A queue with a redrive policy moves a message whose
// ReceiveCount has reached the maximum to its dead-letter queue on the next
// receive instead of delivering it, so a poison message never blocks others.
type Queue interface {
	// Send enqueues body with attrs and returns the message ID.
	Send(ctx context.Context, body []byte, attrs map[string]string) (string, error)
	// Receive returns up to max visible messages, waiting up to wait for the
	// first one to arrive (long polling; 0 returns at once). It returns an
	// empty slice and no error when none arrived in time.
	Receive(ctx context.Context, max int, wait time.Duration) ([]Message, error)
	// Delete removes the received message (acknowledges it). Deleting a
	// message that is already gone is not an error.
	Delete(ctx context.Context, receiptHandle string) error
	// ChangeVisibility makes the received message visible again after d
	// (0: at once). It is how a consumer retries with backoff (a Nack).
	ChangeVisibility(ctx context.Context, receiptHandle string, d time.Duration) error
}

// Topic fans every published message out to its subscriptions.
type Topic interface {
	// Publish durably hands body with attrs to every subscription whose
	// filter matches attrs, and returns the message ID.
	Publish(ctx context.Context, body []byte, attrs map[string]string) (string, error)
}

// Outgoing is one message of a BatchTopic.PublishBatch.
type Outgoing struct {
	Body  []byte
	Attrs map[string]string
}

// BatchTopic is a Topic that can publish several messages in one request:
// SNS bills a PublishBatch of up to ten small messages as one request, not
// ten, which is most of what publishing costs on AWS.
type BatchTopic interface {
	Topic
	// PublishBatch publishes msgs in as few requests as the service
	// allows and returns how many of them, counted from the first, are
	// known published: len(msgs) and nil, or fewer and the error of the
	// first one not known published. Messages after that one may have been
	// published too: publishing is at least once, consumers de-duplicate.
	PublishBatch(ctx context.Context, msgs []Outgoing) (int, error)
}

// Filter selects messages by attribute: every key must be present with one of
// the listed values (an SNS filter policy of exact matches). A nil Filter
// matches every message.
type Filter map[string][]string

// Match reports whether attrs pass the filter.
func (f Filter) Match(attrs map[string]string) bool {
	for k, vals := range f {
		v, ok := attrs[k]
		if !ok {
			return false
		}
		found := false
		for _, want := range vals {
			if v == want {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Errors of the messaging ports.
var (
	// ErrInvalidReceipt: the receipt handle is malformed or names no message
	// in flight (it was deleted, or received again since).
	ErrInvalidReceipt = domain.Errorf(domain.Invalid, "messaging: invalid or stale receipt handle")
	// ErrClosed: the queue or topic was used after its backend was closed.
	ErrClosed = domain.Errorf(domain.Unavailable, "messaging: closed")
)

// IsInvalidReceipt reports whether err is ErrInvalidReceipt.
func IsInvalidReceipt(err error) bool { return errors.Is(err, ErrInvalidReceipt) }
