package pebblestore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
)

func verifyAll(t *testing.T, s *pebblestore.Store) map[string]*eventstore.ChainBreak {
	t.Helper()
	out := map[string]*eventstore.ChainBreak{}
	if err := s.Heads(t.Context(), func(h eventstore.Head) error {
		envs, err := s.Load(t.Context(), h.StreamID, 1)
		if err != nil {
			return err
		}
		if last := envs[len(envs)-1]; last.Version != h.Version || last.Hash != h.Hash {
			t.Errorf("head of %s: %+v, last event v%d %s", h.StreamID, h, last.Version, last.Hash)
		}
		out[h.StreamID] = eventstore.VerifyChain(h.StreamID, envs)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMigrate: streams stored before the chain (record format 1) verify as
// unhashed; an append after an unhashed event stays unhashed; Migrate
// hashes every one of them, an interrupted run is carried on by the next,
// a run with nothing to do says so, and appends after it chain on.
func TestMigrate(t *testing.T) {
	pebblestore.SetMigrateBatch(1) // every event its own commit: an interruption keeps some
	t.Cleanup(func() { pebblestore.SetMigrateBatch(1000) })
	dir := t.TempDir()
	s := open(t, dir)
	ctx := context.Background()
	if _, err := s.Append(ctx, "hashed", 0, event(1), event(2)); err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"legacy-a", "legacy-b", "legacy-c"} {
		if err := pebblestore.WriteLegacy(s, st, 0, event(1), event(2), event(3)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = open(t, dir)
	if _, err := s.Append(ctx, "legacy-a", 3, event(4)); err != nil {
		t.Fatal(err)
	}
	for st, brk := range verifyAll(t, s) {
		if (st == "hashed") != (brk == nil) {
			t.Fatalf("before migrating, %s: %v", st, brk)
		}
	}
	if got, _ := s.Load(ctx, "legacy-a", 4); !got[0].Hash.IsZero() {
		t.Fatal("an event after an unhashed one was hashed")
	}
	before, err := s.FeedDigest(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}

	// Interrupted after the first stream it migrates.
	cctx, cancel := context.WithCancel(ctx)
	_, err = s.Migrate(cctx, func(r eventstore.MigrateReport) {
		if r.MigratedStreams == 1 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted migrate: %v", err)
	}
	rep, err := s.Migrate(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The first run hashed legacy-a (4 events) and, before it saw the
	// cancellation, legacy-b's version 1: the second carries on from
	// legacy-b's hashed prefix.
	if rep.Streams != 4 || rep.MigratedStreams != 2 || rep.Events != 5 {
		t.Fatalf("second run: %+v, want 4 streams, 2 migrated (legacy-b's tail, legacy-c), 5 events", rep)
	}
	for st, brk := range verifyAll(t, s) {
		if brk != nil {
			t.Fatalf("after migrating, %s: %v", st, brk)
		}
	}
	if rep, err := s.Migrate(ctx, nil); err != nil || rep.Events != 0 || rep.Streams != 4 {
		t.Fatalf("third run: %+v, %v; want nothing to do", rep, err)
	}
	// The feed holds the same events, now hashed: its digest changes once.
	after, err := s.FeedDigest(ctx, 0)
	if err != nil || after.Position != before.Position || after.Digest == before.Digest {
		t.Fatalf("feed digest %+v after, %+v before, %v", after, before, err)
	}
	if _, err := s.Append(ctx, "legacy-b", 3, event(5)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir)
	if _, err := s.Append(ctx, "legacy-c", 3, event(5)); err != nil {
		t.Fatal(err)
	}
	for st, brk := range verifyAll(t, s) {
		if brk != nil {
			t.Fatalf("appended after migrating, %s: %v", st, brk)
		}
	}
	if _, err := s.FeedDigest(ctx, 0); err != nil {
		t.Fatal(err)
	}
}
