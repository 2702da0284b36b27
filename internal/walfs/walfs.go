// Package walfs gives pebble write-ahead log files whose blocks are already
// written, so that each sync of the log writes data and no file metadata.
//
// Why: the first write to a block of a new file, or of a file preallocated
// with fallocate (pebble preallocates its WAL), is a metadata change on ext4
// and XFS (the file's size, or an extent's conversion from unwritten to
// written), so the next fdatasync also commits the file system's journal.
// Measured here, that halves the rate of durable appends (BENCHMARKS.md,
// "Why appends reach a third"). Pebble avoids it only for log files it
// recycles, which it has once a memtable has been flushed: never for the
// log of a freshly opened store, where a ledger's appends wait on every
// sync.
//
// How: FS wraps a vfs.FS. It keeps one spare file in the subdirectory
// SpareDir of the database directory, Size bytes of zeros written and
// synced. When pebble creates a log file (NNNNNN.log) and a spare is ready,
// the spare is renamed to that name and opened for writing without
// truncation, as pebble's own recycling does (ReuseForWrite); once pebble
// has written half of it, the next spare is written in the background. A log file pebble removes (it is
// obsolete) becomes the spare instead, when none is ready and the file is
// at least Size bytes long, so a restart reuses the last log and writes
// nothing. The first spare of a directory is written by New, before pebble
// opens it.
//
// Guarantees: pebble writes, syncs and reads its logs exactly as before;
// only where the file's bytes came from changes. The bytes after the end of
// a reused log are zeros or an older log's records, which pebble's reader
// tells apart from its own records by each chunk's log number and stops at,
// the same tail it reads in a log it recycled itself or preallocated. A
// crash while a spare is written leaves a temporary file that New removes.
//
// A spare is written only while the filesystem has twice Size and MinFree
// free, so a nearly full disk keeps ordinary logs rather than fill up with
// spares; a spare that cannot be written leaves ordinary logs too.
//
// Caveats: a log that grows past Size appends into new blocks again, as
// before; pebble rotates its log when the memtable is full, so Size should
// be the memtable size with some headroom. Each spare costs Size bytes of
// disk, and writing one costs Size bytes of I/O (about 70 ms for 72 MiB on
// the machine of BENCHMARKS.md), once per log pebble fills half way while
// no obsolete log can be reused, and once when New finds no spare.
package walfs

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orderledger/orderledger/internal/pebblelog"
)

// SpareDir is the subdirectory of the database directory holding the spare
// log file. Pebble ignores names it does not know.
const SpareDir = "wal-spare"

const (
	spareName = "spare"
	tempName  = "spare.tmp"
	chunk     = 1 << 20
)

// FS is a vfs.FS for one pebble database directory (Options.FS). Close it
// after the database.
type FS struct {
	vfs.FS
	dir  string
	size int64

	mu      sync.Mutex
	ready   bool          // the spare file exists, Size bytes written and synced
	filling bool          // a goroutine is writing the spare
	closed  bool          // Close was called: write no more spares
	done    chan struct{} // closed when the filling goroutine ends
	fillErr error         // the last background fill's error, for Close
}

// New returns an FS for the database in dir on base (vfs.Default when nil)
// whose logs are prewritten to size bytes, and writes the first spare when
// the directory has none. A spare is an optimisation only: when it cannot
// be written (no room, a read-only directory, any error), logs are ordinary
// files and New still succeeds; Err says why.
func New(base vfs.FS, dir string, size int64) (*FS, error) {
	if base == nil {
		base = vfs.Default
	}
	if size <= 0 {
		return nil, fmt.Errorf("walfs: size %d: must be positive", size)
	}
	f := &FS{FS: base, dir: dir, size: size}
	if fi, err := base.Stat(f.sparePath()); err == nil && fi.Size() >= size {
		f.ready = true
		return f, nil
	}
	if !f.room() {
		return f, nil
	}
	if err := base.MkdirAll(f.spareDir(), 0o755); err != nil {
		f.fillErr = fmt.Errorf("walfs: %w", err)
		return f, nil
	}
	if err := base.Remove(f.tempPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		f.fillErr = fmt.Errorf("walfs: remove a torn spare: %w", err)
		return f, nil
	}
	if err := f.fill(func() bool { return false }); err != nil {
		f.fillErr = err
		return f, nil
	}
	f.ready = true
	return f, nil
}

// MinFree is the free space, beyond twice Size, below which no spare is
// written: a spare must never be what fills the disk.
const MinFree = 64 << 20

// room reports whether the filesystem has room for a spare: twice Size and
// MinFree free (or the free space cannot be read: the write then tells).
func (f *FS) room() bool { return HasRoom(f.dir, f.size) }

// HasRoom reports whether the filesystem holding dir (or, before dir
// exists, its nearest existing parent) has room for a prewritten file of
// size bytes by the rule of the spares: twice size and MinFree free (or
// the free space cannot be read).
func HasRoom(dir string, size int64) bool {
	free, ok := pebblelog.FreeSpace(dir)
	return !ok || free >= uint64(2*size+MinFree)
}

// Err returns why the last spare could not be written, or nil.
func (f *FS) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fillErr
}

// Size is how many bytes each spare log holds.
func (f *FS) Size() int64 { return f.size }

func (f *FS) spareDir() string  { return f.FS.PathJoin(f.dir, SpareDir) }
func (f *FS) sparePath() string { return f.FS.PathJoin(f.spareDir(), spareName) }
func (f *FS) tempPath() string  { return f.FS.PathJoin(f.spareDir(), tempName) }

// isLog reports whether name is one of pebble's log files in the directory.
func (f *FS) isLog(name string) bool {
	if f.FS.PathDir(name) != f.FS.PathDir(f.FS.PathJoin(f.dir, "x")) {
		return false
	}
	base := f.FS.PathBase(name)
	num, ok := strings.CutSuffix(base, ".log")
	if !ok || num == "" {
		return false
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Create creates name; a log file takes the spare when one is ready.
func (f *FS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if !f.isLog(name) {
		return f.FS.Create(name, category)
	}
	f.mu.Lock()
	take := f.ready
	f.ready = false
	f.mu.Unlock()
	if take {
		file, err := f.FS.ReuseForWrite(f.sparePath(), name, category)
		if err == nil {
			return &logFile{File: file, fs: f}, nil
		}
		// The spare is unusable (gone, or the rename failed): an ordinary
		// log file, as without this package.
		if file != nil {
			_ = file.Close()
		}
	}
	file, err := f.FS.Create(name, category)
	if err != nil {
		return nil, err
	}
	return &logFile{File: file, fs: f}, nil
}

// logFile is a log pebble writes; half way through Size, the next spare is
// written, so that a store that writes little writes no second spare.
type logFile struct {
	vfs.File
	fs      *FS
	written atomic.Int64
	asked   atomic.Bool
}

func (l *logFile) Write(p []byte) (int, error) {
	n, err := l.File.Write(p)
	if l.written.Add(int64(n)) >= l.fs.size/2 && !l.asked.Load() {
		l.asked.Store(true)
		l.fs.refill()
	}
	return n, err
}

// Remove removes name; an obsolete log file becomes the spare when none is
// ready and it is long enough.
func (f *FS) Remove(name string) error {
	if !f.isLog(name) {
		return f.FS.Remove(name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ready || f.closed || !f.room() {
		return f.FS.Remove(name)
	}
	// A spare being written is given up for this one (fill sees ready).
	fi, err := f.FS.Stat(name)
	if err != nil || fi.Size() < f.size {
		return f.FS.Remove(name)
	}
	if err := f.FS.Rename(name, f.sparePath()); err != nil {
		return f.FS.Remove(name)
	}
	f.ready = true
	return nil
}

// refill writes a new spare in the background unless one is ready or being
// written.
func (f *FS) refill() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ready || f.filling || f.closed || !f.room() {
		return
	}
	f.filling = true
	f.done = make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		err := f.fill(func() bool {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.closed || f.ready
		})
		f.mu.Lock()
		defer f.mu.Unlock()
		f.filling = false
		switch {
		case errors.Is(err, errCancelled):
		case err != nil:
			f.fillErr = err
		case !f.closed:
			f.ready = true
		}
	}(f.done)
}

var errCancelled = errors.New("walfs: cancelled")

// fill writes Size zero bytes into the temporary file, syncs it, renames it
// to the spare and syncs the directory. It gives up (removing the temporary
// file, returning errCancelled) when stop reports true between chunks or
// before the rename.
func (f *FS) fill(stop func() bool) (err error) {
	tmp := f.tempPath()
	file, err := f.FS.Create(tmp, "walfs-spare")
	if err != nil {
		return fmt.Errorf("walfs: create a spare: %w", err)
	}
	defer func() {
		if file != nil {
			_ = file.Close()
		}
		if err != nil {
			_ = f.FS.Remove(tmp)
		}
	}()
	zeros := make([]byte, chunk)
	for off := int64(0); off < f.size; off += chunk {
		if stop() {
			return errCancelled
		}
		n := min(int64(chunk), f.size-off)
		if _, err := file.Write(zeros[:n]); err != nil {
			return fmt.Errorf("walfs: write a spare: %w", err)
		}
	}
	if err := file.Sync(); err != nil {
		return fmt.Errorf("walfs: sync a spare: %w", err)
	}
	if err := file.Close(); err != nil {
		file = nil
		return fmt.Errorf("walfs: close a spare: %w", err)
	}
	file = nil
	if stop() {
		return errCancelled
	}
	if err := f.FS.Rename(tmp, f.sparePath()); err != nil {
		return fmt.Errorf("walfs: rename a spare: %w", err)
	}
	d, err := f.FS.OpenDir(f.spareDir())
	if err != nil {
		return fmt.Errorf("walfs: open the spare directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("walfs: sync the spare directory: %w", err)
	}
	return nil
}

// Close stops writing spares and waits for a spare being written. It
// returns the last background error, which cost only speed: a log created
// without a spare is an ordinary one.
func (f *FS) Close() error {
	f.mu.Lock()
	f.closed = true
	done := f.done
	f.mu.Unlock()
	if done != nil {
		<-done
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fillErr
}
