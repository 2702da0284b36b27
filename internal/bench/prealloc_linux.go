package bench

import (
	"os"

	"golang.org/x/sys/unix"
)

// preallocate reserves size bytes for f as pebble reserves its WAL
// (fallocate, keeping the file's size).
func preallocate(f *os.File, size int64) error {
	return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, size)
}

// datasync flushes f's data and only the metadata needed to read it back.
func datasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
