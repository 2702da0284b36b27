package servicehttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/orderledger/orderledger/internal/tracing"
	"github.com/orderledger/orderledger/services"
	"github.com/orderledger/orderledger/services/sim"
)

// DefaultTimeout bounds one call.
const DefaultTimeout = 5 * time.Second

// Client implements services.Payment and services.Inventory by calling one
// server of the protocol, with a timeout on every call.
type Client struct {
	base string
	http *http.Client
}

var (
	_ services.Payment   = (*Client)(nil)
	_ services.Inventory = (*Client)(nil)
)

// NewClient returns a Client for baseURL (http(s)://host[:port]); timeout 0
// means DefaultTimeout.
func NewClient(baseURL string, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("services/servicehttp: invalid base URL %q: want http(s)://host[:port]", baseURL)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Client{base: strings.TrimRight(u.String(), "/"), http: &http.Client{Timeout: timeout}}, nil
}

// Charge implements services.Payment.
func (c *Client) Charge(ctx context.Context, req services.ChargeRequest) (services.Charge, error) {
	var out charge
	err := c.post(ctx, PathCharges, req.IdempotencyKey, toChargeRequest(req), &out)
	return out.port(), err
}

// Refund implements services.Payment.
func (c *Client) Refund(ctx context.Context, req services.RefundRequest) (services.Refund, error) {
	var out refund
	err := c.post(ctx, PathRefunds, req.IdempotencyKey, toRefundRequest(req), &out)
	return out.port(), err
}

// Void implements services.Payment.
func (c *Client) Void(ctx context.Context, req services.VoidRequest) (services.Void, error) {
	var out void
	err := c.post(ctx, PathVoids, req.IdempotencyKey, toVoidRequest(req), &out)
	return out.port(), err
}

// Reserve implements services.Inventory.
func (c *Client) Reserve(ctx context.Context, req services.ReserveRequest) (services.Reservation, error) {
	var out reservation
	err := c.post(ctx, PathReservations, req.IdempotencyKey, toReserveRequest(req), &out)
	return out.port(), err
}

// post sends one call and maps its answer: 2xx decodes into out, the
// route's refusal status with a reason is a *services.RejectedError, and
// anything else is a transient error.
func (c *Client) post(ctx context.Context, path, key string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("services/servicehttp: %s: encode: %w", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("services/servicehttp: %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	tracing.Inject(ctx, req.Header) // the caller's span (the saga's service call) continues at the service
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("services/servicehttp: %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return fmt.Errorf("services/servicehttp: %s: read: %w", path, err)
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("services/servicehttp: %s: decode: %w", path, err)
		}
		return nil
	case resp.StatusCode == refusalStatus[path]:
		var r refusal
		if json.Unmarshal(data, &r) == nil && r.Reason != "" {
			return services.Rejected("%s", r.Reason)
		}
	}
	return fmt.Errorf("services/servicehttp: %s: status %d: %s", path, resp.StatusCode, strings.TrimSpace(string(data[:min(len(data), 200)])))
}

// Services returns the payment and inventory services a runtime calls: a
// Client of url when url is set, else an in-process simulator with the
// knobs of simCfg. Both runtimes choose here (`serve --services-url`).
func Services(url string, simCfg sim.Config) (services.Payment, services.Inventory, error) {
	if url != "" {
		c, err := NewClient(url, DefaultTimeout)
		if err != nil {
			return nil, nil, err
		}
		return c, c, nil
	}
	s, err := sim.New(simCfg)
	if err != nil {
		return nil, nil, err
	}
	return s, s, nil
}
