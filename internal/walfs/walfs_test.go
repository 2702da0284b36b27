package walfs_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orderledger/orderledger/internal/walfs"
)

const size = 256 << 10

func open(t *testing.T, dir string, memtable uint64) (*pebble.DB, *walfs.FS) {
	t.Helper()
	fs, err := walfs.New(nil, dir, size)
	if err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open(dir, &pebble.Options{FS: fs, MemTableSize: memtable, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	return db, fs
}

type quiet struct{}

func (quiet) Infof(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (quiet) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

func closeBoth(t *testing.T, db *pebble.DB, fs *walfs.FS) {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// logs returns the database's log files.
func logs(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func spare(dir string) string { return filepath.Join(dir, walfs.SpareDir, "spare") }

func put(t *testing.T, db *pebble.DB, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := db.Set([]byte(fmt.Sprintf("k%06d", i)), []byte(strings.Repeat("v", 100)), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
}

func check(t *testing.T, db *pebble.DB, n int) {
	t.Helper()
	for i := range n {
		v, c, err := db.Get([]byte(fmt.Sprintf("k%06d", i)))
		if err != nil {
			t.Fatalf("key %d of %d: %v", i, n, err)
		}
		if len(v) != 100 {
			t.Fatalf("key %d: %d bytes", i, len(v))
		}
		c.Close()
	}
}

// TestLogIsTheSpare checks that the log pebble opens is the spare written by
// New, Size bytes long before the first write, and that a new spare is
// written for the next log.
func TestLogIsTheSpare(t *testing.T) {
	dir := t.TempDir()
	fs, err := walfs.New(nil, dir, size)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(spare(dir))
	if err != nil || fi.Size() != size {
		t.Fatalf("spare after New: %v, %v; want %d bytes", fi, err, size)
	}
	ino := inode(t, spare(dir))
	db, err := pebble.Open(dir, &pebble.Options{FS: fs, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	put(t, db, 0, 10)
	l := logs(t, dir)
	if len(l) != 1 {
		t.Fatalf("logs: %v", l)
	}
	if got := inode(t, l[0]); got != ino {
		t.Fatalf("the log is inode %d, the spare was %d: pebble created its own", got, ino)
	}
	if fi, _ := os.Stat(l[0]); fi.Size() != size {
		t.Fatalf("log size %d, want the spare's %d (not truncated)", fi.Size(), size)
	}
	if _, err := os.Stat(spare(dir)); !os.IsNotExist(err) {
		t.Fatalf("a next spare before the log is half full: %v", err)
	}
	put(t, db, 10, 10+size/2/100) // past half of the log
	closeBoth(t, db, fs)          // waits for the next spare
	if fi, err := os.Stat(spare(dir)); err != nil || fi.Size() != size {
		t.Fatalf("next spare once the log is half full: %v, %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, walfs.SpareDir, "spare.tmp")); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
}

// TestKilledStoreReopens copies the directory while the database is open
// after synced writes (what kill -9 leaves: the page cache survives) and
// opens the copy: every synced write is there, whether the log ended inside
// the spare's zeros or grew past them.
func TestKilledStoreReopens(t *testing.T) {
	for _, n := range []int{1, 50, 3000} { // 3,000 x ~120 bytes: past the 256 KiB spare
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			dir := t.TempDir()
			db, fs := open(t, dir, 64<<20)
			put(t, db, 0, n)
			crash := t.TempDir()
			copyDir(t, dir, crash)
			closeBoth(t, db, fs)

			db2, fs2 := open(t, crash, 64<<20)
			check(t, db2, n)
			put(t, db2, n, n+10) // and it goes on
			check(t, db2, n+10)
			closeBoth(t, db2, fs2)
		})
	}
}

// TestRotationAndRestart writes through several memtable rotations (each a
// new log), restarts, and checks every write and that the obsolete log
// became the spare instead of being removed.
func TestRotationAndRestart(t *testing.T) {
	dir := t.TempDir()
	db, fs := open(t, dir, 256<<10)
	put(t, db, 0, 8000)
	closeBoth(t, db, fs)

	db, fs = open(t, dir, 256<<10)
	check(t, db, 8000)
	put(t, db, 8000, 8100)
	closeBoth(t, db, fs)

	db, fs = open(t, dir, 256<<10)
	check(t, db, 8100)
	closeBoth(t, db, fs)
}

// TestRemovedLogLeavesOneSpare removes a log file while the next spare is
// being written: the log either becomes the spare (the write is given up)
// or is removed (the write won); either way the log is gone, one whole
// spare is there and no temporary file is left.
func TestRemovedLogLeavesOneSpare(t *testing.T) {
	for range 5 {
		dir := t.TempDir()
		fs, err := walfs.New(nil, dir, 16<<20)
		if err != nil {
			t.Fatal(err)
		}
		log := filepath.Join(dir, "000001.log")
		f, err := fs.Create(log, "test") // takes the spare
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(make([]byte, 8<<20)); err != nil { // half: the next spare starts
			t.Fatal(err)
		}
		f.Close()
		old := inode(t, log)
		if err := fs.Remove(log); err != nil {
			t.Fatal(err)
		}
		if err := fs.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(log); !os.IsNotExist(err) {
			t.Fatalf("removed log still there: %v", err)
		}
		fi, err := os.Stat(spare(dir))
		if err != nil || fi.Size() != 16<<20 {
			t.Fatalf("spare: %v, %v", fi, err)
		}
		if _, err := os.Stat(filepath.Join(dir, walfs.SpareDir, "spare.tmp")); !os.IsNotExist(err) {
			t.Fatalf("temporary file left: %v", err)
		}
		t.Logf("the removed log became the spare: %v", inode(t, spare(dir)) == old)
	}
}

// TestTornSpareIsRemoved checks that New removes a temporary file left by a
// crash while a spare was written and writes a whole one.
func TestTornSpareIsRemoved(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, walfs.SpareDir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, walfs.SpareDir, "spare.tmp")
	if err := os.WriteFile(tmp, []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spare(dir), []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs, err := walfs.New(nil, dir, size)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("torn temporary file: %v", err)
	}
	if fi, err := os.Stat(spare(dir)); err != nil || fi.Size() != size {
		t.Fatalf("spare: %v, %v; want %d bytes", fi, err, size)
	}
}

// TestNoRoomNoSpare asks for a spare larger than half the free space: New
// writes none and succeeds, and pebble's log is an ordinary file that keeps
// what is written.
func TestNoRoomNoSpare(t *testing.T) {
	dir := t.TempDir()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	fs, err := walfs.New(nil, dir, free/2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(spare(dir)); !os.IsNotExist(err) {
		t.Fatalf("a spare of %d bytes with %d free: %v", free/2, free, err)
	}
	db, err := pebble.Open(dir, &pebble.Options{FS: fs, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	put(t, db, 0, 10)
	l := logs(t, dir)
	if len(l) != 1 {
		t.Fatalf("logs: %v", l)
	}
	if fi, _ := os.Stat(l[0]); fi.Size() > 1<<20 {
		t.Fatalf("log of %d bytes: a spare was used", fi.Size())
	}
	check(t, db, 10)
	closeBoth(t, db, fs)
}

// TestOtherFilesPassThrough checks that files that are not logs are created
// and removed as by the base filesystem.
func TestOtherFilesPassThrough(t *testing.T) {
	dir := t.TempDir()
	fs, err := walfs.New(vfs.Default, dir, size)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	for _, name := range []string{"MANIFEST-000001", "000001.sst", "x.log", filepath.Join("sub", "000001.log")} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := fs.Create(p, "test")
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat()
		f.Close()
		if fi.Size() != 0 {
			t.Fatalf("%s: %d bytes, want a new empty file", name, fi.Size())
		}
	}
	if fi, err := os.Stat(spare(dir)); err != nil || fi.Size() != size {
		t.Fatalf("spare taken by a file that is not a log: %v, %v", fi, err)
	}
	if _, err := walfs.New(nil, dir, 0); err == nil {
		t.Fatal("size 0 accepted")
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if fi.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if fi.Name() == "LOCK" {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		out, err := os.Create(dst)
		if err != nil {
			return err
		}
		defer out.Close()
		_, err = io.Copy(out, src)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
