package dynamoviews_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/dynamoviews"
	"github.com/orderledger/orderledger/projections/readmodeltest"
)

var ids = domain.NewULIDSource(nil)

func newStore(t *testing.T) (*dynamoviews.Store, *dynamodb.Client, string) {
	t.Helper()
	c := awstest.Clients(t)
	table := awstest.Table(t, c.DynamoDB, "orders")
	s, err := dynamoviews.New(c.DynamoDB, table)
	if err != nil {
		t.Fatal(err)
	}
	return s, c.DynamoDB, table
}

func view(customer string, status order.Status, at time.Time, version int64) projections.View {
	return projections.View{
		OrderID: ids(at), CustomerName: customer, ProductName: "Test Product", Quantity: 1,
		Status: status, Version: version, CreatedAt: at.UTC(), UpdatedAt: at.UTC(),
	}
}

// TestItemsKeepTheSeedShape reads the stored item raw, as `aws dynamodb
// get-item` would show it.
func TestItemsKeepTheSeedShape(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db, table := newStore(t)
	v := view("Test Customer", order.StatusCompleted, time.Now(), 5)
	if err := s.Put(ctx, 0, v); err != nil {
		t.Fatal(err)
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{"order_id": &types.AttributeValueMemberS{Value: v.OrderID}}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"order_id": v.OrderID, "customer_name": "Test Customer", "product_name": "Test Product", "status": "Completed"}
	for k, w := range want {
		if a, ok := out.Item[k].(*types.AttributeValueMemberS); !ok || a.Value != w {
			t.Fatalf("%s = %#v, want S %q", k, out.Item[k], w)
		}
	}
	if a, ok := out.Item["quantity"].(*types.AttributeValueMemberN); !ok || a.Value != "1" {
		t.Fatalf("quantity = %#v, want N 1", out.Item["quantity"])
	}
	got, err := s.Get(ctx, v.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	if got != v {
		t.Fatalf("get\n%+v\nwant\n%+v", got, v)
	}
}

func TestPutIsFencedByVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	v := view("A", order.StatusPending, time.Now(), 1)
	if err := s.Put(ctx, 0, v); err != nil {
		t.Fatal(err)
	}
	var ce *projections.ConflictError
	if err := s.Put(ctx, 0, v); !errors.As(err, &ce) || ce.Actual != 1 {
		t.Fatalf("second create: %v, want a conflict at 1", err)
	}
	v2 := v
	v2.Version, v2.Status = 3, order.StatusCompleted
	if err := s.Put(ctx, 2, v2); !errors.As(err, &ce) || ce.Actual != 1 || ce.Expected != 2 {
		t.Fatalf("stale put: %v, want a conflict expected 2 actual 1", err)
	}
	if err := s.Put(ctx, 1, v2); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, v.OrderID); got.Version != 3 || got.Status != order.StatusCompleted {
		t.Fatalf("after put: %+v", got)
	}
	if _, err := s.Get(ctx, ids(time.Now())); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("unknown order: %v", err)
	}
}

func TestListPagesNewestFirstAndCounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t)
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var all []projections.View
	statuses := []order.Status{order.StatusPending, order.StatusCompleted, order.StatusFailed, order.StatusCompleted, order.StatusCompleted}
	for i, st := range statuses {
		customer := "ann"
		if i%2 == 1 {
			customer = "bob"
		}
		at := base.Add(time.Duration(i%4) * time.Minute) // two orders share a time
		v := view(customer, st, at, 2)
		if err := s.Put(ctx, 0, v); err != nil {
			t.Fatal(err)
		}
		all = append(all, v)
	}
	collect := func(q projections.ListQuery) []projections.View {
		t.Helper()
		var out []projections.View
		for {
			p, err := s.List(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p.Items...)
			if p.NextCursor == "" {
				return out
			}
			q.Cursor = p.NextCursor
		}
	}
	check := func(name string, got []projections.View, keep func(projections.View) bool) {
		t.Helper()
		var want []projections.View
		for _, v := range all {
			if keep(v) {
				want = append(want, v)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d items, want %d", name, len(got), len(want))
		}
		for i := 1; i < len(got); i++ {
			a, b := got[i-1], got[i]
			if a.CreatedAt.Before(b.CreatedAt) || (a.CreatedAt.Equal(b.CreatedAt) && a.OrderID < b.OrderID) {
				t.Fatalf("%s: not newest first at %d", name, i)
			}
		}
	}
	check("all", collect(projections.ListQuery{Limit: 2}), func(projections.View) bool { return true })
	check("completed", collect(projections.ListQuery{Limit: 1, Status: order.StatusCompleted}), func(v projections.View) bool { return v.Status == order.StatusCompleted })
	check("bob", collect(projections.ListQuery{Limit: 1, Customer: "bob"}), func(v projections.View) bool { return v.CustomerName == "bob" })
	check("bob completed", collect(projections.ListQuery{Limit: 5, Customer: "bob", Status: order.StatusCompleted}), func(v projections.View) bool {
		return v.CustomerName == "bob" && v.Status == order.StatusCompleted
	})
	if _, err := s.List(ctx, projections.ListQuery{Cursor: "bm90IG91cnM"}); !errors.Is(err, projections.ErrBadCursor) {
		t.Fatalf("foreign cursor: %v", err)
	}
	counts, err := s.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[order.StatusCompleted] != 3 || counts[order.StatusPending] != 1 || counts[order.StatusFailed] != 1 || counts[order.StatusCancelled] != 0 {
		t.Fatalf("counts = %v", counts)
	}
}

// TestConformance runs the read-model suite on moto, one fresh table per
// subtest. Moto is not safe for concurrent conflicting writes, so those
// cases run on the embedded read model only; views of different orders are
// written in parallel.
func TestConformance(t *testing.T) {
	t.Parallel()
	readmodeltest.Run(t, func(t *testing.T) projections.ReadModel {
		s, _, _ := newStore(t)
		return s
	}, readmodeltest.Features{Parallel: true, ConcurrentConflicts: true})
}

// lostFirstAnswer applies the first PutItem it carries, then reports a
// connection reset instead of its answer, as a dropped connection would; the
// SDK retries, and the retry's condition fails on the item the first attempt
// wrote.
type lostFirstAnswer struct {
	next http.RoundTripper
	lost atomic.Bool
}

func (l *lostFirstAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".PutItem") && l.lost.CompareAndSwap(false, true) {
		resp.Body.Close()
		return nil, syscall.ECONNRESET
	}
	return resp, err
}

// TestPutRetriedAfterALostAnswerSucceeds: a Put whose first attempt was
// applied but whose answer was lost is not reported as a conflict with
// itself, while a real second Put of the same version still conflicts.
func TestPutRetriedAfterALostAnswerSucceeds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, db, table := newStore(t)
	rt := &lostFirstAnswer{next: http.DefaultTransport}
	flaky := dynamodb.NewFromConfig(awstest.Config(t), func(o *dynamodb.Options) {
		o.HTTPClient = &http.Client{Transport: rt}
	})
	s, err := dynamoviews.New(flaky, table)
	if err != nil {
		t.Fatal(err)
	}
	v := view("A", order.StatusPending, time.Now(), 1)
	if err := s.Put(ctx, 0, v); err != nil {
		t.Fatalf("Put with a lost first answer: %v", err)
	}
	if !rt.lost.Load() {
		t.Fatal("the first answer was not dropped: the test proves nothing")
	}
	plain, _ := dynamoviews.New(db, table)
	var ce *projections.ConflictError
	if err := plain.Put(ctx, 0, v); !errors.As(err, &ce) || ce.Actual != 1 {
		t.Fatalf("a second Put of version 1 = %v, want a conflict with actual 1", err)
	}
}
