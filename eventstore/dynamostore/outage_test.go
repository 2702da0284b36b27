package dynamostore_test

import (
	"context"
	"testing"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/internal/awstest"
)

// TestOutageIsUnavailable: when DynamoDB cannot be reached, reads and
// appends fail with domain.Unavailable (the API's 503), not Internal.
func TestOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	s := mustNew(t, awstest.Unreachable(t), "events")
	ctx := context.Background()
	if _, err := s.Load(ctx, "o1", 1); domain.CodeOf(err) != domain.Unavailable {
		t.Errorf("Load during an outage: %v (code %q), want unavailable", err, domain.CodeOf(err))
	}
	if _, err := s.Append(ctx, "o1", 0, event(`{}`)); domain.CodeOf(err) != domain.Unavailable {
		t.Errorf("Append during an outage: %v (code %q), want unavailable", err, domain.CodeOf(err))
	}
	if _, err := s.Append(ctx, "o1", 0, event(`{}`), event(`{}`)); domain.CodeOf(err) != domain.Unavailable {
		t.Errorf("Append of two during an outage: %v (code %q), want unavailable", err, domain.CodeOf(err))
	}
}
