package pebbleviews_test

import (
	"testing"

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
