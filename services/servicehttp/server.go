package servicehttp

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/orderledger/orderledger/services"
)

// NewHandler serves payment and inventory over the protocol (see the
// package doc). It panics when either is nil: that is a wiring bug, found at
// start-up.
func NewHandler(payment services.Payment, inventory services.Inventory) http.Handler {
	switch {
	case payment == nil:
		panic("servicehttp: NewHandler: payment is required")
	case inventory == nil:
		panic("servicehttp: NewHandler: inventory is required")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathCharges, func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, PathCharges, func(ctx context.Context, req chargeRequest) (charge, error) {
			res, err := payment.Charge(ctx, req.port())
			return toCharge(res), err
		}, func(req *chargeRequest) *string { return &req.IdempotencyKey })
	})
	mux.HandleFunc("POST "+PathRefunds, func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, PathRefunds, func(ctx context.Context, req refundRequest) (refund, error) {
			res, err := payment.Refund(ctx, req.port())
			return toRefund(res), err
		}, func(req *refundRequest) *string { return &req.IdempotencyKey })
	})
	mux.HandleFunc("POST "+PathVoids, func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, PathVoids, func(ctx context.Context, req voidRequest) (void, error) {
			res, err := payment.Void(ctx, req.port())
			return toVoid(res), err
		}, func(req *voidRequest) *string { return &req.IdempotencyKey })
	})
	mux.HandleFunc("POST "+PathReservations, func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, PathReservations, func(ctx context.Context, req reserveRequest) (reservation, error) {
			res, err := inventory.Reserve(ctx, req.port())
			return toReservation(res), err
		}, func(req *reserveRequest) *string { return &req.IdempotencyKey })
	})
	return mux
}

// serve decodes one request of route path, calls the service and writes
// its answer with the protocol's status for it.
func serve[Req, Res any](w http.ResponseWriter, r *http.Request, path string, call func(context.Context, Req) (Res, error), key func(*Req) *string) {
	var req Req
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, failure{Error: "malformed request: " + err.Error()})
		return
	}
	k := key(&req)
	if h := r.Header.Get("Idempotency-Key"); h != "" {
		*k = h
	}
	if *k == "" {
		writeJSON(w, http.StatusBadRequest, failure{Error: "idempotency key is required"})
		return
	}
	res, err := call(r.Context(), req)
	if reason, ok := services.IsRejected(err); ok {
		writeJSON(w, refusalStatus[path], refusal{Reason: reason})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, failure{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
