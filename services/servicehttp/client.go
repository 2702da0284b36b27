// Package servicehttp calls payment and inventory services over HTTP (the
// protocol served by services/sim.Handler and `ledger simulate`). It
// implements services.Payment and services.Inventory with a timeout on every
// call and the idempotency key in both the body and the Idempotency-Key
// header. 402 and 409 answers with a reason are business refusals
// (*services.RejectedError); anything else that is not 2xx, and every
// network error or timeout, is transient.
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

	"github.com/orderledger/orderledger/services"
)

// DefaultTimeout bounds one call.
const DefaultTimeout = 5 * time.Second

// Client calls one service base URL for both ports.
type Client struct {
	base string
	http *http.Client
}

var (
	_ services.Payment   = (*Client)(nil)
	_ services.Inventory = (*Client)(nil)
)

// New returns a Client for baseURL; timeout 0 means DefaultTimeout.
func New(baseURL string, timeout time.Duration) (*Client, error) {
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
	var out services.Charge
	err := c.post(ctx, PathCharges, req.IdempotencyKey, req, &out)
	return out, err
}

// Refund implements services.Payment.
func (c *Client) Refund(ctx context.Context, req services.RefundRequest) (services.Refund, error) {
	var out services.Refund
	err := c.post(ctx, PathRefunds, req.IdempotencyKey, req, &out)
	return out, err
}

// Reserve implements services.Inventory.
func (c *Client) Reserve(ctx context.Context, req services.ReserveRequest) (services.Reservation, error) {
	var out services.Reservation
	err := c.post(ctx, PathReservations, req.IdempotencyKey, req, &out)
	return out, err
}

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
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("services/servicehttp: %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("services/servicehttp: %s: read: %w", path, err)
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("services/servicehttp: %s: decode: %w", path, err)
		}
		return nil
	case resp.StatusCode == http.StatusPaymentRequired || resp.StatusCode == http.StatusConflict:
		var r struct {
			Reason string `json:"reason"`
		}
		if json.Unmarshal(data, &r) == nil && r.Reason != "" {
			return services.Rejected("%s", r.Reason)
		}
	}
	return fmt.Errorf("services/servicehttp: %s: status %d: %s", path, resp.StatusCode, strings.TrimSpace(string(data[:min(len(data), 200)])))
}
