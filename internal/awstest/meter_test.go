package awstest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/orderledger/orderledger/internal/awstest"
)

func TestItemSizeFollowsTheBillingRules(t *testing.T) {
	t.Parallel()
	item := map[string]types.AttributeValue{
		"order_id": &types.AttributeValueMemberS{Value: "01KAY9D3J8Q6ZC2W0F7M5T4H1B"}, // 8 + 26
		"quantity": &types.AttributeValueMemberN{Value: "12345"},                      // 8 + 4
		"ok":       &types.AttributeValueMemberBOOL{Value: true},                      // 2 + 1
	}
	if got, want := awstest.ItemSize(item), 8+26+8+4+2+1; got != want {
		t.Fatalf("ItemSize = %d, want %d", got, want)
	}
}

// TestMeterCountsRequestsAndUnits meters real requests against the emulator.
func TestMeterCountsRequestsAndUnits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := awstest.Config(t)
	m := awstest.NewMeter(nil)
	m.Attach(&cfg)
	db := dynamodb.NewFromConfig(cfg)
	table := awstest.Table(t, db, "orders")
	m.SetIndexes(table, 2)
	before := m.Snapshot()
	item := map[string]types.AttributeValue{"order_id": &types.AttributeValueMemberS{Value: "o1"}, "blob": &types.AttributeValueMemberS{Value: strings.Repeat("x", 1500)}}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{"order_id": item["order_id"]}, ConsistentRead: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	u := m.Snapshot().Sub(before)
	if u.Calls["DynamoDB.PutItem"] != 1 || u.Calls["DynamoDB.GetItem"] != 1 || len(u.Calls) != 2 {
		t.Fatalf("calls = %v", u.Calls)
	}
	// 1.5 KB: 2 units, times the table and its 2 indexes; one consistent read.
	if u.WriteUnits != 6 || u.ReadUnits != 1 {
		t.Fatalf("units: %v write, %v read; want 6 and 1", u.WriteUnits, u.ReadUnits)
	}
	lines := awstest.Default.PerMillion(awstest.Measured(u))
	if got := awstest.Total(lines); got != 6*0.625+1*0.125 {
		t.Fatalf("cost = %v", got)
	}
}

// TestMeterChargesIndexesByWhatAWriteChanges: on the real orders table
// (status-index and customer-index, both projecting ALL), a new item costs
// one unit per index, a status change two on status-index (delete, put) and
// one on customer-index, a change to a non-key attribute one each, and a
// put that changes nothing in the item nothing beyond the table's own unit.
func TestMeterChargesIndexesByWhatAWriteChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := awstest.Config(t)
	m := awstest.NewMeter(nil)
	m.Attach(&cfg)
	db := dynamodb.NewFromConfig(cfg)
	table := awstest.Table(t, db, "orders")
	if err := m.Describe(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	item := func(status, version string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{
			"order_id":      &types.AttributeValueMemberS{Value: "o1"},
			"status":        &types.AttributeValueMemberS{Value: status},
			"customer_name": &types.AttributeValueMemberS{Value: "Ada"},
			"created_at":    &types.AttributeValueMemberS{Value: "2026-12-03T00:00:00.000000000Z#o1"},
			"version":       &types.AttributeValueMemberN{Value: version},
		}
	}
	for _, step := range []struct {
		name string
		item map[string]types.AttributeValue
		want float64
	}{
		{"new item", item("Pending", "1"), 1 + 1 + 1},
		{"non-key attribute changed", item("Pending", "2"), 1 + 1 + 1},
		{"status changed", item("Completed", "3"), 1 + 2 + 1},
		{"nothing changed", item("Completed", "3"), 1},
	} {
		before := m.Snapshot()
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: step.item}); err != nil {
			t.Fatal(err)
		}
		if got := m.Snapshot().Sub(before).WriteUnits; got != step.want {
			t.Errorf("%s: %v write units, want %v", step.name, got, step.want)
		}
	}
}
