package dynamostore_test

import (
	"context"
	"net"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/internal/awsconfig"
)

// TestOutageIsUnavailable: when DynamoDB cannot be reached, reads and
// appends fail with domain.Unavailable (the API's 503), not Internal.
func TestOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now: every connection is refused
	cfg := awsconfig.ForEndpoint(endpoint)
	cfg.RetryMaxAttempts = 1
	s := mustNew(t, dynamodb.NewFromConfig(cfg), "events")
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
