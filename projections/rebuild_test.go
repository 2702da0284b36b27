package projections_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/orderledger/orderledger/projections"
)

func TestRebuildsOneAtATime(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	fail := errors.New("disk on fire")
	calls := 0
	r, err := projections.NewRebuilds(func(ctx context.Context, progress func(projections.Progress)) error {
		calls++
		progress(projections.Progress{Done: 5, Total: 10, Elapsed: time.Second})
		<-release
		if calls == 2 {
			return fail
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := r.Start(ctx)
	if err != nil || !st.Running || st.StartedAt.IsZero() {
		t.Fatalf("Start = %+v, %v", st, err)
	}
	if _, err := r.Start(ctx); !errors.Is(err, projections.ErrRebuildRunning) {
		t.Fatalf("second Start = %v, want ErrRebuildRunning", err)
	}
	close(release)
	if err := r.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	st = r.Status()
	if st.Running || st.Done != 5 || st.Total != 10 || st.Error != "" || st.FinishedAt.IsZero() {
		t.Fatalf("status after success: %+v", st)
	}
	if _, err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	_ = r.Wait(ctx)
	if st := r.Status(); st.Error != fail.Error() {
		t.Fatalf("status after failure: %+v", st)
	}
	if _, err := projections.NewRebuilds(nil); err == nil {
		t.Error("NewRebuilds accepted nil")
	}
}

func TestProgressRateAndETA(t *testing.T) {
	t.Parallel()
	p := projections.Progress{Done: 250, Total: 1000, Elapsed: time.Second}
	if p.Rate() != 250 || p.ETA() != 3*time.Second {
		t.Errorf("rate %v eta %v, want 250 and 3s", p.Rate(), p.ETA())
	}
	if (projections.Progress{Done: 1000, Total: 1000, Elapsed: time.Second}).ETA() != 0 {
		t.Error("a finished rebuild has an ETA")
	}
}
