//go:build !linux

package bench

import (
	"errors"
	"os"
)

// preallocate is not measured off Linux.
func preallocate(*os.File, int64) error { return errors.New("bench: no fallocate here") }

// datasync is a full sync off Linux.
func datasync(f *os.File) error { return f.Sync() }
