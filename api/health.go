package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/orderledger/orderledger/domain"
)

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
}

// readyz answers 200 when every readiness check passes, else 503 with the
// checks in the problem.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	var checks []Check
	if s.Ready != nil {
		checks = s.Ready(r.Context())
	}
	if checks == nil {
		checks = []Check{}
	}
	for _, c := range checks {
		if !c.OK {
			p := problemOf(r, domain.Errorf(domain.Unavailable, "not ready"))
			p.Detail = "not ready: " + c.Name
			p.Checks = checks
			writeProblem(w, p)
			return
		}
	}
	writeJSON(w, http.StatusOK, Readiness{Status: "ready", Checks: checks})
}

// Readiness is the body of a 200 from /readyz; a 503 carries the checks in
// its Problem instead.
type Readiness struct {
	// Status is "ready".
	Status string  `json:"status"`
	Checks []Check `json:"checks"`
}

// Health is the body of a 200 from /healthz.
type Health struct {
	// Status is "ok".
	Status string `json:"status"`
}

// startRebuild starts a read-model rebuild and answers 202 with its status
// (409 while one runs).
func (s *server) startRebuild(w http.ResponseWriter, r *http.Request) {
	if s.Rebuilds == nil {
		s.writeError(w, r, domain.Errorf(domain.Unavailable, "api: rebuild is not wired on this backend"))
		return
	}
	st, err := s.Rebuilds.Start(context.WithoutCancel(r.Context()))
	if err != nil {
		s.writeError(w, r, fmt.Errorf("api: rebuild: %w", err))
		return
	}
	w.Header().Set("Location", "/admin/projections/rebuild")
	writeJSON(w, http.StatusAccepted, st)
}

func (s *server) rebuildStatus(w http.ResponseWriter, r *http.Request) {
	if s.Rebuilds == nil {
		s.writeError(w, r, domain.Errorf(domain.Unavailable, "api: rebuild is not wired on this backend"))
		return
	}
	writeJSON(w, http.StatusOK, s.Rebuilds.Status())
}

// methodNotAllowed answers 405 with the Allow header chi's custom handlers
// do not set.
func (s *server) methodNotAllowed(mux chi.Routes) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePath != "" {
			path = rctx.RoutePath
		}
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			if mux.Match(chi.NewRouteContext(), m, path) {
				allow = append(allow, m)
			}
		}
		if slices.Contains(allow, http.MethodGet) {
			allow = append(allow, http.MethodHead)
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
		}
		s.writeError(w, r, domain.Errorf(codeMethodNotAllowed, "method %s is not allowed here", r.Method))
	}
}
