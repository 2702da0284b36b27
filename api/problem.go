package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// Error kinds that only the HTTP transport knows. They travel as
// *domain.Error like the domain's own kinds, so one table maps them all.
const (
	codeMalformed        domain.Code = "malformed"              // 400
	codeUnauthorized     domain.Code = "unauthorized"           // 401
	codeMethodNotAllowed domain.Code = "method_not_allowed"     // 405
	codeTooLarge         domain.Code = "too_large"              // 413
	codeUnsupportedMedia domain.Code = "unsupported_media_type" // 415
	codeNotImplemented   domain.Code = "not_implemented"        // 501
)

// kind is how one error code is shown over HTTP.
type kind struct {
	status int
	title  string
}

// kinds is THE table from error code to HTTP status: every error response
// is produced from it, nowhere else.
var kinds = map[domain.Code]kind{
	codeMalformed:             {http.StatusBadRequest, "Malformed request"},
	codeUnauthorized:          {http.StatusUnauthorized, "Unauthorized"},
	domain.NotFound:           {http.StatusNotFound, "Not found"},
	codeMethodNotAllowed:      {http.StatusMethodNotAllowed, "Method not allowed"},
	domain.Conflict:           {http.StatusConflict, "Conflict"},
	domain.PreconditionFailed: {http.StatusPreconditionFailed, "Precondition failed"},
	codeTooLarge:              {http.StatusRequestEntityTooLarge, "Request body too large"},
	codeUnsupportedMedia:      {http.StatusUnsupportedMediaType, "Unsupported media type"},
	domain.Invalid:            {http.StatusUnprocessableEntity, "Validation failed"},
	domain.Internal:           {http.StatusInternalServerError, "Internal error"},
	domain.Unavailable:        {http.StatusServiceUnavailable, "Service unavailable"},
	codeNotImplemented:        {http.StatusNotImplemented, "Not implemented"},
}

// ProblemTypePrefix prefixes every problem type; the suffix is the error code
// ("urn:orderledger:problem:invalid"). Types are stable: clients may switch on them.
const ProblemTypePrefix = "urn:orderledger:problem:"

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Instance  string       `json:"instance,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
	// Checks is set on readiness failures only.
	Checks []Check `json:"checks,omitempty"`
}

// FieldError says what is wrong with one field of the request.
type FieldError struct {
	// Field is the body field, query parameter or header, as the client spells it.
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// problemOf builds the problem for err. Server errors get a fixed detail:
// their text may hold internals and is only logged.
func problemOf(r *http.Request, err error) Problem {
	code := domain.CodeOf(err)
	if _, ok := kinds[code]; !ok {
		code = domain.Internal
	}
	k := kinds[code]
	p := Problem{
		Type:      ProblemTypePrefix + string(code),
		Title:     k.title,
		Status:    k.status,
		Instance:  r.URL.Path,
		RequestID: RequestID(r.Context()),
	}
	var de *domain.Error
	var ce *eventstore.ConflictError
	switch {
	case k.status >= 500 && code != codeNotImplemented:
		if code == domain.Unavailable {
			p.Detail = "the service is temporarily unavailable; retry later"
		} else {
			p.Detail = "an internal error occurred; quote the request ID when reporting it"
		}
	case errors.As(err, &ce):
		p.Detail = fmt.Sprintf("the order is at version %d, not %d", ce.Actual, ce.Expected)
	case errors.As(err, &de):
		p.Detail = de.Message
		p.Errors = fieldErrors(de.Fields)
	default:
		p.Detail = k.title
	}
	return p
}

func fieldErrors(fields map[string]string) []FieldError {
	var out []FieldError
	for f, msg := range fields {
		out = append(out, FieldError{Field: f, Detail: msg})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

// writeError answers r with the problem for err, logging server errors.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problemOf(r, err)
	if p.Status >= 500 && p.Status != http.StatusNotImplemented {
		s.log.ErrorContext(r.Context(), "request failed",
			slog.String("request_id", p.RequestID), slog.String("path", r.URL.Path),
			slog.Int("status", p.Status), slog.String("error", err.Error()))
	}
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p Problem) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	switch p.Status {
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", "1")
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="orderledger"`)
	case http.StatusUnsupportedMediaType:
		// The one content coding bodies may have (RFC 9110 15.5.16).
		h.Set("Accept-Encoding", "identity")
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// malformed returns a 400 error for a bad query parameter or header.
func malformed(field, format string, args ...any) *domain.Error {
	msg := fmt.Sprintf(format, args...)
	return &domain.Error{Code: codeMalformed, Message: field + ": " + msg, Fields: map[string]string{field: msg}}
}
