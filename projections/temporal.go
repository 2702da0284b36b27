package projections

import (
	"context"
	"fmt"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/orders"
)

// At returns the state of orderID as of at, folded from its stream in
// store: order.ErrNotFound when it did not exist then.
func At(ctx context.Context, store eventstore.Store, codec *orders.Codec, orderID string, at AsOf) (View, error) {
	envs, err := store.Load(ctx, orderID, 1)
	if err != nil {
		return View{}, fmt.Errorf("projections: as of: %w", err)
	}
	return FoldAsOf(codec, envs, at)
}
