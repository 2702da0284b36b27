package awsconfig

import (
	"errors"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/orderledger/orderledger/domain"
)

// MarkUnavailable returns err marked as domain.Unavailable (HTTP 503,
// "retry later") when it says that AWS could not be reached or asked the
// caller to back off: a transport failure (connection refused or reset, a
// DNS or TLS failure, a network timeout), a throttling error, a server
// fault or a 5xx answer. Any other error, nil included, is returned
// unchanged. The mark wraps err: errors.Is and errors.As still find the
// SDK's own errors (a ConditionalCheckFailedException, say) through it.
//
// The adapters over the SDK (eventstore/dynamostore, projections/dynamoviews)
// pass every SDK error through it, so that an outage answers 503, not 500.
func MarkUnavailable(err error) error {
	if err == nil || !unavailable(err) {
		return err
	}
	return &unavailableError{err: err}
}

func unavailable(err error) bool {
	var conn interface{ ConnectionError() bool }
	if errors.As(err, &conn) && conn.ConnectionError() {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if _, ok := retry.DefaultThrottleErrorCodes[ae.ErrorCode()]; ok || ae.ErrorFault() == smithy.FaultServer {
			return true
		}
	}
	var status interface{ HTTPStatusCode() int }
	return errors.As(err, &status) && status.HTTPStatusCode() >= 500
}

// unavailableError carries the domain code of an error that only says
// "not now".
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }

func (e *unavailableError) Unwrap() error { return e.err }

// DomainCode implements the interface domain.CodeOf looks for.
func (e *unavailableError) DomainCode() domain.Code { return domain.Unavailable }
