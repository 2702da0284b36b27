package awsconfig_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/awstest"
)

// closedEndpoint returns the URL of a loopback port nothing listens on.
func closedEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestMarkUnavailableOnARealTransportFailure: a real SDK call to an endpoint
// that refuses connections is marked Unavailable, and stays an SDK error.
func TestMarkUnavailableOnARealTransportFailure(t *testing.T) {
	t.Parallel()
	cfg := awsconfig.ForEndpoint(closedEndpoint(t))
	cfg.RetryMaxAttempts = 1
	_, err := dynamodb.NewFromConfig(cfg).DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String("t")})
	if err == nil {
		t.Fatal("DescribeTable on a closed port succeeded")
	}
	if got := domain.CodeOf(err); got != domain.Internal {
		t.Fatalf("unmarked transport error has code %q; the test assumes Internal", got)
	}
	marked := awsconfig.MarkUnavailable(err)
	if got := domain.CodeOf(marked); got != domain.Unavailable {
		t.Fatalf("CodeOf(MarkUnavailable(%v)) = %q, want unavailable", err, got)
	}
	if !errors.Is(marked, err) || marked.Error() != err.Error() {
		t.Fatalf("the mark hides the SDK error: %v", marked)
	}
}

func TestMarkUnavailableLeavesOtherErrorsAlone(t *testing.T) {
	t.Parallel()
	if awsconfig.MarkUnavailable(nil) != nil {
		t.Fatal("MarkUnavailable(nil) is not nil")
	}
	plain := errors.New("something else")
	if awsconfig.MarkUnavailable(plain) != plain {
		t.Fatal("a plain error was marked")
	}
	ccf := &types.ConditionalCheckFailedException{Message: aws.String("condition")}
	if got := awsconfig.MarkUnavailable(ccf); got != error(ccf) {
		t.Fatalf("a client fault was marked: %v", got)
	}
	throttled := &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}
	if got := domain.CodeOf(awsconfig.MarkUnavailable(throttled)); got != domain.Unavailable {
		t.Fatalf("throttling has code %q, want unavailable", got)
	}
}

// TestMarkUnavailableLeavesAMissingTableAlone: a real "no such table" answer
// from the emulator is the caller's problem, not an outage.
func TestMarkUnavailableLeavesAMissingTableAlone(t *testing.T) {
	t.Parallel()
	db := dynamodb.NewFromConfig(awstest.Config(t))
	_, err := db.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(awstest.Names(t).EventsTable)})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("DescribeTable of a missing table: %v", err)
	}
	if got := domain.CodeOf(awsconfig.MarkUnavailable(err)); got == domain.Unavailable {
		t.Fatalf("a missing table was marked unavailable: %v", err)
	}
}
