package servicehttp

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/orderledger/orderledger/services"
	"github.com/orderledger/orderledger/services/sim"
)

// HTTP paths of the services protocol (the client in this package).
const (
	PathCharges      = "/payments/charges"
	PathRefunds      = "/payments/refunds"
	PathReservations = "/inventory/reservations"
	PathStats        = "/stats"
)

// Handler serves s over HTTP. Requests are JSON POSTs of the services
// request types; the Idempotency-Key header, when present, overrides the
// body's key. Answers: 200 with the result; 402 (charges) or 409
// (reservations) with {"reason": ...} for a business refusal; 503 for an
// injected transient failure; 400 for a malformed request. GET /stats
// returns the simulator's counts.
func Handler(s *sim.Simulator) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathCharges, func(w http.ResponseWriter, r *http.Request) {
		var req services.ChargeRequest
		if !decode(w, r, &req, &req.IdempotencyKey) {
			return
		}
		res, err := s.Charge(r.Context(), req)
		respond(w, res, err, http.StatusPaymentRequired)
	})
	mux.HandleFunc("POST "+PathRefunds, func(w http.ResponseWriter, r *http.Request) {
		var req services.RefundRequest
		if !decode(w, r, &req, &req.IdempotencyKey) {
			return
		}
		res, err := s.Refund(r.Context(), req)
		respond(w, res, err, http.StatusConflict)
	})
	mux.HandleFunc("POST "+PathReservations, func(w http.ResponseWriter, r *http.Request) {
		var req services.ReserveRequest
		if !decode(w, r, &req, &req.IdempotencyKey) {
			return
		}
		res, err := s.Reserve(r.Context(), req)
		respond(w, res, err, http.StatusConflict)
	})
	mux.HandleFunc("GET "+PathStats, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	return mux
}

func decode(w http.ResponseWriter, r *http.Request, v any, key *string) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "malformed request: " + err.Error()})
		return false
	}
	if h := r.Header.Get("Idempotency-Key"); h != "" {
		*key = h
	}
	if *key == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "idempotency key is required"})
		return false
	}
	return true
}

func respond(w http.ResponseWriter, res any, err error, rejectStatus int) {
	if reason, ok := services.IsRejected(err); ok {
		writeJSON(w, rejectStatus, map[string]string{"reason": reason})
		return
	}
	if errors.Is(err, sim.ErrUnavailable) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
