// Package webhook delivers notifications to an HTTP endpoint. It is a queue
// consumer: the embedded runtime subscribes one durable queue per webhook to
// the order-completed topic (the webhook outbox) and runs Deliverer.Handle
// over it with messaging.Consume, so a notification is stored before it is
// sent, retried with backoff while the endpoint is down, and never dropped:
// the outbox queue has no dead-letter queue, and every failed attempt is
// logged.
//
// Each delivery is a POST of the message body (the event envelope JSON) with
// the headers Content-Type: application/json, Idempotency-Key and
// X-Orderledger-Event-ID (the event ID: receivers de-duplicate by it, since
// delivery is at least once), X-Orderledger-Event-Type,
// X-Orderledger-Order-ID and X-Orderledger-Delivery-Attempt, and the W3C
// traceparent of the delivery's span, which continues the trace of the
// order that the notification announces. Any 2xx answer acknowledges it.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderledger/orderledger/internal/tracing"
	"github.com/orderledger/orderledger/messaging"
)

// Header names of a delivery.
const (
	HeaderEventID   = "X-Orderledger-Event-ID"
	HeaderEventType = "X-Orderledger-Event-Type"
	HeaderOrderID   = "X-Orderledger-Order-ID"
	HeaderAttempt   = "X-Orderledger-Delivery-Attempt"
)

// DefaultTimeout bounds one delivery attempt.
const DefaultTimeout = 10 * time.Second

// Deliverer posts messages to one URL.
type Deliverer struct {
	url    string
	client *http.Client
}

// New returns a Deliverer for rawURL (http or https). client nil means a
// client with DefaultTimeout.
func New(rawURL string, client *http.Client) (*Deliverer, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("messaging/webhook: invalid URL %q: want an http or https URL with a host", rawURL)
	}
	if client == nil {
		client = &http.Client{Timeout: DefaultTimeout}
	}
	return &Deliverer{url: u.String(), client: client}, nil
}

// URL returns the endpoint.
func (d *Deliverer) URL() string { return d.url }

// Handle delivers msg; an error means "try again later". It implements
// messaging.Handler.
func (d *Deliverer) Handle(ctx context.Context, msg messaging.Message) error {
	eventID := msg.Attributes[messaging.AttrEventID]
	if eventID == "" {
		var env struct {
			EventID string `json:"event_id"`
		}
		if json.Unmarshal(msg.Body, &env) == nil {
			eventID = env.EventID
		}
	}
	if eventID == "" {
		eventID = msg.ID
	}
	// The delivery continues the trace of the notification (the message's
	// traceparent attribute) in a client span, sent on as the request's
	// traceparent header.
	ctx, span := tracing.Start(tracing.Continue(ctx, msg.Attributes[messaging.AttrTraceParent]), "webhook POST", trace.SpanKindClient,
		attribute.String("event_id", eventID), attribute.Int("delivery_attempt", msg.ReceiveCount))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(msg.Body))
	if err != nil {
		err = fmt.Errorf("messaging/webhook: request: %w", err)
		tracing.End(span, err)
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", eventID)
	req.Header.Set(HeaderEventID, eventID)
	req.Header.Set(HeaderEventType, msg.Attributes[messaging.AttrEventType])
	req.Header.Set(HeaderOrderID, msg.Attributes[messaging.AttrOrderID])
	req.Header.Set(HeaderAttempt, strconv.Itoa(msg.ReceiveCount))
	tracing.Inject(ctx, req.Header)
	resp, err := d.client.Do(req)
	if err != nil {
		err = fmt.Errorf("messaging/webhook: post %s: %w", d.url, err)
		tracing.End(span, err)
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err = fmt.Errorf("messaging/webhook: post %s: status %d", d.url, resp.StatusCode)
	}
	tracing.End(span, err)
	return err
}
