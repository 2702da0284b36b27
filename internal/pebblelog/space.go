package pebblelog

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// Reserve is the free space, in bytes, below which the adapters refuse
// writes (see CheckSpace).
const Reserve = 1 << 20

// CheckSpace returns a StorageError wrapping syscall.ENOSPC when the
// filesystem holding dir (or, before dir exists, its nearest existing
// parent) has less than Reserve bytes free for unprivileged writers, and
// nil otherwise (or when the free space cannot be read).
//
// Why: pebble treats a failed write of its log as fatal, and the policy
// ends the process (see the package doc). A full disk, though, is an
// outage an operator fixes by freeing space, not a reason to crash-loop, so
// the adapters call CheckSpace before opening their database and before
// each write to their log (the frequent commits through a Space, which
// reads the free space less often while there is plenty), and refuse it
// with a domain.Unavailable error (HTTP 503) while the disk is nearly
// full; writes resume by themselves once space is freed. The reserve keeps
// room for the writes already under way and for pebble's own bookkeeping;
// a disk that fills faster than that (another process, a memtable flush
// larger than the reserve) still meets the fatal-error policy.
func CheckSpace(pkg, op, dir string) error {
	free, ok := FreeSpace(dir)
	if !ok || free >= Reserve {
		return nil // unreadable: pebble reports what matters when it writes
	}
	return spaceErr(pkg, op, free)
}

// spaceErr is the error of a check that found free bytes, below Reserve.
func spaceErr(pkg, op string, free uint64) error {
	return &StorageError{Pkg: pkg, Op: op, Err: fmt.Errorf("%w: %d bytes free, below the %d-byte reserve", syscall.ENOSPC, free, Reserve)}
}

// FreeSpace returns the bytes free for unprivileged writers on the
// filesystem holding dir, or, before dir exists, its nearest existing
// parent; ok is false when that cannot be read.
func FreeSpace(dir string) (free uint64, ok bool) {
	var st syscall.Statfs_t
	for {
		err := syscall.Statfs(dir, &st)
		if err == nil {
			return uint64(st.Bavail) * uint64(st.Bsize), true
		}
		parent := filepath.Dir(dir)
		if !errors.Is(err, syscall.ENOENT) || parent == dir {
			return 0, false
		}
		dir = parent
	}
}

// Plenty is the free space, in bytes, above which a Space lets the checks
// of the next SpaceGrace pass without reading it again.
const Plenty = 64 << 20

// SpaceGrace is how long a reading of Plenty or more vouches for the room.
const SpaceGrace = 10 * time.Millisecond

// Space is CheckSpace for the commits of one database, which come
// thousands of times a second: reading the free space is a statfs, 2 to 7
// µs each here, paid on the commit path. After a reading of at least
// Plenty bytes free, Check answers from it for SpaceGrace; below Plenty,
// every Check reads again, so a disk near the reserve is watched as
// closely as before. Filling Plenty bytes in SpaceGrace would take 6.4 GB/s
// of writes; a flush that large is the case CheckSpace's doc already
// leaves to the fatal-error policy. Safe for concurrent use.
type Space struct {
	pkg, dir string
	until    atomic.Int64 // UnixNano until which the last reading vouches
	read     func(string) (uint64, bool)
}

// NewSpace returns the Space of the filesystem holding dir; pkg prefixes
// its errors, as CheckSpace's.
func NewSpace(pkg, dir string) *Space {
	return &Space{pkg: pkg, dir: dir, read: FreeSpace}
}

// Check is CheckSpace(pkg, op, dir), answered from the last reading while
// that vouches for the room.
func (s *Space) Check(op string) error {
	now := time.Now().UnixNano()
	if now < s.until.Load() {
		return nil
	}
	free, ok := s.read(s.dir)
	if !ok {
		return nil // unreadable: as CheckSpace
	}
	if free < Reserve {
		return spaceErr(s.pkg, op, free)
	}
	if free >= Plenty {
		s.until.Store(now + int64(SpaceGrace))
	}
	return nil
}
