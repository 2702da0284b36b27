package dynamostore_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/dynamostore"
	"github.com/orderledger/orderledger/internal/awstest"
)

// TestMigrate: items stored before the chain (no hash attributes) verify
// as unhashed, an append after one stays unhashed, Migrate hashes them all
// (and Heads agrees with Load), a second run has nothing to do, and
// appends afterwards chain on. A digest record is no event to any of it.
func TestMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := awstest.Clients(t)
	table := awstest.Table(t, c.DynamoDB, "events")
	s := mustNew(t, c.DynamoDB, table)
	if _, err := s.Append(ctx, "hashed", 0, event(`{"n":1}`), event(`{"n":2}`)); err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"legacy-a", "legacy-b"} {
		for v := int64(1); v <= 3; v++ {
			e := event(`{"n":1}`)
			e.StreamID, e.Version = st, v
			if _, err := c.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: dynamostore.Item(e)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.RecordDigest(ctx, eventstore.Digest{Format: eventstore.DigestFormat, Streams: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "legacy-a", 3, event(`{"n":4}`)); err != nil {
		t.Fatal(err)
	}
	check := func(wantHolds bool) {
		t.Helper()
		n := 0
		if err := s.Heads(ctx, func(h eventstore.Head) error {
			n++
			envs, err := s.Load(ctx, h.StreamID, 1)
			if err != nil {
				return err
			}
			if last := envs[len(envs)-1]; last.Version != h.Version || last.Hash != h.Hash {
				t.Errorf("head of %s: %+v, last event v%d %s", h.StreamID, h, last.Version, last.Hash)
			}
			if brk := eventstore.VerifyChain(h.StreamID, envs); (brk == nil) != (wantHolds || h.StreamID == "hashed") {
				t.Errorf("%s: %v", h.StreamID, brk)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Fatalf("%d heads, want 3", n)
		}
	}
	check(false)
	rep, err := s.Migrate(ctx, nil)
	if err != nil || rep.Streams != 3 || rep.MigratedStreams != 2 || rep.Events != 7 {
		t.Fatalf("migrate: %+v, %v; want 3 streams, 2 migrated, 7 events", rep, err)
	}
	check(true)
	if rep, err := s.Migrate(ctx, nil); err != nil || rep.Events != 0 {
		t.Fatalf("second run: %+v, %v; want nothing to do", rep, err)
	}
	// This store cached legacy-b's head before the migration, unhashed:
	// it reads it again rather than append unhashed.
	if _, err := s.Append(ctx, "legacy-b", 3, event(`{"n":4}`)); err != nil {
		t.Fatal(err)
	}
	check(true)
}
