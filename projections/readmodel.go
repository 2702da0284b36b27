package projections

import (
	"context"
	"fmt"
	"strings"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
)

// ReadModel is the port every read-model adapter implements.
//
// Writes are version-fenced compare-and-set: Put stores a view only when the
// stored one is at the version the writer read. On DynamoDB that is one
// conditional PutItem ("attribute_not_exists(order_id)" when expected is 0,
// "version = :expected" otherwise).
type ReadModel interface {
	// Get returns the view of orderID, or order.ErrNotFound.
	Get(ctx context.Context, orderID string) (View, error)
	// Put stores v when the stored view of v.OrderID is at version expected
	// (0: no stored view). Otherwise it stores nothing and returns a
	// *ConflictError with the stored version. v.Version must exceed expected.
	Put(ctx context.Context, expected int64, v View) error
	// List returns views matching q, newest first (CreatedAt descending, then
	// OrderID descending), a page at a time.
	List(ctx context.Context, q ListQuery) (Page, error)
	// Counts returns how many orders are in each status; every status in
	// order.Statuses is present, with 0 when none.
	Counts(ctx context.Context) (map[order.Status]int64, error)
}

// Page sizes for List, and for GET /orders, which passes its limit on.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// ListQuery filters and pages List. Empty filters match everything.
type ListQuery struct {
	// Status keeps only orders in this status.
	Status order.Status
	// Customer keeps only orders whose CustomerName is exactly this.
	Customer string
	// Limit is the page size: 0 for DefaultLimit, at most MaxLimit.
	Limit int
	// Cursor is Page.NextCursor from the previous page; empty for the first.
	// It is bound to Status and Customer: with others it is ErrBadCursor.
	Cursor string
}

// Validate checks q and returns it with Limit defaulted, or an Invalid
// domain error naming the bad fields.
func (q ListQuery) Validate() (ListQuery, error) {
	bad := map[string]string{}
	if q.Status != "" && !q.Status.Valid() {
		bad["status"] = fmt.Sprintf("must be one of %s", statusList())
	}
	if q.Limit < 0 || q.Limit > MaxLimit {
		bad["limit"] = fmt.Sprintf("must be an integer from 1 to %d", MaxLimit)
	}
	if len(q.Customer) > 4*order.MaxNameLength {
		bad["customer"] = "is too long"
	}
	if len(bad) > 0 {
		return q, &domain.Error{Code: domain.Invalid, Message: "invalid list query", Fields: bad}
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	return q, nil
}

func statusList() string {
	s := make([]string, len(order.Statuses))
	for i, st := range order.Statuses {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

// ErrBadCursor is returned by List for a cursor it did not issue, or
// issued for other filters (see Cursors).
var ErrBadCursor = &domain.Error{Code: domain.Invalid, Message: "invalid cursor: not one this server issued for this query"}

// Page is one page of List results.
type Page struct {
	Items []View `json:"items"`
	// NextCursor fetches the next page; empty on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// ConflictError reports that a Put found the stored view at another version
// than expected. Check for it with errors.As.
type ConflictError struct {
	OrderID  string
	Expected int64
	Actual   int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("projections: conflict on view %s: expected version %d, actual %d", e.OrderID, e.Expected, e.Actual)
}

// DomainCode makes a conflict a precondition failure.
func (e *ConflictError) DomainCode() domain.Code { return domain.PreconditionFailed }
