package domain_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain"
)

func TestCodeOf(t *testing.T) {
	t.Parallel()
	notFound := domain.Errorf(domain.NotFound, "thing not found")
	cases := []struct {
		err  error
		want domain.Code
	}{
		{nil, ""},
		{notFound, domain.NotFound},
		{fmt.Errorf("store: get: %w", notFound), domain.NotFound},
		{errors.New("boom"), domain.Internal},
		{coded{}, domain.PreconditionFailed},
	}
	for _, c := range cases {
		if got := domain.CodeOf(c.err); got != c.want {
			t.Errorf("CodeOf(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	if !errors.Is(fmt.Errorf("wrapped: %w", domain.Errorf(domain.NotFound, "thing not found")), notFound) {
		t.Error("equal domain errors do not match with errors.Is")
	}
	if errors.Is(domain.Errorf(domain.Conflict, "thing not found"), notFound) {
		t.Error("errors of different codes match")
	}
}

type coded struct{}

func (coded) Error() string           { return "coded" }
func (coded) DomainCode() domain.Code { return domain.PreconditionFailed }

func TestULIDSourceIsMonotonicAndUnique(t *testing.T) {
	t.Parallel()
	ids := domain.NewULIDSource(nil)
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				id := ids(at)
				mu.Lock()
				seen[id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 4000 {
		t.Fatalf("%d unique IDs from 4000 calls", len(seen))
	}
	a, b := ids(at), ids(at)
	if !(a < b) || !domain.ValidULID(a) {
		t.Fatalf("IDs not monotonic or not valid ULIDs: %s %s", a, b)
	}
	for _, bad := range []string{"", "nope", "01J000000000000000000000000", "01j0000000000000000000000a!", "81J0000000000000000000000A"} {
		if domain.ValidULID(bad) {
			t.Errorf("ValidULID(%q) = true", bad)
		}
	}
}
