package pebblestore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orderledger/orderledger/eventstore/pebblestore"
)

// TestPowerLossKeepsEveryAcknowledgedAppend appends on a filesystem that can
// lose what was not synced (pebble's crashable MemFS), takes what a power
// loss would leave, and reopens it: every acknowledged append is there,
// though pebble applied them without syncing its own log, because the
// store's durable log was synced before each answer. With a small durable
// log it wraps around many times (each time after syncing pebble's log),
// and with part of the unsynced data kept at random the torn tails differ.
func TestPowerLossKeepsEveryAcknowledgedAppend(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		logSize  int64
		unsynced int
	}{
		{"no unsynced data", 1 << 20, 0},
		{"wrapped log", 32 << 10, 0},
		{"wrapped log, half the unsynced data", 32 << 10, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mem := vfs.NewCrashableMem()
			opts := func(fs vfs.FS) []pebblestore.Option {
				return []pebblestore.Option{
					pebblestore.WithDurableLogSize(tc.logSize),
					pebblestore.WithPebbleOptions(func(o *pebble.Options) { smallPebble(o); o.FS = fs }),
				}
			}
			s, err := pebblestore.Open("/db", opts(mem)...)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			const streams, per = 60, 5
			for v := range per {
				for i := range streams {
					if _, err := s.Append(ctx, fmt.Sprintf("order-%03d", i), int64(v), event(v+1)); err != nil {
						t.Fatal(err)
					}
				}
			}
			crash := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: tc.unsynced, RNG: rand.New(rand.NewPCG(1, 2))})
			_ = s.Close()

			s, err = pebblestore.Open("/db", opts(crash)...)
			if err != nil {
				t.Fatalf("reopen after the power loss: %v", err)
			}
			defer s.Close()
			if head, err := s.Head(ctx); err != nil || head != streams*per {
				t.Fatalf("head after the power loss: %d, %v; want %d", head, err, streams*per)
			}
			for i := range streams {
				got, err := s.Load(ctx, fmt.Sprintf("order-%03d", i), 0)
				if err != nil || len(got) != per {
					t.Fatalf("order-%03d after the power loss: %d events, %v; want %d", i, len(got), err, per)
				}
				for v, e := range got {
					if e.Version != int64(v+1) || string(e.Data) != string(event(v+1).Data) {
						t.Fatalf("order-%03d event %d: %+v", i, v+1, e)
					}
				}
			}
			if _, err := s.Append(ctx, "order-000", per, event(per+1)); err != nil {
				t.Fatalf("append after the power loss: %v", err)
			}
		})
	}
}

// TestDirectoryOfAnEarlierVersion opens a store whose directory has no
// durable log (written by a version that synced pebble's own log on every
// append): everything is there and appends go on.
func TestDirectoryOfAnEarlierVersion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir)
	ctx := context.Background()
	for v := range 3 {
		if _, err := s.Append(ctx, "order-1", int64(v), event(v+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "durable.log")); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	if got, err := s.Load(ctx, "order-1", 0); err != nil || len(got) != 3 {
		t.Fatalf("after opening without a durable log: %d events, %v", len(got), err)
	}
	if _, err := s.Append(ctx, "order-1", 3, event(4)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "durable.log")); err != nil {
		t.Fatalf("no durable log created: %v", err)
	}
}

// TestRefusedGroupIsTakenBack has pebble refuse a group after the durable
// log has synced it: the append fails, later appends are refused, and after
// a reopen the group is not there (its record was taken back, so the replay
// does not apply it) while every earlier append is, and appends go on.
func TestRefusedGroupIsTakenBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	s, err := pebblestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for v := range 3 {
		if _, err := s.Append(ctx, "kept", int64(v), event(v+1)); err != nil {
			t.Fatal(err)
		}
	}
	pebblestore.RefuseApply(s, errors.New("refused by the test"))
	if _, err := s.Append(ctx, "refused", 0, event(1)); err == nil {
		t.Fatal("an append pebble refused succeeded")
	}
	if _, err := s.Append(ctx, "kept", 3, event(4)); err == nil {
		t.Fatal("an append after a refused commit succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = pebblestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.Load(ctx, "refused", 0); err != nil || len(got) != 0 {
		t.Fatalf("refused stream after reopen: %d events, %v; want none", len(got), err)
	}
	if got, err := s.Load(ctx, "kept", 0); err != nil || len(got) != 3 {
		t.Fatalf("kept stream after reopen: %d events, %v; want 3", len(got), err)
	}
	if head, err := s.Head(ctx); err != nil || head != 3 {
		t.Fatalf("feed head after reopen: %d, %v; want 3", head, err)
	}
	if _, err := s.Append(ctx, "kept", 3, event(4)); err != nil {
		t.Fatalf("append after reopen: %v", err)
	}
}
