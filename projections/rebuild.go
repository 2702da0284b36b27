package projections

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/orderledger/orderledger/domain"
)

// Progress is how far a rebuild has come.
type Progress struct {
	// Done is how many events have been folded; Total how many the log held
	// when the rebuild started (it may grow while rebuilding).
	Done, Total uint64
	// Orders is how many orders' views have been rebuilt, on backends that
	// rebuild order by order (the DynamoDB read table); 0 elsewhere.
	Orders uint64
	// Repaired is how many of those views were written because the stored
	// one was missing, stale or corrupted (the others were already right).
	Repaired uint64
	// Orphans is how many stored views were found whose order has no events.
	Orphans uint64
	// Elapsed is the time since the rebuild started.
	Elapsed time.Duration
}

// Rate returns events per second so far.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Done) / p.Elapsed.Seconds()
}

// ETA estimates the time left at the current rate (0 when unknown or done).
func (p Progress) ETA() time.Duration {
	r := p.Rate()
	if r <= 0 || p.Done >= p.Total {
		return 0
	}
	return time.Duration(float64(p.Total-p.Done) / r * float64(time.Second))
}

// RebuildFunc rebuilds a read model from the log, reporting progress (from
// one goroutine, often; it must be quick). The embedded adapter's Rebuild
// bound to its feed is one.
type RebuildFunc func(ctx context.Context, progress func(Progress)) error

// RebuildStatus is what a server tells about its rebuild.
type RebuildStatus struct {
	Running    bool      `json:"running"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Done       uint64    `json:"events_done"`
	Total      uint64    `json:"events_total"`
	// Orders, Repaired and Orphans are Progress's (omitted when zero: the
	// embedded rebuild does not count them).
	Orders   uint64 `json:"orders_done,omitempty"`
	Repaired uint64 `json:"views_repaired,omitempty"`
	Orphans  uint64 `json:"orphans,omitempty"`
	// ETASeconds estimates the time left while running, at the rate so far
	// (omitted when unknown).
	ETASeconds float64 `json:"eta_seconds,omitempty"`
	// Error is the last rebuild's failure, if it failed.
	Error string `json:"error,omitempty"`
}

// ErrRebuildRunning is returned by Rebuilds.Start while a rebuild runs.
var ErrRebuildRunning = &domain.Error{Code: domain.Conflict, Message: "a projection rebuild is already running"}

// Rebuilds runs at most one rebuild at a time in the background of a
// server, for an admin endpoint (POST /admin/projections/rebuild starts one
// and answers 202 with the status; GET reports it). The read model keeps
// serving from its current generation while a rebuild runs.
type Rebuilds struct {
	fn    RebuildFunc
	clock func() time.Time

	mu     sync.Mutex
	status RebuildStatus
	done   chan struct{}
}

// NewRebuilds returns the rebuild control for fn.
func NewRebuilds(fn RebuildFunc) (*Rebuilds, error) {
	if fn == nil {
		return nil, errors.New("projections: new rebuilds: a rebuild function is required")
	}
	closed := make(chan struct{})
	close(closed)
	return &Rebuilds{fn: fn, clock: time.Now, done: closed}, nil
}

// Start starts a rebuild that lives as long as ctx (pass the server's
// context, not a request's) and returns its status, or ErrRebuildRunning.
func (r *Rebuilds) Start(ctx context.Context) (RebuildStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status.Running {
		return r.status, ErrRebuildRunning
	}
	r.status = RebuildStatus{Running: true, StartedAt: r.clock().UTC()}
	r.done = make(chan struct{})
	done := r.done
	go func() {
		defer close(done)
		err := r.fn(ctx, func(p Progress) {
			r.mu.Lock()
			r.status.Done, r.status.Total = p.Done, p.Total
			r.status.Orders, r.status.Repaired, r.status.Orphans = p.Orders, p.Repaired, p.Orphans
			r.status.ETASeconds = p.ETA().Seconds()
			r.mu.Unlock()
		})
		r.mu.Lock()
		r.status.Running = false
		r.status.ETASeconds = 0
		r.status.FinishedAt = r.clock().UTC()
		if err != nil {
			r.status.Error = err.Error()
		}
		r.mu.Unlock()
	}()
	return r.status, nil
}

// Status returns the running or last rebuild's status.
func (r *Rebuilds) Status() RebuildStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Wait blocks until no rebuild is running or ctx ends.
func (r *Rebuilds) Wait(ctx context.Context) error {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
