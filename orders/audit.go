package orders

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// Chain is whether an order's audit chain holds (eventstore.VerifyChain
// over the events as stored).
type Chain struct {
	Holds bool `json:"holds"`
	// Break is the first place it does not hold.
	Break *eventstore.ChainBreak `json:"break,omitempty"`
}

// AuditOptions tune Audit.
type AuditOptions struct {
	// Workers is how many orders are verified at once (0: 8).
	Workers int
	// Digest, when set, is a digest taken earlier: every stream it holds
	// must still be there, at least as long, with the same hash at the
	// digest's head, and on a store with a feed the feed's running digest
	// up to the digest's position must be the same.
	Digest *eventstore.Digest
	// Progress, when set, is called as orders are verified (done of total),
	// never concurrently.
	Progress func(done, total int)
}

// AuditReport is the result of Audit.
type AuditReport struct {
	// Streams and Events are how many orders and events were verified.
	Streams int   `json:"streams"`
	Events  int64 `json:"events"`
	// Breaks holds every order whose chain (or whose place in the digest)
	// does not hold, ordered by order ID.
	Breaks []eventstore.ChainBreak `json:"breaks"`
	// Feed is where the feed does not hold (embedded store with a digest).
	Feed *eventstore.FeedBreak `json:"feed,omitempty"`
	// DigestChecked says the log was also checked against a digest.
	DigestChecked bool `json:"digest_checked"`
}

// OK reports whether nothing is broken.
func (r AuditReport) OK() bool { return len(r.Breaks) == 0 && r.Feed == nil }

// Audit verifies every order's chain in parallel, and the log against a
// digest when given one (see AuditOptions). A broken chain is reported,
// not returned as an error; the error is for a store that cannot be read.
func (s *Service) Audit(ctx context.Context, a eventstore.Auditable, o AuditOptions) (AuditReport, error) {
	var heads []eventstore.Head
	if err := a.Heads(ctx, func(h eventstore.Head) error { heads = append(heads, h); return nil }); err != nil {
		return AuditReport{}, fmt.Errorf("orders: audit: %w", err)
	}
	var rep AuditReport
	want := map[string]eventstore.Head{}
	if o.Digest != nil {
		rep.DigestChecked = true
		for _, h := range o.Digest.Heads {
			want[h.StreamID] = h
		}
		for _, h := range heads {
			delete(want, h.StreamID) // what is left is gone
		}
		for _, h := range want {
			rep.Breaks = append(rep.Breaks, eventstore.ChainBreak{StreamID: h.StreamID, Version: 1,
				Reason: fmt.Sprintf("the whole stream is gone (the digest of %s holds %d events, head %s)", o.Digest.TakenAt.Format("2006-01-02T15:04:05Z07:00"), h.Version, h.Hash)})
		}
		clear(want)
		for _, h := range o.Digest.Heads {
			want[h.StreamID] = h
		}
	}
	workers := o.Workers
	if workers <= 0 {
		workers = 8
	}
	jobs := make(chan eventstore.Head)
	var (
		mu     sync.Mutex
		done   int
		events atomic.Int64
		errOne error
		wg     sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(workers, max(len(heads), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h := range jobs {
				envs, err := s.store.Load(ctx, h.StreamID, 1)
				var brk *eventstore.ChainBreak
				if err == nil {
					events.Add(int64(len(envs)))
					brk = eventstore.VerifyChain(h.StreamID, envs)
					if brk == nil {
						brk = againstDigest(h.StreamID, envs, want, o.Digest)
					}
				}
				mu.Lock()
				switch {
				case err != nil && errOne == nil:
					errOne = err
					cancel()
				case brk != nil:
					rep.Breaks = append(rep.Breaks, *brk)
				}
				done++
				if o.Progress != nil {
					o.Progress(done, len(heads))
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, h := range heads {
		select {
		case jobs <- h:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if errOne != nil {
		return AuditReport{}, fmt.Errorf("orders: audit: %w", errOne)
	}
	if err := ctx.Err(); err != nil {
		return AuditReport{}, fmt.Errorf("orders: audit: %w", err)
	}
	rep.Streams, rep.Events = len(heads), events.Load()
	if o.Digest != nil && o.Digest.Feed != nil {
		fd, ok := a.(eventstore.FeedDigester)
		if !ok {
			return AuditReport{}, domain.Errorf(domain.Invalid, "orders: audit: the digest holds a feed digest and this store has no feed (a digest of another backend?)")
		}
		got, err := fd.FeedDigest(ctx, o.Digest.Feed.Position)
		var fb *eventstore.FeedBreak
		switch {
		case errors.As(err, &fb):
			rep.Feed = fb
		case err != nil:
			return AuditReport{}, fmt.Errorf("orders: audit: %w", err)
		case got.Digest != o.Digest.Feed.Digest:
			rep.Feed = &eventstore.FeedBreak{Position: got.Position, Reason: fmt.Sprintf("the feed up to here digests to %s, the digest says %s: an event was removed, reordered or rewritten", got.Digest, o.Digest.Feed.Digest)}
		}
	}
	slices.SortFunc(rep.Breaks, func(a, b eventstore.ChainBreak) int { return cmp.Compare(a.StreamID, b.StreamID) })
	return rep, nil
}

// againstDigest checks a stream whose chain holds against its head in the
// digest: still at least as long, with the same hash there.
func againstDigest(stream string, envs []eventstore.Event, want map[string]eventstore.Head, d *eventstore.Digest) *eventstore.ChainBreak {
	if d == nil {
		return nil
	}
	h, ok := want[stream]
	if !ok {
		return nil // newer than the digest
	}
	if int64(len(envs)) < h.Version {
		return &eventstore.ChainBreak{StreamID: stream, Version: int64(len(envs)) + 1,
			Reason: fmt.Sprintf("events cut off: %d stored, the digest holds %d", len(envs), h.Version)}
	}
	if got := envs[h.Version-1].Hash; got != h.Hash {
		return &eventstore.ChainBreak{StreamID: stream, Version: h.Version,
			Reason: fmt.Sprintf("hash %s, the digest holds %s: the stream was rewritten", got, h.Hash)}
	}
	return nil
}

// TakeDigest takes a digest of the whole log: every stream's head (one
// listing; on DynamoDB a parallel scan) and, on a store with a feed, the
// feed's running digest. A store that keeps digests (DynamoDB) records it.
// backend names the store in the digest ("embedded", "aws").
func (s *Service) TakeDigest(ctx context.Context, a eventstore.Auditable, backend string) (eventstore.Digest, error) {
	d := eventstore.Digest{Format: eventstore.DigestFormat, Backend: backend, TakenAt: s.clock().UTC(), Heads: []eventstore.Head{}}
	// The feed first: every head listed afterwards is at or beyond it.
	if fd, ok := a.(eventstore.FeedDigester); ok {
		f, err := fd.FeedDigest(ctx, 0)
		if err != nil {
			return eventstore.Digest{}, fmt.Errorf("orders: digest: %w", err)
		}
		d.Feed = &f
	}
	if err := a.Heads(ctx, func(h eventstore.Head) error {
		d.Heads = append(d.Heads, h)
		d.Events += h.Version
		return nil
	}); err != nil {
		return eventstore.Digest{}, fmt.Errorf("orders: digest: %w", err)
	}
	d.Streams = len(d.Heads)
	d.Root = eventstore.HeadsRoot(d.Heads)
	if r, ok := a.(eventstore.DigestRecorder); ok {
		if err := r.RecordDigest(ctx, d); err != nil {
			return eventstore.Digest{}, fmt.Errorf("orders: digest: %w", err)
		}
	}
	return d, nil
}

// CheckDigest checks that a digest read back is whole: its format is known
// and its root is the root of its heads.
func CheckDigest(d *eventstore.Digest) error {
	if d.Format != eventstore.DigestFormat {
		return domain.Errorf(domain.Invalid, "orders: digest: format %q (want %q)", d.Format, eventstore.DigestFormat)
	}
	heads := slices.Clone(d.Heads)
	if root := eventstore.HeadsRoot(heads); root != d.Root {
		return domain.Errorf(domain.Invalid, "orders: digest: its heads hash to %s, its root says %s: the digest itself was changed", root, d.Root)
	}
	return nil
}

// Migrate hashes the events stored before the audit chain (see
// eventstore.Auditable.Migrate).
func (s *Service) Migrate(ctx context.Context, a eventstore.Auditable, progress func(eventstore.MigrateReport)) (eventstore.MigrateReport, error) {
	rep, err := a.Migrate(ctx, progress)
	if err != nil {
		return rep, fmt.Errorf("orders: migrate: %w", err)
	}
	return rep, nil
}
