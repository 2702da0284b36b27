// Package domain holds what every part of orderledger shares and nothing that
// does I/O: the kinds of error the system can report and the sources of time
// and identity that are injected into the pure order model (package order).
//
// Adapters (the event store, the API, the Lambdas) translate their failures
// into these kinds; the API maps each kind to exactly one HTTP status.
package domain

import (
	"errors"
	"fmt"
)

// Code is the kind of an error, independent of transport.
type Code string

// Error kinds. The API maps each to one HTTP status in a single table.
const (
	// Invalid: the input breaks a validation rule (HTTP 422).
	Invalid Code = "invalid"
	// Conflict: the request is not allowed in the current state (HTTP 409).
	Conflict Code = "conflict"
	// NotFound: the entity does not exist (HTTP 404).
	NotFound Code = "not_found"
	// PreconditionFailed: an expected version did not match (HTTP 412).
	PreconditionFailed Code = "precondition_failed"
	// Unavailable: a dependency is down or out of space; retry later (HTTP 503).
	Unavailable Code = "unavailable"
	// Internal: a bug or an unexpected failure; never shown to clients (HTTP 500).
	Internal Code = "internal"
)

// Error is a domain error with a kind, a message safe to show to clients and,
// for validation errors, the offending fields.
type Error struct {
	Code    Code
	Message string
	// Fields maps a field name (as the client spells it) to what is wrong with it.
	Fields map[string]string
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	return fmt.Sprintf("%s: %v", e.Message, e.Fields)
}

// Is lets errors.Is match two domain errors of the same code and message, so
// sentinel errors survive being copied.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == e.Message && len(t.Fields) == 0
}

// Errorf returns a new *Error of the given kind.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the kind of err: the code of the first *Error in its chain,
// a type implementing interface{ DomainCode() Code }, or Internal.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var de *Error
	if errors.As(err, &de) {
		return de.Code
	}
	var coded interface{ DomainCode() Code }
	if errors.As(err, &coded) {
		return coded.DomainCode()
	}
	return Internal
}
