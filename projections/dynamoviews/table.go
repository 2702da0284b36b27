package dynamoviews

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/orderledger/orderledger/internal/awsconfig"
)

// CreateTableLike creates the read table name with the keys, attribute
// definitions, global secondary indexes (keys and projections), billing
// mode and capacity of the table source, and waits until it is active: the
// target of a blue/green rebuild. A name that exists already is accepted
// when its keys and indexes are source's (a rebuild into it was
// interrupted), and refused otherwise. created reports whether it made the
// table. Encryption, point-in-time recovery, deletion protection and tags
// are not copied: they are the deployment's (Terraform's) to set.
func CreateTableLike(ctx context.Context, db *dynamodb.Client, source, name string) (created bool, err error) {
	src, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(source)})
	if err != nil {
		return false, fmt.Errorf("projections/dynamoviews: describe %s: %w", source, awsconfig.MarkUnavailable(err))
	}
	t := src.Table
	in := &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: t.AttributeDefinitions,
		KeySchema:            t.KeySchema,
		BillingMode:          types.BillingModePayPerRequest,
	}
	provisioned := t.BillingModeSummary == nil || t.BillingModeSummary.BillingMode == types.BillingModeProvisioned
	if provisioned && t.ProvisionedThroughput != nil && aws.ToInt64(t.ProvisionedThroughput.ReadCapacityUnits) > 0 {
		in.BillingMode = types.BillingModeProvisioned
		in.ProvisionedThroughput = &types.ProvisionedThroughput{
			ReadCapacityUnits: t.ProvisionedThroughput.ReadCapacityUnits, WriteCapacityUnits: t.ProvisionedThroughput.WriteCapacityUnits,
		}
	}
	for _, g := range t.GlobalSecondaryIndexes {
		gsi := types.GlobalSecondaryIndex{IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection}
		if in.BillingMode == types.BillingModeProvisioned && g.ProvisionedThroughput != nil {
			gsi.ProvisionedThroughput = &types.ProvisionedThroughput{
				ReadCapacityUnits: g.ProvisionedThroughput.ReadCapacityUnits, WriteCapacityUnits: g.ProvisionedThroughput.WriteCapacityUnits,
			}
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, gsi)
	}
	_, err = db.CreateTable(ctx, in)
	var inUse *types.ResourceInUseException
	switch {
	case errors.As(err, &inUse):
		got, derr := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if derr != nil {
			return false, fmt.Errorf("projections/dynamoviews: describe %s: %w", name, awsconfig.MarkUnavailable(derr))
		}
		if !sameShape(t, got.Table) {
			return false, fmt.Errorf("projections/dynamoviews: table %s exists with other keys or indexes than %s", name, source)
		}
	case err != nil:
		return false, fmt.Errorf("projections/dynamoviews: create %s: %w", name, awsconfig.MarkUnavailable(err))
	default:
		created = true
	}
	w := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay = time.Second / 4 })
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 10*time.Minute); err != nil {
		return created, fmt.Errorf("projections/dynamoviews: wait for %s: %w", name, err)
	}
	return created, nil
}

// sameShape reports whether two tables have the same keys and indexes.
func sameShape(a, b *types.TableDescription) bool {
	type index struct {
		name string
		keys []types.KeySchemaElement
		proj types.ProjectionType
	}
	indexes := func(t *types.TableDescription) []index {
		var out []index
		for _, g := range t.GlobalSecondaryIndexes {
			ix := index{name: aws.ToString(g.IndexName), keys: g.KeySchema}
			if g.Projection != nil {
				ix.proj = g.Projection.ProjectionType
			}
			out = append(out, ix)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
		return out
	}
	keys := func(ks []types.KeySchemaElement) []string {
		var out []string
		for _, k := range ks {
			out = append(out, aws.ToString(k.AttributeName)+"/"+string(k.KeyType))
		}
		return out
	}
	ia, ib := indexes(a), indexes(b)
	if !reflect.DeepEqual(keys(a.KeySchema), keys(b.KeySchema)) || len(ia) != len(ib) {
		return false
	}
	for i := range ia {
		if ia[i].name != ib[i].name || ia[i].proj != ib[i].proj || !reflect.DeepEqual(keys(ia[i].keys), keys(ib[i].keys)) {
			return false
		}
	}
	return true
}
