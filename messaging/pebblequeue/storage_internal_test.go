package pebblequeue

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orderledger/orderledger/domain"
)

// readFailFS fails every read of a table file while fail is set, like a
// disk that returns I/O errors.
type readFailFS struct {
	vfs.FS
	fail atomic.Bool
}

func (fs *readFailFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.Open(name, opts...)
	if err != nil || !strings.HasSuffix(name, ".sst") {
		return f, err
	}
	return &readFailFile{File: f, fs: fs}, nil
}

type readFailFile struct {
	vfs.File
	fs *readFailFS
}

var errInjected = errors.New("injected: read error")

func (f *readFailFile) ReadAt(p []byte, off int64) (int, error) {
	if f.fs.fail.Load() {
		return 0, errInjected
	}
	return f.File.ReadAt(p, off)
}

// TestStorageErrorsAreUnavailable checks that the broker's storage failures
// are domain.Unavailable (HTTP 503), as in the other two pebble databases,
// and keep the engine's error.
func TestStorageErrorsAreUnavailable(t *testing.T) {
	t.Parallel()
	fs := &readFailFS{FS: vfs.Default}
	b, err := open(t.TempDir(), Options{}, func(o *pebble.Options) {
		o.FS = fs
		o.CacheSize = 1 // nothing stays cached: every read goes to the file
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	q, err := b.Queue("work", QueueConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := q.Send(ctx, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.db.Flush(); err != nil { // the message now lives in a table file
		t.Fatal(err)
	}
	fs.fail.Store(true)
	_, rerr := q.Receive(ctx, 1, time.Millisecond)
	_, perr := q.Peek(ctx, 0)
	fs.fail.Store(false)
	for op, err := range map[string]error{"receive": rerr, "peek": perr} {
		if err == nil {
			t.Errorf("%s succeeded over failing reads", op)
			continue
		}
		if got := domain.CodeOf(err); got != domain.Unavailable {
			t.Errorf("%s: %v: code %v, want Unavailable", op, err, got)
		}
		if !errors.Is(err, errInjected) {
			t.Errorf("%s: %v does not wrap the disk's error", op, err)
		}
	}
	// The disk is back: so is the queue.
	if msgs, err := q.Receive(ctx, 1, time.Second); err != nil || len(msgs) != 1 {
		t.Fatalf("receive after the failure: %d messages, %v", len(msgs), err)
	}
}

// TestOpenFailureIsUnavailable opens the broker where the disk holds a
// file instead of a directory.
func TestOpenFailureIsUnavailable(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "queue")
	if err := os.WriteFile(path, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Options{})
	if got := domain.CodeOf(err); err == nil || got != domain.Unavailable {
		t.Fatalf("open over a file: %v (code %v), want Unavailable", err, got)
	}
}
