// Package dynamoviews is the order read model on a DynamoDB table (the seed's
// dev-orders): one item per order keyed by order_id, with the seed's
// attribute names (order_id, customer_name, product_name, quantity as a
// number, status as Pending/Completed/Failed/Cancelled) plus version and
// the rest of projections.View. Writes are version-fenced conditional
// PutItems; lists use the status-index and customer-index GSIs.
//
// When DynamoDB cannot be reached, throttles or fails on its side, the
// error has code domain.Unavailable (HTTP 503: retry later), never
// Internal; the SDK's own error stays in the chain.
package dynamoviews

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/resources"
	"github.com/orderledger/orderledger/projections"
)

// Item attribute names (the first five are the seed's).
const (
	attrOrderID       = "order_id"
	attrCustomer      = "customer_name"
	attrProduct       = "product_name"
	attrQuantity      = "quantity"
	attrStatus        = "status"
	attrVersion       = "version"
	attrCreatedAt     = "created_at" // sort key of both GSIs: "<RFC 3339 fixed width>#<order_id>"
	attrUpdatedAt     = "updated_at"
	attrFailure       = "failure_reason"
	attrPaymentID     = "payment_id"
	attrReservationID = "reservation_id"
	attrAmount        = "amount"
	// attrWriteID is a random token per Put call. When the SDK retries a
	// PutItem whose first attempt was applied but whose answer was lost, the
	// retry fails its condition; finding our own token in the stored item
	// tells that apart from a real conflict.
	attrWriteID = "write_id"
)

// sortTime formats times with a fixed width so that strings sort as times.
const sortTime = "2006-01-02T15:04:05.000000000Z"

// Store is the read model. Safe for concurrent use.
type Store struct {
	db      *dynamodb.Client
	table   string
	cursors *projections.Cursors
}

var _ projections.ReadModel = (*Store)(nil)

// New returns the read model over table (resources.Names.OrdersTable).
func New(db *dynamodb.Client, table string) (*Store, error) {
	if db == nil || table == "" {
		return nil, errors.New("projections/dynamoviews: new: a DynamoDB client and a table name are required")
	}
	cursors, err := projections.NewCursors(cursorKey(table))
	if err != nil {
		return nil, fmt.Errorf("projections/dynamoviews: new: %w", err)
	}
	return &Store{db: db, table: table, cursors: cursors}, nil
}

// Table returns the name of the read table.
func (s *Store) Table() string { return s.table }

// cursorKey is the key list cursors are sealed with, derived from the table
// name: every API instance and Lambda of one table has it with no
// configuration and no extra permission (the API may only read the table),
// and a cursor of one table is refused by another. It is no secret, so the
// seal proves a cursor unchanged and bound to its filters, not who made it;
// a forged one can only name a position in a listing its sender may page
// through anyway, and the position is checked like any other.
func cursorKey(table string) []byte {
	k := sha256.Sum256([]byte("orderledger/projections/dynamoviews cursor key\x00" + table))
	return k[:]
}

// createdKey is the GSI sort key of v: unique, ordered by time then ID.
func createdKey(v projections.View) string {
	return v.CreatedAt.UTC().Format(sortTime) + "#" + v.OrderID
}

// Item returns the stored item of v.
func Item(v projections.View) map[string]types.AttributeValue {
	s := func(x string) types.AttributeValue { return &types.AttributeValueMemberS{Value: x} }
	n := func(x int64) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(x, 10)}
	}
	item := map[string]types.AttributeValue{
		attrOrderID:   s(v.OrderID),
		attrQuantity:  n(int64(v.Quantity)),
		attrVersion:   n(v.Version),
		attrCreatedAt: s(createdKey(v)),
		attrUpdatedAt: s(v.UpdatedAt.UTC().Format(time.RFC3339Nano)),
		attrAmount:    n(v.Amount),
	}
	// Index key attributes must not be empty strings; the others are
	// omitted when empty to keep items small.
	for k, val := range map[string]string{attrCustomer: v.CustomerName, attrProduct: v.ProductName, attrStatus: string(v.Status),
		attrFailure: v.FailureReason, attrPaymentID: v.PaymentID, attrReservationID: v.ReservationID} {
		if val != "" {
			item[k] = s(val)
		}
	}
	return item
}

// View decodes a stored item.
func View(item map[string]types.AttributeValue) (projections.View, error) {
	var v projections.View
	var bad []string
	str := func(k string) string {
		if a, ok := item[k].(*types.AttributeValueMemberS); ok {
			return a.Value
		}
		return ""
	}
	num := func(k string) int64 {
		a, ok := item[k].(*types.AttributeValueMemberN)
		if !ok {
			bad = append(bad, k)
			return 0
		}
		x, err := strconv.ParseInt(a.Value, 10, 64)
		if err != nil {
			bad = append(bad, k)
		}
		return x
	}
	v.OrderID = str(attrOrderID)
	v.CustomerName, v.ProductName = str(attrCustomer), str(attrProduct)
	v.Quantity = int(num(attrQuantity))
	v.Status = order.Status(str(attrStatus))
	v.Version = num(attrVersion)
	v.Amount = num(attrAmount)
	v.FailureReason, v.PaymentID, v.ReservationID = str(attrFailure), str(attrPaymentID), str(attrReservationID)
	var err error
	created, _, _ := strings.Cut(str(attrCreatedAt), "#")
	if v.CreatedAt, err = time.Parse(time.RFC3339Nano, created); err != nil {
		bad = append(bad, attrCreatedAt)
	}
	if v.UpdatedAt, err = time.Parse(time.RFC3339Nano, str(attrUpdatedAt)); err != nil {
		bad = append(bad, attrUpdatedAt)
	}
	if v.OrderID == "" {
		bad = append(bad, attrOrderID)
	}
	if len(bad) > 0 {
		return v, fmt.Errorf("projections/dynamoviews: item %q: bad attributes %v", v.OrderID, bad)
	}
	return v, nil
}

func key(orderID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrOrderID: &types.AttributeValueMemberS{Value: orderID}}
}

// Get implements projections.ReadModel with a strongly consistent read.
func (s *Store) Get(ctx context.Context, orderID string) (projections.View, error) {
	if orderID == "" || len(orderID) > 1024 {
		return projections.View{}, order.ErrNotFound
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(orderID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return projections.View{}, fmt.Errorf("projections/dynamoviews: get %s: %w", orderID, awsconfig.MarkUnavailable(err))
	}
	if len(out.Item) == 0 {
		return projections.View{}, order.ErrNotFound
	}
	return View(out.Item)
}

// Put implements projections.ReadModel: one PutItem conditioned on the
// stored version.
func (s *Store) Put(ctx context.Context, expected int64, v projections.View) error {
	switch {
	case v.OrderID == "" || len(v.OrderID) > 1024:
		return domain.Errorf(domain.Invalid, "projections/dynamoviews: put: order ID must be 1..1024 bytes")
	case expected < 0 || v.Version <= expected:
		return domain.Errorf(domain.Invalid, "projections/dynamoviews: put %s: version %d does not follow %d", v.OrderID, v.Version, expected)
	case !v.Status.Valid():
		return domain.Errorf(domain.Invalid, "projections/dynamoviews: put %s: unknown status %q", v.OrderID, v.Status)
	}
	item := Item(v)
	writeID := newWriteID()
	item[attrWriteID] = &types.AttributeValueMemberS{Value: writeID}
	in := &dynamodb.PutItemInput{
		TableName:                           aws.String(s.table),
		Item:                                item,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if expected == 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(" + attrOrderID + ")")
	} else {
		in.ConditionExpression = aws.String("#v = :expected")
		in.ExpressionAttributeNames = map[string]string{"#v": attrVersion}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":expected": &types.AttributeValueMemberN{Value: strconv.FormatInt(expected, 10)}}
	}
	_, err := s.db.PutItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		if w, ok := ccf.Item[attrWriteID].(*types.AttributeValueMemberS); ok && w.Value == writeID {
			return nil // our own earlier attempt of this call was applied
		}
		actual := int64(0)
		if len(ccf.Item) > 0 {
			if old, derr := View(ccf.Item); derr == nil {
				actual = old.Version
			}
		} else if cur, gerr := s.Get(ctx, v.OrderID); gerr == nil {
			actual = cur.Version
		} else if !errors.Is(gerr, order.ErrNotFound) {
			return gerr
		}
		return &projections.ConflictError{OrderID: v.OrderID, Expected: expected, Actual: actual}
	}
	if err != nil {
		return fmt.Errorf("projections/dynamoviews: put %s: %w", v.OrderID, awsconfig.MarkUnavailable(err))
	}
	return nil
}

// openCursor returns the created_at sort key a cursor of q holds.
func (s *Store) openCursor(q projections.ListQuery) (string, error) {
	b, err := s.cursors.Open(q, q.Cursor)
	if err != nil {
		return "", err
	}
	k := string(b)
	ts, id, ok := strings.Cut(k, "#")
	if _, terr := time.Parse(time.RFC3339Nano, ts); !ok || id == "" || terr != nil {
		return "", projections.ErrBadCursor
	}
	return k, nil
}

// List implements projections.ReadModel. With a status or a customer it
// queries that index newest first; with neither it queries the status index
// once per status and merges.
func (s *Store) List(ctx context.Context, q projections.ListQuery) (projections.Page, error) {
	q, err := q.Validate()
	if err != nil {
		return projections.Page{}, err
	}
	before := ""
	if q.Cursor != "" {
		if before, err = s.openCursor(q); err != nil {
			return projections.Page{}, err
		}
	}
	want := q.Limit + 1 // one more tells whether there is a next page
	var items []map[string]types.AttributeValue
	switch {
	case q.Customer != "":
		items, err = s.queryIndex(ctx, resources.CustomerIndex, attrCustomer, q.Customer, string(q.Status), before, want)
	case q.Status != "":
		items, err = s.queryIndex(ctx, resources.StatusIndex, attrStatus, string(q.Status), "", before, want)
	default:
		for _, st := range order.Statuses {
			got, qerr := s.queryIndex(ctx, resources.StatusIndex, attrStatus, string(st), "", before, want)
			if qerr != nil {
				return projections.Page{}, qerr
			}
			items = append(items, got...)
		}
	}
	if err != nil {
		return projections.Page{}, err
	}
	sortKey := func(it map[string]types.AttributeValue) string {
		a, _ := it[attrCreatedAt].(*types.AttributeValueMemberS)
		if a == nil {
			return ""
		}
		return a.Value
	}
	sort.Slice(items, func(i, j int) bool { return sortKey(items[i]) > sortKey(items[j]) })
	page := projections.Page{Items: []projections.View{}}
	for i, it := range items {
		if i == q.Limit {
			page.NextCursor = s.cursors.Seal(q, []byte(sortKey(items[i-1])))
			break
		}
		v, err := View(it)
		if err != nil {
			return projections.Page{}, err
		}
		page.Items = append(page.Items, v)
	}
	return page, nil
}

// queryIndex returns up to limit items of index whose hash key is value and
// whose created_at sorts before `before` (when set), newest first, keeping
// only status filterStatus when set.
func (s *Store) queryIndex(ctx context.Context, index, hashAttr, value, filterStatus, before string, limit int) ([]map[string]types.AttributeValue, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(index),
		KeyConditionExpression:    aws.String("#h = :h"),
		ExpressionAttributeNames:  map[string]string{"#h": hashAttr},
		ExpressionAttributeValues: map[string]types.AttributeValue{":h": &types.AttributeValueMemberS{Value: value}},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(int32(limit)),
	}
	if before != "" {
		in.KeyConditionExpression = aws.String("#h = :h AND #c < :before")
		in.ExpressionAttributeNames["#c"] = attrCreatedAt
		in.ExpressionAttributeValues[":before"] = &types.AttributeValueMemberS{Value: before}
	}
	if filterStatus != "" {
		in.FilterExpression = aws.String("#st = :st")
		in.ExpressionAttributeNames["#st"] = attrStatus
		in.ExpressionAttributeValues[":st"] = &types.AttributeValueMemberS{Value: filterStatus}
	}
	var out []map[string]types.AttributeValue
	p := dynamodb.NewQueryPaginator(s.db, in)
	for p.HasMorePages() && len(out) < limit {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("projections/dynamoviews: query %s: %w", index, awsconfig.MarkUnavailable(err))
		}
		out = append(out, page.Items...)
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Counts implements projections.ReadModel with one COUNT query of the
// status index per status.
func (s *Store) Counts(ctx context.Context) (map[order.Status]int64, error) {
	counts := make(map[order.Status]int64, len(order.Statuses))
	for _, st := range order.Statuses {
		p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
			TableName:                 aws.String(s.table),
			IndexName:                 aws.String(resources.StatusIndex),
			KeyConditionExpression:    aws.String("#h = :h"),
			ExpressionAttributeNames:  map[string]string{"#h": attrStatus},
			ExpressionAttributeValues: map[string]types.AttributeValue{":h": &types.AttributeValueMemberS{Value: string(st)}},
			Select:                    types.SelectCount,
		})
		var n int64
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("projections/dynamoviews: count %s: %w", st, awsconfig.MarkUnavailable(err))
			}
			n += int64(page.Count)
		}
		counts[st] = n
	}
	return counts, nil
}

// newWriteID returns a random token identifying one Put call.
func newWriteID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
