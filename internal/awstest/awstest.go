// Package awstest is the test harness of the AWS adapters: it finds the AWS
// emulator (moto, started by scripts/moto.sh) from LEDGER_TEST_AWS_ENDPOINT,
// builds clients for it, and gives every test its own resource names so
// tests never share (or wipe) each other's tables, topics and queues.
//
// It also owns Meter, an SDK middleware that counts requests and DynamoDB
// capacity units, and the price list (Prices, Default) that turns them into
// the cost-per-order figures the tests report. They are test tools: nothing
// the binary ships imports this package.
//
// Tests that need an outage start a moto server of their own with
// StartMoto, and stop, pause and restart it: it runs the moto_server that
// LEDGER_TEST_MOTO_SERVER names, or the one scripts/moto.sh installed in
// .cache/moto at the module root.
//
// Without the variable the tests skip with a message saying how to run them;
// under CI (CI=true) a missing emulator fails the test instead, so the AWS
// path can never silently go untested.
package awstest

import (
	"context"
	"crypto/rand"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/orderledger/orderledger/aws/bootstrap"
	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/resources"
)

// EndpointEnv names the variable holding the emulator's endpoint URL.
const EndpointEnv = "LEDGER_TEST_AWS_ENDPOINT"

// Endpoint returns the emulator's endpoint, skipping the test when there is
// none (failing it when CI=true).
func Endpoint(t testing.TB) string {
	t.Helper()
	ep := strings.TrimSpace(os.Getenv(EndpointEnv))
	if ep == "" {
		msg := EndpointEnv + " is not set: AWS emulator tests need moto; run `export " + EndpointEnv + "=$(scripts/moto.sh start)` (make test does it)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return ep
}

// Config returns a configuration for the emulator (skipping as Endpoint does).
func Config(t testing.TB) aws.Config {
	t.Helper()
	return awsconfig.ForEndpoint(Endpoint(t))
}

// Clients returns clients for the emulator (skipping as Endpoint does).
func Clients(t testing.TB) awsconfig.Clients {
	t.Helper()
	return awsconfig.NewClients(Config(t))
}

// Names returns resource names unique to this test run and test.
func Names(t testing.TB) resources.Names {
	t.Helper()
	return resources.For(UniqueEnv())
}

// UniqueEnv returns a fresh environment prefix: "t" and 10 random lowercase
// letters and digits.
func UniqueEnv() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "t" + string(b)
}

// Bootstrap creates every resource of a fresh environment on the emulator
// and deletes it when the test ends. It returns the names and the clients.
func Bootstrap(t testing.TB) (resources.Names, awsconfig.Clients) {
	t.Helper()
	c := Clients(t)
	n := Names(t)
	ctx := context.Background()
	if _, err := bootstrap.Bootstrap(ctx, c, n); err != nil {
		t.Fatalf("awstest: bootstrap %s: %v", n.Env, err)
	}
	t.Cleanup(func() {
		if err := bootstrap.Teardown(context.Background(), c, n); err != nil {
			t.Logf("awstest: teardown %s: %v", n.Env, err)
		}
	})
	return n, c
}

// Table creates a fresh table of the given kind for this test and deletes it
// when the test ends: kind is "events" or "orders".
func Table(t testing.TB, db *dynamodb.Client, kind string) string {
	t.Helper()
	ctx := context.Background()
	n := Names(t)
	var name string
	var err error
	switch kind {
	case "events":
		name = n.EventsTable
		_, err = bootstrap.EnsureEventsTable(ctx, db, name)
	case "orders":
		name = n.OrdersTable
		err = bootstrap.EnsureOrdersTable(ctx, db, name)
	default:
		t.Fatalf("awstest: unknown table kind %q", kind)
	}
	if err != nil {
		t.Fatalf("awstest: create %s table: %v", kind, err)
	}
	t.Cleanup(func() {
		_, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return name
}

// Unreachable returns a DynamoDB client whose endpoint refuses every
// connection, one attempt per call: an outage, for the tests that every
// adapter answers it with domain.Unavailable. It needs no emulator.
func Unreachable(t testing.TB) *dynamodb.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := awsconfig.ForEndpoint(endpoint)
	cfg.RetryMaxAttempts = 1
	return dynamodb.NewFromConfig(cfg)
}
