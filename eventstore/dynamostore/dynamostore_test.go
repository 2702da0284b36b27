package dynamostore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"

	"github.com/orderledger/orderledger/eventstore/dynamostore"
	"github.com/orderledger/orderledger/eventstore/storetest"
	"github.com/orderledger/orderledger/internal/awstest"
)

// TestConformance runs the event store suite against moto, one fresh table
// per subtest. Moto is not safe for concurrent conflicting writes, so the
// race cases are off here; they run on the embedded store.
func TestConformance(t *testing.T) {
	c := awstest.Clients(t)
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		table := awstest.Table(t, c.DynamoDB, "events")
		return storetest.Harness{
			Store: mustNew(t, c.DynamoDB, table),
			// A new Store over the same table: nothing cached survives.
			Reopen: func(t *testing.T) eventstore.Store { return mustNew(t, c.DynamoDB, table) },
		}
	}, storetest.Features{
		Reopen: true,
		// Conflicting writers race from many goroutines: scripts/moto.sh
		// serves moto one request at a time, as a table applies each
		// request atomically (its stock threaded server lost writes).
		ConcurrentConflicts: true,
		// No global feed (the stream Lambdas read DynamoDB Streams) and no
		// checkpoints table.
	})
}

func mustNew(t *testing.T, db *dynamodb.Client, table string) *dynamostore.Store {
	t.Helper()
	s, err := dynamostore.New(db, table, dynamostore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var ids = domain.NewULIDSource(nil)

func event(data string) eventstore.Event {
	now := time.Now().UTC()
	return eventstore.Event{EventID: ids(now), Type: "Tested", SchemaVersion: 1, OccurredAt: now, Data: json.RawMessage(data)}
}

// metered returns clients whose requests m counts.
func metered(t *testing.T) (*dynamodb.Client, *awstest.Meter) {
	cfg := awstest.Config(t)
	m := awstest.NewMeter(nil)
	m.Attach(&cfg)
	return dynamodb.NewFromConfig(cfg), m
}

// TestRequestsPerAppend pins the write path: a single event is one
// conditional PutItem (plus one read, which also fetches the hash to chain
// to, only when the store has never seen the expected version), several
// events or an idempotency key one TransactWriteItems.
func TestRequestsPerAppend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, m := metered(t)
	table := awstest.Table(t, db, "events")
	s := mustNew(t, db, table)
	stream := ids(time.Now())
	step := func(name string, want map[string]int64, f func() error) {
		t.Helper()
		before := m.Snapshot()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := m.Snapshot().Sub(before).Calls
		if !maps.Equal(got, want) {
			t.Fatalf("%s: requests %v, want %v", name, got, want)
		}
	}
	step("first event", map[string]int64{"DynamoDB.PutItem": 1}, func() error {
		_, err := s.Append(ctx, stream, 0, event(`{"n":1}`))
		return err
	})
	step("next event, version known", map[string]int64{"DynamoDB.PutItem": 1}, func() error {
		_, err := s.Append(ctx, stream, 1, event(`{"n":2}`))
		return err
	})
	step("two events", map[string]int64{"DynamoDB.TransactWriteItems": 1}, func() error {
		_, err := s.Append(ctx, stream, 2, event(`{"n":3}`), event(`{"n":4}`))
		return err
	})
	step("idempotent event", map[string]int64{"DynamoDB.TransactWriteItems": 1}, func() error {
		_, err := s.AppendIdempotent(ctx, "k-"+stream, stream, 4, event(`{"n":5}`))
		return err
	})
	fresh := mustNew(t, db, table)
	step("event from a store that never saw the version", map[string]int64{"DynamoDB.GetItem": 1, "DynamoDB.PutItem": 1}, func() error {
		_, err := fresh.Append(ctx, stream, 5, event(`{"n":6}`))
		return err
	})
	// A version the store has seen taken: nothing is written; one read
	// tells whether it holds the event appended (a retry), one the head.
	step("stale expected version", map[string]int64{"DynamoDB.GetItem": 1, "DynamoDB.Query": 1}, func() error {
		_, err := fresh.Append(ctx, stream, 5, event(`{"n":7}`))
		var ce *eventstore.ConflictError
		if !errors.As(err, &ce) || ce.Actual != 6 {
			return fmt.Errorf("got %v, want a conflict at actual 6", err)
		}
		return nil
	})
	u := m.Snapshot()
	if u.WriteUnits <= 0 || u.ReadUnits <= 0 {
		t.Fatalf("meter counted no capacity: %+v", u)
	}
}

// TestLoadFollowsPages writes more than one Query page (1 MB) to one stream
// and loads it whole.
func TestLoadFollowsPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, m := metered(t)
	s := mustNew(t, db, awstest.Table(t, db, "events"))
	stream := ids(time.Now())
	blob := `{"blob":"` + strings.Repeat("x", 300*1024) + `"}`
	const n = 5
	for v := range int64(n) {
		if _, err := s.Append(ctx, stream, v, event(blob)); err != nil {
			t.Fatal(err)
		}
	}
	before := m.Snapshot()
	got, err := s.Load(ctx, stream, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || got[n-1].Version != n {
		t.Fatalf("loaded %d events, want %d", len(got), n)
	}
	if q := m.Snapshot().Sub(before).Calls["DynamoDB.Query"]; q < 2 {
		t.Fatalf("load took %d Query pages; the test wanted at least 2", q)
	}
}

func TestNewRejectsMissingDependencies(t *testing.T) {
	t.Parallel()
	if _, err := dynamostore.New(nil, "t", dynamostore.Options{}); err == nil {
		t.Fatal("New without a client succeeded")
	}
	if _, err := dynamostore.New(dynamodb.New(dynamodb.Options{}), "", dynamostore.Options{}); err == nil {
		t.Fatal("New without a table succeeded")
	}
}

// TestRetriedPutFindsItsOwnEvent: when the response to a put is lost and
// the SDK sends it again, the retry fails its condition against the event it
// wrote itself; that is the append succeeding, not a conflict. Replaying the
// same event (same ID) at the same version reproduces it.
func TestRetriedPutFindsItsOwnEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := awstest.Clients(t)
	table := awstest.Table(t, c.DynamoDB, "events")
	stream := ids(time.Now())
	e := event(`{"n":1}`)
	if _, err := mustNew(t, c.DynamoDB, table).Append(ctx, stream, 0, e); err != nil {
		t.Fatal(err)
	}
	res, err := mustNew(t, c.DynamoDB, table).Append(ctx, stream, 0, e)
	if err != nil || res.Version != 1 {
		t.Fatalf("replayed put: %+v, %v; want success at version 1", res, err)
	}
	other := event(`{"n":1}`)
	var ce *eventstore.ConflictError
	if _, err := mustNew(t, c.DynamoDB, table).Append(ctx, stream, 0, other); !errors.As(err, &ce) || ce.Actual != 1 {
		t.Fatalf("another event at the same version: %v, want a conflict", err)
	}
	if got, _ := mustNew(t, c.DynamoDB, table).Load(ctx, stream, 0); len(got) != 1 {
		t.Fatalf("stream holds %d events", len(got))
	}
}
