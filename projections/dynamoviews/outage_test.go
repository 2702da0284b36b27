package dynamoviews_test

import (
	"context"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/dynamoviews"
)

// TestOutageIsUnavailable: when DynamoDB cannot be reached, reads, lists
// and writes fail with domain.Unavailable (the API's 503), not Internal.
func TestOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	s, err := dynamoviews.New(awstest.Unreachable(t), "orders")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Get(ctx, "o1"); domain.CodeOf(err) != domain.Unavailable {
		t.Errorf("Get during an outage: %v (code %q), want unavailable", err, domain.CodeOf(err))
	}
	if _, err := s.List(ctx, projections.ListQuery{Limit: 10}); domain.CodeOf(err) != domain.Unavailable {
		t.Errorf("List during an outage: %v (code %q), want unavailable", err, domain.CodeOf(err))
	}
	if _, err := s.Counts(ctx); domain.CodeOf(err) != domain.Unavailable {
		t.Errorf("Counts during an outage: %v (code %q), want unavailable", err, domain.CodeOf(err))
	}
	if err := s.Put(ctx, 0, view("Ada", order.StatusPending, time.Now(), 1)); domain.CodeOf(err) != domain.Unavailable {
		t.Errorf("Put during an outage: %v (code %q), want unavailable", err, domain.CodeOf(err))
	}
}
