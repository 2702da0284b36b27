package pebblelog

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
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
// each write to their log, and refuse it with a domain.Unavailable error (HTTP 503) while the disk is nearly
// full; writes resume by themselves once space is freed. The reserve keeps
// room for the writes already under way and for pebble's own bookkeeping;
// a disk that fills faster than that (another process, a memtable flush
// larger than the reserve) still meets the fatal-error policy.
func CheckSpace(pkg, op, dir string) error {
	free, ok := FreeSpace(dir)
	if !ok || free >= Reserve {
		return nil // unreadable: pebble reports what matters when it writes
	}
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
