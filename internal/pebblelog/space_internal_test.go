package pebblelog

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

// TestSpaceReadsAgainUnlessPlenty: a reading of Plenty vouches for
// SpaceGrace; one below Plenty vouches for nothing, and one below the
// reserve refuses.
func TestSpaceReadsAgainUnlessPlenty(t *testing.T) {
	t.Parallel()
	free, reads := uint64(Plenty), 0
	s := NewSpace("test/db", "/nowhere")
	s.read = func(string) (uint64, bool) { reads++; return free, true }

	for range 3 {
		if err := s.Check("commit"); err != nil {
			t.Fatal(err)
		}
	}
	if reads != 1 {
		t.Fatalf("3 checks with plenty free: %d readings, want 1", reads)
	}
	s.until.Store(0) // the grace is over
	free = Plenty - 1
	for range 3 {
		if err := s.Check("commit"); err != nil {
			t.Fatal(err)
		}
	}
	if reads != 4 {
		t.Fatalf("3 checks below plenty: %d readings in all, want 4", reads)
	}
	free = Reserve - 1
	err := s.Check("commit")
	if !errors.Is(err, syscall.ENOSPC) || reads != 5 {
		t.Fatalf("below the reserve: %v after %d readings, want ENOSPC after 5", err, reads)
	}
	if err.Error() != spaceErr("test/db", "commit", Reserve-1).Error() {
		t.Errorf("error %q differs from CheckSpace's", err)
	}

	free = Plenty
	if err := s.Check("commit"); err != nil {
		t.Fatal(err)
	}
	if left := time.Until(time.Unix(0, s.until.Load())); left <= 0 || left > SpaceGrace {
		t.Fatalf("grace left %v, want (0, %v]", left, SpaceGrace)
	}
}
