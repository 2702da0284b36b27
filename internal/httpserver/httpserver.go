// Package httpserver serves an http.Handler the one way both runtimes of
// orderledger do (package app, the embedded one, and package aws/awsapp):
// with the same four timeouts, the same log lines and a graceful drain.
//
// Guarantees of Serve:
//   - Every connection is bounded by ReadHeaderTimeout, ReadTimeout,
//     WriteTimeout and IdleTimeout, so a slow or idle client cannot hold a
//     connection forever.
//   - It logs "serving" (with the address) once the listener is open, and
//     "shutting down: draining requests" when its context ends.
//   - When the context ends it stops accepting connections and waits for
//     the requests in flight, for at most the configured ShutdownTimeout;
//     then it closes the connections still open and returns an error
//     wrapping context.DeadlineExceeded.
//   - It returns only once the server has stopped: nil after a clean
//     drain, an error if the listener could not be opened or failed.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// The server's limits. A request must send its headers within
// ReadHeaderTimeout and its body within ReadTimeout; its answer must be
// written within WriteTimeout; a keep-alive connection is closed after
// IdleTimeout without a request.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 2 * time.Minute
	// DefaultShutdownTimeout bounds the drain when Config sets none.
	DefaultShutdownTimeout = 20 * time.Second
)

// Config is what Serve serves and how. Addr and Handler are required.
type Config struct {
	// Addr is the listen address, e.g. ":8000" ("127.0.0.1:0" picks a port).
	Addr    string
	Handler http.Handler
	// Logger receives the life-cycle lines and the server's own errors
	// (nil discards).
	Logger *slog.Logger
	// LogAttrs are added to the "serving" line (e.g. "data", dir).
	LogAttrs []any
	// ShutdownTimeout bounds the drain of requests in flight (0:
	// DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
	// Started, when set, is called with the listening address once serving.
	Started func(addr string)
	// OnShutdown, when set, is called when the drain begins.
	OnShutdown func()
}

// NewServer returns the http.Server Serve runs: cfg's handler with the
// package's timeouts and the server's error log at warning level.
func NewServer(cfg Config) *http.Server {
	log := logger(cfg)
	srv := &http.Server{
		Handler:           cfg.Handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.OnShutdown != nil {
		srv.RegisterOnShutdown(cfg.OnShutdown)
	}
	return srv
}

// Serve listens on cfg.Addr and serves cfg.Handler until ctx ends, then
// drains the requests in flight (see the package doc).
func Serve(ctx context.Context, cfg Config) error {
	if cfg.Addr == "" || cfg.Handler == nil {
		return errors.New("httpserver: serve: an address and a handler are required")
	}
	timeout := cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	log := logger(cfg)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("httpserver: listen: %w", err)
	}
	srv := NewServer(cfg)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()
	log.Info("serving", append([]any{"addr", addr}, cfg.LogAttrs...)...)
	if cfg.Started != nil {
		cfg.Started(addr)
	}
	select {
	case err := <-served:
		if stopped(err) {
			return nil
		}
		return fmt.Errorf("httpserver: serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	shutErr := srv.Shutdown(sctx)
	if shutErr != nil {
		// The drain ran out of time: cut the connections still open.
		_ = srv.Close()
	}
	if err := <-served; !stopped(err) {
		return fmt.Errorf("httpserver: serve: %w", err)
	}
	if shutErr != nil {
		return fmt.Errorf("httpserver: shutdown: %w", shutErr)
	}
	return nil
}

// stopped reports whether err only says that the server or its listener
// was closed, which is how a shut-down server ends.
func stopped(err error) bool {
	return err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed)
}

func logger(cfg Config) *slog.Logger {
	if cfg.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return cfg.Logger
}
