package pebblestore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
)

// walFS wraps a filesystem so a test can hold or fail the fsyncs of pebble's
// write-ahead log.
type walFS struct {
	vfs.FS
	mu   sync.Mutex
	hook func() error // called before every WAL sync; nil for none
}

func (fs *walFS) beforeSync() error {
	fs.mu.Lock()
	h := fs.hook
	fs.mu.Unlock()
	if h != nil {
		return h()
	}
	return nil
}

func (fs *walFS) setHook(h func() error) {
	fs.mu.Lock()
	fs.hook = h
	fs.mu.Unlock()
}

func (fs *walFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &walFile{File: f, fs: fs}, nil
}

func (fs *walFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs *walFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	return fs.wrap(newname, f, err)
}

type walFile struct {
	vfs.File
	fs *walFS
}

func (f *walFile) Sync() error {
	if err := f.fs.beforeSync(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *walFile) SyncData() error {
	if err := f.fs.beforeSync(); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f *walFile) SyncTo(n int64) (bool, error) {
	if err := f.fs.beforeSync(); err != nil {
		return false, err
	}
	return f.File.SyncTo(n)
}

func openFS(t *testing.T, fs *walFS) *pebblestore.Store {
	t.Helper()
	s, err := pebblestore.Open(t.TempDir(), pebblestore.WithPebbleOptions(func(o *pebble.Options) {
		smallPebble(o)
		o.FS = fs
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestNotVisibleBeforeDurable holds the WAL fsync of an append and checks
// that no reader sees its event until the fsync has returned.
func TestNotVisibleBeforeDurable(t *testing.T) {
	t.Parallel()
	fs := &walFS{FS: vfs.Default}
	s := openFS(t, fs)
	ctx := context.Background()
	stream := ids(time.Now())
	if _, err := s.Append(ctx, stream, 0, event(1)); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once, releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(free) // runs before the store's cleanup closes it
	fs.setHook(func() error {
		once.Do(func() { close(entered) })
		<-release
		return nil
	})
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, stream, 1, event(2))
		done <- err
	}()
	<-entered // the second append is written to the WAL, its fsync is held
	for range 3 {
		if got, err := s.Load(ctx, stream, 0); err != nil || len(got) != 1 {
			t.Fatalf("load during the fsync: %d events, %v; want only the durable one", len(got), err)
		}
		if head, _ := s.Head(ctx); head != 1 {
			t.Fatalf("feed head %d during the fsync, want 1", head)
		}
		if page, err := s.ReadFeed(ctx, 0, 10); err != nil || len(page) != 1 {
			t.Fatalf("feed during the fsync: %d events, %v", len(page), err)
		}
		short, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		if err := s.WaitFeed(short, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("wait feed during the fsync: %v", err)
		}
		cancel()
	}
	select {
	case err := <-done:
		t.Fatalf("append returned before its fsync: %v", err)
	default:
	}
	fs.setHook(nil)
	free()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load(ctx, stream, 0); err != nil || len(got) != 2 {
		t.Fatalf("load after the fsync: %d events, %v", len(got), err)
	}
}

// TestSyncFailure fails the WAL fsync: the append must report an
// unavailable error (never success), and the store must refuse later appends
// instead of carrying on over a log it cannot trust.
func TestSyncFailure(t *testing.T) {
	t.Parallel()
	fs := &walFS{FS: vfs.Default}
	s := openFS(t, fs)
	ctx := context.Background()
	stream := ids(time.Now())
	if _, err := s.Append(ctx, stream, 0, event(1)); err != nil {
		t.Fatal(err)
	}
	fs.setHook(func() error { return errors.New("injected: disk on fire") })
	_, err := s.Append(ctx, stream, 1, event(2))
	if err == nil {
		t.Fatal("append succeeded although its fsync failed")
	}
	if domain.CodeOf(err) != domain.Unavailable {
		t.Fatalf("failed fsync: %v (code %q), want unavailable", err, domain.CodeOf(err))
	}
	fs.setHook(nil)
	if _, err := s.Append(ctx, ids(time.Now()), 0, event(3)); domain.CodeOf(err) != domain.Unavailable {
		t.Fatalf("append after a failed fsync: %v, want unavailable", err)
	}
	if head, _ := s.Head(ctx); head != 1 {
		t.Fatalf("feed head %d after a failed append, want 1", head)
	}
	if got, err := s.Load(ctx, stream, 0); err != nil || len(got) != 1 {
		t.Fatalf("load after a failed append: %d events, %v", len(got), err)
	}
}
