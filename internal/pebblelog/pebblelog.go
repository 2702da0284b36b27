// Package pebblelog is the pebble policy of every embedded database
// (events, views, queues): its logger, what a fatal engine error does, its
// storage error and its key ranges.
//
// Logging: pebble's lines go through log/slog (Logger.Log, or the default
// logger at the time of the line): informational lines at debug level (so a
// handler at its default level drops them), errors pebble survived (a failed
// background compaction, for instance) at error level.
//
// Fatal errors: pebble calls Fatalf on errors it cannot recover from (a
// failed WAL write or sync, a failed MANIFEST sync, corruption found by a
// compaction), from the caller's goroutine or from its own background ones,
// and expects the call never to return. The policy, as pebble's own default
// logger does, is to end the process: Fatalf logs the error at error level
// and exits with status 1, running no deferred function. Nothing is
// recovered and no caller sees an error for it: an operation cut off this
// way was never acknowledged, and what was acknowledged is on disk (every
// acknowledgement follows its fsync). The next start replays pebble's log;
// the kill -9 tests of each adapter and of tests/reliability show that such
// a restart loses nothing acknowledged. A supervisor (systemd, ECS, the
// container runtime) restarts the process.
//
// Storage errors: the errors pebble or the disk return (and the engine
// survives) are StorageError, domain.Unavailable (HTTP 503) in all three
// databases.
package pebblelog

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/orderledger/orderledger/domain"
)

// Logger implements pebble.Logger with the policy of the package doc.
// Prefix names the database's owner, e.g. "eventstore/pebblestore"; Log is
// where the lines go (nil: slog.Default() when a line is written).
type Logger struct {
	Prefix string
	Log    *slog.Logger
}

func (l Logger) logger() *slog.Logger {
	if l.Log != nil {
		return l.Log
	}
	return slog.Default()
}

func (l Logger) line(level slog.Level, format string, args []any) {
	lg := l.logger()
	if lg.Enabled(context.Background(), level) {
		lg.Log(context.Background(), level, l.Prefix+": pebble: "+fmt.Sprintf(format, args...))
	}
}

// Infof logs an informational line at debug level.
func (l Logger) Infof(format string, args ...any) { l.line(slog.LevelDebug, format, args) }

// Errorf logs an error pebble survived, at error level.
func (l Logger) Errorf(format string, args ...any) { l.line(slog.LevelError, format, args) }

// Fatalf logs a fatal engine error at error level and exits the process
// with status 1 (see the package doc). It does not return.
func (l Logger) Fatalf(format string, args ...any) {
	l.logger().Error(l.Prefix+": pebble: fatal: "+fmt.Sprintf(format, args...), "exit", 1)
	os.Exit(1)
}

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
