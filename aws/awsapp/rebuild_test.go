package awsapp_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/aws/awsapp"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/projections/dynamoviews"
)

// TestRebuildEndpoint: on the AWS runtime POST /admin/projections/rebuild
// starts a rebuild of the read table (it answered 503 before) and GET
// reports it to the end: without mappings nothing projected the orders
// placed, and the rebuild writes every view, counting orders and events.
func TestRebuildEndpoint(t *testing.T) {
	t.Parallel()
	names, clients := awstest.Bootstrap(t)
	ctx := context.Background()
	a, err := awsapp.Open(ctx, awsapp.Config{AWS: awstest.Config(t), Env: names.Env, Addr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	c, err := api.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 5 {
		o, err := c.Place(ctx, api.PlaceRequest{CustomerName: "Ada", ProductName: "tea", Quantity: 1})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.OrderID)
	}
	views, err := dynamoviews.New(clients.DynamoDB, names.OrdersTable)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := views.Get(ctx, ids[0]); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("an order no projector saw: %v, want no item in the read table", err)
	}
	st, err := c.StartRebuild(ctx)
	if err != nil || !st.Running {
		t.Fatalf("POST rebuild: %+v, %v", st, err)
	}
	deadline := time.Now().Add(time.Minute)
	for st.Running {
		if time.Now().After(deadline) {
			t.Fatalf("rebuild still running: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
		if st, err = c.RebuildStatus(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st.Error != "" || st.Orders != 5 || st.Repaired != 5 || st.Done != 5 || st.FinishedAt.IsZero() {
		t.Fatalf("finished rebuild: %+v; want 5 orders, 5 events, 5 views written", st)
	}
	for _, id := range ids {
		o, err := views.Get(ctx, id)
		if err != nil || o.Status != order.StatusPending || o.Version != 1 {
			t.Fatalf("order %s after the rebuild: %+v, %v", id, o, err)
		}
	}
}
