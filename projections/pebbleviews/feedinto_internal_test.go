package pebbleviews

import "github.com/orderledger/orderledger/eventstore/pebblestore"

// The rebuild reuses page memory only through feedInto, found by an
// interface assertion: a change to pebblestore's ReadFeedInto that no
// longer matched it would slow every rebuild without failing one, so the
// match is checked here at compile time.
var _ feedInto = (*pebblestore.Store)(nil)
