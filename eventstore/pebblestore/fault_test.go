package pebblestore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

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
// that no reader sees its event until the fsync has returned, though pebble
// holds it meanwhile (the applier applies a group while its log syncs).
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
	for deadline := time.Now().Add(10 * time.Second); !pebblestore.InPebble(s, stream, 2); {
		if time.Now().After(deadline) {
			t.Fatal("the held append was not applied to pebble during its fsync")
		}
		time.Sleep(time.Millisecond)
	}
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

const syncFailureDirEnv = "PEBBLESTORE_SYNC_FAILURE_DIR"

// syncFailureStream is the stream TestSyncFailureChild appends to.
const syncFailureStream = "sync-failure"

// TestSyncFailureChild is the child process of TestSyncFailure: it appends
// one event, then fails every WAL fsync and tries two more appends,
// printing each outcome it gets. It does nothing in a normal test run.
func TestSyncFailureChild(t *testing.T) {
	dir := os.Getenv(syncFailureDirEnv)
	if dir == "" {
		t.Skip("child process of TestSyncFailure only")
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	fs := &walFS{FS: vfs.Default}
	s, err := pebblestore.Open(dir, pebblestore.WithPebbleOptions(func(o *pebble.Options) {
		smallPebble(o)
		o.FS = fs
	}))
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(3)
	}
	ctx := context.Background()
	if _, err := s.Append(ctx, syncFailureStream, 0, event(1)); err != nil {
		fmt.Println("first append failed:", err)
		os.Exit(4)
	}
	fmt.Println("appended 1")
	fs.setHook(func() error { return errors.New("injected: disk on fire") })
	_, err = s.Append(ctx, syncFailureStream, 1, event(2))
	fmt.Println("append 2 returned:", err)
	fs.setHook(nil)
	_, err = s.Append(ctx, ids(time.Now()), 0, event(3))
	fmt.Println("append 3 returned:", err)
	os.Exit(0)
}

// TestSyncFailure fails the WAL fsync of an append in a child process. A
// failed fsync is fatal to pebble, and the policy (internal/pebblelog) ends
// the process: the append must never report success (it never returns), no
// later append may run over a log the store cannot trust (the process is
// gone, with status 1), and the fatal error is logged at error level. After
// the restart the acknowledged event is intact and appends work again; the
// unacknowledged one may or may not be in the replayed log, as after any
// crash.
func TestSyncFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSyncFailureChild$")
	cmd.Env = append(os.Environ(), syncFailureDirEnv+"="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := stdout.String()
	if !strings.Contains(out, "appended 1") {
		t.Fatalf("child did not get the first append: %v\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("child: %v, want exit status 1 from the fatal error\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
	if strings.Contains(out, "append 2 returned") || strings.Contains(out, "append 3 returned") {
		t.Fatalf("an append returned after its fsync failed:\n%s", out)
	}
	if log := stderr.String(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "eventstore/pebblestore: pebble: fatal:") ||
		!strings.Contains(log, "disk on fire") {
		t.Fatalf("the fatal error is not logged at error level:\n%s", log)
	}

	s := open(t, dir)
	ctx := context.Background()
	got, err := s.Load(ctx, syncFailureStream, 0)
	if err != nil || len(got) == 0 || got[0].Version != 1 || string(got[0].Data) != string(event(1).Data) {
		t.Fatalf("after the restart the acknowledged event is not intact: %+v, %v", got, err)
	}
	head, err := s.Head(ctx)
	if err != nil || head != uint64(len(got)) || head > 2 {
		t.Fatalf("after the restart: head %d (%v) with %d events in the stream", head, err, len(got))
	}
	if _, err := s.Append(ctx, syncFailureStream, int64(len(got)), event(4)); err != nil {
		t.Fatalf("append after the restart: %v", err)
	}
}
