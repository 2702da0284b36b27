package pebbleviews_test

import (
	"errors"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/pebbleviews"
	"github.com/orderledger/orderledger/projections/readmodeltest"
)

func open(t *testing.T) *pebbleviews.Store {
	t.Helper()
	s, err := pebbleviews.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	readmodeltest.Run(t, func(t *testing.T) projections.ReadModel { return open(t) },
		readmodeltest.Features{ConcurrentConflicts: true, Parallel: true})
}

// TestCursorAcrossRestart: a cursor stays good when the same directory is
// opened again (its key is stored there), and one from another directory is
// refused like any cursor this store did not issue.
func TestCursorAcrossRestart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	s, err := pebbleviews.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	ids := domain.NewULIDSource(nil)
	for i := range 5 {
		at := base.Add(time.Duration(i) * time.Second)
		v := projections.View{OrderID: ids(at), CustomerName: "Ada", ProductName: "p", Quantity: 1,
			Status: order.StatusPending, Version: 1, CreatedAt: at, UpdatedAt: at}
		if err := s.Put(ctx, 0, v); err != nil {
			t.Fatal(err)
		}
	}
	q := projections.ListQuery{Limit: 2}
	first, err := s.List(ctx, q)
	if err != nil || first.NextCursor == "" {
		t.Fatalf("first page: %+v, %v", first, err)
	}
	q.Cursor = first.NextCursor
	before, err := s.List(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = pebbleviews.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after, err := s.List(ctx, q)
	if err != nil || len(after.Items) != 2 || after.Items[0].OrderID != before.Items[0].OrderID || after.NextCursor != before.NextCursor {
		t.Fatalf("after a restart the cursor gives %+v, %v; before it gave %+v", after, err, before)
	}
	if _, err := open(t).List(ctx, q); !errors.Is(err, projections.ErrBadCursor) {
		t.Fatalf("another store took the cursor: %v", err)
	}
}
