// Package pebblelog is the pebble policy of every embedded database
// (events, views, queues): its logger, its storage error and its key ranges.
// pebble calls Fatalf on errors it cannot recover
// from (a failed WAL write or sync, a failed MANIFEST sync) and its default
// logger then exits the process; this one panics instead, so the adapter
// that made the call can contain it and report an error (a 503, a failed
// append) rather than die. Error lines (a failed background compaction, for
// instance) go to the standard logger; informational lines are dropped.
package pebblelog

import (
	"bytes"
	"fmt"
	"log"

	"github.com/orderledger/orderledger/domain"
)

// Logger implements pebble.Logger. Prefix names the database's owner,
// e.g. "eventstore/pebblestore".
type Logger struct{ Prefix string }

// Infof drops pebble's informational lines.
func (Logger) Infof(string, ...any) {}

// Errorf logs an error pebble survived.
func (l Logger) Errorf(format string, args ...any) {
	log.Printf(l.Prefix+": pebble: "+format, args...)
}

// Fatalf panics with a Fatal error for the caller to recover.
func (l Logger) Fatalf(format string, args ...any) {
	panic(Fatal(l.Prefix + ": pebble: " + fmt.Sprintf(format, args...)))
}

// Fatal is the panic value of Fatalf.
type Fatal string

func (e Fatal) Error() string { return string(e) }

// StorageError is a failure of the disk or of pebble in the database owned
// by package Pkg: the database may work again later (or after a restart), so
// it is domain.Unavailable (HTTP 503).
type StorageError struct {
	Pkg, Op string
	Err     error
}

func (e *StorageError) Error() string { return e.Pkg + ": " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the engine's error.
func (e *StorageError) Unwrap() error { return e.Err }

// DomainCode makes a storage failure domain.Unavailable.
func (e *StorageError) DomainCode() domain.Code { return domain.Unavailable }

// PrefixEnd returns the smallest key greater than every key with prefix p
// (nil when there is none: p is empty or all 0xFF), the upper bound of an
// iterator over the prefix.
func PrefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
