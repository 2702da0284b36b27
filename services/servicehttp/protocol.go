// Package servicehttp is the HTTP protocol of the payment and inventory
// services: its routes, its wire bodies and its status codes, defined once
// here with both ends of it. NewHandler serves any services.Payment and
// services.Inventory over it (`ledger simulate` serves the simulator);
// NewClient implements both ports by calling such a server (the processor
// Lambda with LEDGER_SERVICES_URL).
//
// The protocol:
//
//	POST /payments/charges        chargeRequest      -> 200 charge,      402 {"reason"}
//	POST /payments/refunds        refundRequest      -> 200 refund,      409 {"reason"}
//	POST /payments/voids          voidRequest        -> 200 void,        409 {"reason"}
//	POST /inventory/reservations  reserveRequest     -> 200 reservation, 409 {"reason"}
//
// Bodies are JSON. The idempotency key travels in the body and in the
// Idempotency-Key header; the header, when present, wins. A repeated key
// answers the first outcome, refusals included.
//
// Guarantees both ends keep:
//   - a business refusal (a declined card, no stock) is the route's refusal
//     status with {"reason": ...}, and the client returns it as a
//     *services.RejectedError: final, never retried;
//   - 400 {"error": ...} is a request the server could not read (malformed
//     JSON, an unknown field, no idempotency key); the client treats it, and
//     every other status, network error or timeout, as transient;
//   - any other failure of the service is 503 {"error": ...}: transient, as
//     the services ports define every error that is not a refusal.
//
// The port types in package services carry no wire tags: the JSON shape is
// the unexported wire structs below, so the ports can change without
// changing the protocol by accident.
package servicehttp

import (
	"net/http"

	"github.com/orderledger/orderledger/services"
)

// Paths of the protocol.
const (
	PathCharges      = "/payments/charges"
	PathRefunds      = "/payments/refunds"
	PathVoids        = "/payments/voids"
	PathReservations = "/inventory/reservations"
)

// Refusal statuses: the one table from route to the status of a business
// refusal on it, read by both the server and the client.
var refusalStatus = map[string]int{
	PathCharges:      http.StatusPaymentRequired,
	PathRefunds:      http.StatusConflict,
	PathVoids:        http.StatusConflict,
	PathReservations: http.StatusConflict,
}

// maxBodyBytes bounds a request or answer body either end reads.
const maxBodyBytes = 1 << 20

// chargeRequest is the body of POST /payments/charges.
type chargeRequest struct {
	IdempotencyKey string `json:"idempotency_key"`
	OrderID        string `json:"order_id"`
	CustomerName   string `json:"customer_name"`
	ProductName    string `json:"product_name"`
	Quantity       int    `json:"quantity"`
}

// charge is the 200 answer of POST /payments/charges.
type charge struct {
	PaymentID string `json:"payment_id"`
	// Amount charged in minor units (cents).
	Amount int64 `json:"amount"`
}

// refundRequest is the body of POST /payments/refunds.
type refundRequest struct {
	IdempotencyKey string `json:"idempotency_key"`
	OrderID        string `json:"order_id"`
	PaymentID      string `json:"payment_id"`
	Amount         int64  `json:"amount"`
	Reason         string `json:"reason"`
}

// refund is the 200 answer of POST /payments/refunds.
type refund struct {
	RefundID string `json:"refund_id"`
}

// voidRequest is the body of POST /payments/voids: the charge's key.
type voidRequest struct {
	IdempotencyKey string `json:"idempotency_key"`
	OrderID        string `json:"order_id"`
	Reason         string `json:"reason"`
}

// void is the 200 answer of POST /payments/voids: charged is true when the
// key had charged already (nothing voided; payment_id and amount say what).
type void struct {
	Charged   bool   `json:"charged"`
	PaymentID string `json:"payment_id,omitempty"`
	Amount    int64  `json:"amount,omitempty"`
}

// reserveRequest is the body of POST /inventory/reservations.
type reserveRequest struct {
	IdempotencyKey string `json:"idempotency_key"`
	OrderID        string `json:"order_id"`
	ProductName    string `json:"product_name"`
	Quantity       int    `json:"quantity"`
}

// reservation is the 200 answer of POST /inventory/reservations.
type reservation struct {
	ReservationID string `json:"reservation_id"`
}

// refusal is the body of a business refusal.
type refusal struct {
	Reason string `json:"reason"`
}

// failure is the body of a 400 or 503 answer.
type failure struct {
	Error string `json:"error"`
}

// Conversions between the ports' types and the wire, written field by field
// (not as struct conversions) so that a port type cannot silently reshape
// the wire.

func toChargeRequest(r services.ChargeRequest) chargeRequest {
	return chargeRequest{IdempotencyKey: r.IdempotencyKey, OrderID: r.OrderID, CustomerName: r.CustomerName, ProductName: r.ProductName, Quantity: r.Quantity}
}

func (r chargeRequest) port() services.ChargeRequest {
	return services.ChargeRequest{IdempotencyKey: r.IdempotencyKey, OrderID: r.OrderID, CustomerName: r.CustomerName, ProductName: r.ProductName, Quantity: r.Quantity}
}

func toCharge(c services.Charge) charge { return charge{PaymentID: c.PaymentID, Amount: c.Amount} }

func (c charge) port() services.Charge {
	return services.Charge{PaymentID: c.PaymentID, Amount: c.Amount}
}

func toRefundRequest(r services.RefundRequest) refundRequest {
	return refundRequest{IdempotencyKey: r.IdempotencyKey, OrderID: r.OrderID, PaymentID: r.PaymentID, Amount: r.Amount, Reason: r.Reason}
}

func (r refundRequest) port() services.RefundRequest {
	return services.RefundRequest{IdempotencyKey: r.IdempotencyKey, OrderID: r.OrderID, PaymentID: r.PaymentID, Amount: r.Amount, Reason: r.Reason}
}

func toRefund(r services.Refund) refund { return refund{RefundID: r.RefundID} }

func (r refund) port() services.Refund { return services.Refund{RefundID: r.RefundID} }

func toVoidRequest(r services.VoidRequest) voidRequest {
	return voidRequest{IdempotencyKey: r.IdempotencyKey, OrderID: r.OrderID, Reason: r.Reason}
}

func (r voidRequest) port() services.VoidRequest {
	return services.VoidRequest{IdempotencyKey: r.IdempotencyKey, OrderID: r.OrderID, Reason: r.Reason}
}

func toVoid(v services.Void) void {
	return void{Charged: v.Charged, PaymentID: v.Charge.PaymentID, Amount: v.Charge.Amount}
}

func (v void) port() services.Void {
	return services.Void{Charged: v.Charged, Charge: services.Charge{PaymentID: v.PaymentID, Amount: v.Amount}}
}

func toReserveRequest(r services.ReserveRequest) reserveRequest {
	return reserveRequest{IdempotencyKey: r.IdempotencyKey, OrderID: r.OrderID, ProductName: r.ProductName, Quantity: r.Quantity}
}

func (r reserveRequest) port() services.ReserveRequest {
	return services.ReserveRequest{IdempotencyKey: r.IdempotencyKey, OrderID: r.OrderID, ProductName: r.ProductName, Quantity: r.Quantity}
}

func toReservation(r services.Reservation) reservation {
	return reservation{ReservationID: r.ReservationID}
}

func (r reservation) port() services.Reservation {
	return services.Reservation{ReservationID: r.ReservationID}
}
