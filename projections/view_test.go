package projections_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/ordergen"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/readmodeltest"
)

var (
	codec = orders.NewCodec()
	t0    = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
)

// TestFoldAgreesWithAggregate checks the view fold against the order
// aggregate's own fold for every generated history and every prefix.
func TestFoldAgreesWithAggregate(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range ordergen.Orders(rng, codec, 500, t0) {
		for n := 1; n <= len(s); n++ {
			v, err := projections.Fold(codec, s[:n])
			if err != nil {
				t.Fatal(err)
			}
			evs, err := codec.DecodeAll(s[:n])
			if err != nil {
				t.Fatal(err)
			}
			o := order.Fold(s[0].StreamID, evs...)
			if v.OrderID != o.ID || v.Version != o.Version || v.Status != o.Status ||
				v.CustomerName != o.CustomerName || v.ProductName != o.ProductName || v.Quantity != o.Quantity ||
				v.PaymentID != o.PaymentID || v.Amount != o.Amount || v.ReservationID != o.ReservationID ||
				v.FailureReason != o.FailureReason {
				t.Fatalf("view %+v disagrees with order %+v", v, o)
			}
			if !v.CreatedAt.Equal(s[0].OccurredAt) || !v.UpdatedAt.Equal(s[n-1].OccurredAt) {
				t.Fatalf("times %v %v, want %v %v", v.CreatedAt, v.UpdatedAt, s[0].OccurredAt, s[n-1].OccurredAt)
			}
		}
	}
}

func TestFoldRejectsBrokenStreams(t *testing.T) {
	t.Parallel()
	s := ordergen.Orders(rand.New(rand.NewPCG(3, 4)), codec, 1, t0)[0]
	other := ordergen.Orders(rand.New(rand.NewPCG(5, 6)), codec, 1, t0)[0]
	bad := s[0]
	bad.Type = "OrderTeleported"
	for name, envs := range map[string][]eventstore.Event{
		"gap":          {s[0], s[2]},
		"not from 1":   s[1:],
		"mixed stream": {s[0], other[1]},
		"unknown type": {bad},
	} {
		if _, err := projections.Fold(codec, envs); err == nil {
			t.Errorf("%s: Fold succeeded", name)
		}
	}
}

func TestFoldAsOf(t *testing.T) {
	t.Parallel()
	var s []eventstore.Event
	for _, st := range ordergen.Orders(rand.New(rand.NewPCG(9, 9)), codec, 50, t0) {
		if len(st) >= 4 {
			s = st
			break
		}
	}
	full, _ := projections.Fold(codec, s)
	for v := int64(1); v <= int64(len(s)); v++ {
		want, _ := projections.Fold(codec, s[:v])
		got, err := projections.FoldAsOf(codec, s, projections.AsOf{Version: v})
		if err != nil || readmodeltest.Diff(got, want) != "" {
			t.Errorf("as of version %d: %+v, %v; want %+v", v, got, err, want)
		}
		// As of the time of event v, and just before the next one.
		got, err = projections.FoldAsOf(codec, s, projections.AsOf{Time: s[v-1].OccurredAt})
		if err != nil || got.Version < v {
			t.Errorf("as of the time of v%d: version %d, %v", v, got.Version, err)
		}
	}
	if got, err := projections.FoldAsOf(codec, s, projections.AsOf{}); err != nil || readmodeltest.Diff(got, full) != "" {
		t.Errorf("as of now: %+v, %v", got, err)
	}
	if got, err := projections.FoldAsOf(codec, s, projections.AsOf{Time: s[len(s)-1].OccurredAt.Add(time.Hour)}); err != nil || got.Version != full.Version {
		t.Errorf("as of later: %+v, %v", got, err)
	}
	for name, tc := range map[string]struct {
		envs []eventstore.Event
		at   projections.AsOf
		want domain.Code
	}{
		"before placement":   {s, projections.AsOf{Time: s[0].OccurredAt.Add(-time.Nanosecond)}, domain.NotFound},
		"no events":          {nil, projections.AsOf{}, domain.NotFound},
		"no events, version": {nil, projections.AsOf{Version: 1}, domain.NotFound},
		"beyond the stream":  {s, projections.AsOf{Version: int64(len(s)) + 1}, domain.Invalid},
		"negative version":   {s, projections.AsOf{Version: -1}, domain.Invalid},
	} {
		_, err := projections.FoldAsOf(codec, tc.envs, tc.at)
		if domain.CodeOf(err) != tc.want {
			t.Errorf("%s: %v, want code %s", name, err, tc.want)
		}
		if tc.want == domain.NotFound && !errors.Is(err, order.ErrNotFound) {
			t.Errorf("%s: %v, want order.ErrNotFound", name, err)
		}
	}
}
