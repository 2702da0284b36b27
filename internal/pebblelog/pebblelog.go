// Package pebblelog is the pebble logger of every embedded database
// (events, views, queues). pebble calls Fatalf on errors it cannot recover
// from (a failed WAL write or sync, a failed MANIFEST sync) and its default
// logger then exits the process; this one panics instead, so the adapter
// that made the call can contain it and report an error (a 503, a failed
// append) rather than die. Error lines (a failed background compaction, for
// instance) go to the standard logger; informational lines are dropped.
package pebblelog

import (
	"fmt"
	"log"
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
