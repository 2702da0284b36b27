package httpserver_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderledger/orderledger/internal/httpserver"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestNewServerSetsEveryTimeout(t *testing.T) {
	t.Parallel()
	srv := httpserver.NewServer(httpserver.Config{Handler: http.NotFoundHandler()})
	if srv.ReadHeaderTimeout != httpserver.ReadHeaderTimeout || srv.ReadTimeout != httpserver.ReadTimeout ||
		srv.WriteTimeout != httpserver.WriteTimeout || srv.IdleTimeout != httpserver.IdleTimeout || srv.ErrorLog == nil {
		t.Fatalf("server limits: header %v read %v write %v idle %v, error log %v",
			srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.ErrorLog)
	}
	for _, d := range []time.Duration{srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout} {
		if d <= 0 {
			t.Fatalf("a timeout is not set: %v", d)
		}
	}
}

// serve runs Serve with h until the returned cancel is called; it returns
// the address, the channel Serve's result arrives on and the log.
func serve(t *testing.T, h http.Handler, timeout time.Duration, onShutdown func()) (string, context.CancelFunc, <-chan error, *syncBuffer) {
	t.Helper()
	var logs syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	addrc := make(chan string, 1)
	served := make(chan error, 1)
	go func() {
		served <- httpserver.Serve(ctx, httpserver.Config{
			Addr: "127.0.0.1:0", Handler: h, ShutdownTimeout: timeout, OnShutdown: onShutdown,
			Logger:   slog.New(slog.NewJSONHandler(&logs, nil)),
			LogAttrs: []any{"backend", "test"},
			Started:  func(addr string) { addrc <- addr },
		})
	}()
	select {
	case addr := <-addrc:
		return addr, cancel, served, &logs
	case err := <-served:
		t.Fatalf("serve: %v", err)
	}
	return "", nil, nil, nil
}

// TestServeDrainsRequestsInFlight: a request in flight when the context
// ends still gets its answer, Serve returns nil, and the log has the
// life-cycle lines.
func TestServeDrainsRequestsInFlight(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "drained")
	})
	shutdown := make(chan struct{})
	addr, cancel, served, logs := serve(t, h, time.Minute, func() { close(shutdown) })
	got := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		got <- string(b)
	}()
	<-entered
	cancel()
	<-shutdown
	close(release)
	if body := <-got; body != "drained" {
		t.Errorf("in-flight request got %q", body)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	for _, line := range []string{`"msg":"serving","addr":"` + addr + `","backend":"test"`, `"msg":"shutting down: draining requests"`} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("log lacks %s:\n%s", line, logs.String())
		}
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("still accepting connections after Serve returned")
	}
}

// TestServeBoundsTheDrain: a request that never finishes holds the drain
// only for the shutdown timeout; Serve then cuts it and says so.
func TestServeBoundsTheDrain(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done() // until the server closes the connection
	})
	addr, cancel, served, _ := serve(t, h, 200*time.Millisecond, nil)
	go func() {
		if res, err := http.Get("http://" + addr + "/stuck"); err == nil {
			res.Body.Close()
		}
	}()
	<-entered
	start := time.Now()
	cancel()
	err := <-served
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("serve after a stuck drain: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the drain took %v with a 200ms timeout", d)
	}
}

func TestServeReportsAListenFailure(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = httpserver.Serve(t.Context(), httpserver.Config{Addr: ln.Addr().String(), Handler: http.NotFoundHandler()})
	if err == nil || !strings.HasPrefix(err.Error(), "httpserver: listen: ") {
		t.Fatalf("serve on a taken address: %v", err)
	}
	if err := httpserver.Serve(t.Context(), httpserver.Config{Addr: "127.0.0.1:0"}); err == nil {
		t.Fatal("serve without a handler succeeded")
	}
}
