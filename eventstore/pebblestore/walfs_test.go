package pebblestore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/orderledger/orderledger/eventstore/pebblestore"
)

// TestAppendsGoIntoAPrewrittenLog checks that Open gives pebble a log file
// written in advance (internal/walfs: the memtable's size and an eighth)
// and WithoutPrewrittenWAL one pebble creates, and that both keep what was
// appended across a reopen.
func TestAppendsGoIntoAPrewrittenLog(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		opts    []pebblestore.Option
		minSize int64
	}{
		{"default", nil, 4<<20 + 4<<20/8},
		{"without", []pebblestore.Option{pebblestore.WithoutPrewrittenWAL()}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := append([]pebblestore.Option{pebblestore.WithPebbleOptions(smallPebble)}, tc.opts...)
			s, err := pebblestore.Open(dir, opts...)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			stream := ids(time.Now())
			if _, err := s.Append(ctx, stream, 0, event(1)); err != nil {
				t.Fatal(err)
			}
			logs, _ := filepath.Glob(filepath.Join(dir, "[0-9]*.log"))
			if len(logs) != 1 {
				t.Fatalf("logs: %v", logs)
			}
			fi, err := os.Stat(logs[0])
			if err != nil {
				t.Fatal(err)
			}
			if tc.minSize > 0 && fi.Size() < tc.minSize {
				t.Fatalf("log is %d bytes, want a prewritten %d", fi.Size(), tc.minSize)
			}
			if tc.minSize == 0 && fi.Size() > 1<<20 {
				t.Fatalf("log is %d bytes without prewriting", fi.Size())
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err = pebblestore.Open(dir, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got, err := s.Load(ctx, stream, 0)
			if err != nil || len(got) != 1 {
				t.Fatalf("after reopen: %d events, %v", len(got), err)
			}
		})
	}
}
