package embedded_test

import (
	"testing"

	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/embedded"
	"github.com/orderledger/orderledger/projections/readmodeltest"
)

func open(t *testing.T) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(t.TempDir())
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
