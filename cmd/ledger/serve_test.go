package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderledger/orderledger/app"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
)

// lockedBuf is a goroutine-safe output sink for in-process runs.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runWithEnv runs the ledger in process with the given LEDGER_* variables.
func runWithEnv(ctx context.Context, vars map[string]string, args ...string) (int, string, string) {
	var out, errb lockedBuf
	code := run(ctx, &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}, args)
	return code, out.String(), errb.String()
}

func TestServeRejectsBadFlags(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		vars map[string]string
		want string
	}{
		{[]string{"serve", "--backend", "floppy"}, nil, "--backend must be"},
		{[]string{"serve", "--workers", "0"}, nil, "--workers"},
		{[]string{"serve"}, map[string]string{"LEDGER_WORKERS": "-1"}, "--workers"},
		{[]string{"serve"}, map[string]string{"LEDGER_SIM_PAYMENT_DECLINE_RATE": "2"}, "decline rate"},
		{[]string{"serve", "--sim-payment-error-rate", "-0.5"}, nil, "error rate"},
		{[]string{"serve", "--sim-latency", "fast"}, nil, "sim-latency"},
		{[]string{"serve", "--notify-webhook", "ftp://x"}, nil, "--notify-webhook"},
		{[]string{"serve", "--retry-backoff", "-1s"}, nil, "--retry-backoff"},
		{[]string{"serve", "--shutdown-timeout", "0s"}, nil, "--shutdown-timeout"},
		{[]string{"serve", "extra"}, nil, "unexpected argument"},
		{[]string{"serve", "--services-url", "ftp://x"}, nil, "--services-url"},
		{[]string{"serve"}, map[string]string{"LEDGER_SERVICES_URL": "not a url"}, "--services-url"},
		{[]string{"serve", "--services-url", "http://127.0.0.1:1", "--sim-latency", "5ms"}, nil, "--sim-latency configures the in-process simulator"},
		{[]string{"serve", "--local-mappings=false"}, nil, "--local-mappings=false applies to --backend aws only"},
	}
	for _, c := range cases {
		code, _, stderr := runWithEnv(t.Context(), c.vars, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v %v: exit %d, stderr %q (want %q)", c.args, c.vars, code, stderr, c.want)
		}
	}
}

// TestServeRunsAndStops: serve in process on a free port, answer a health
// check, stop on cancel with exit status 0.
func TestServeRunsAndStops(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errb lockedBuf
	done := make(chan int, 1)
	dir := t.TempDir()
	go func() {
		done <- run(ctx, &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }},
			[]string{"serve", "--addr", "127.0.0.1:0", "--data", dir})
	}()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(errb.String(), "serving on http://127.0.0.1:"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not serving: %s", errb.String())
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in the log: %s", errb.String())
	}
}

func TestDisplayAddr(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"[::]:8000":      "localhost:8000",
		"0.0.0.0:8000":   "localhost:8000",
		":8000":          "localhost:8000",
		"127.0.0.1:9":    "127.0.0.1:9",
		"example.com:80": "example.com:80",
	} {
		if got := displayAddr(in); got != want {
			t.Errorf("displayAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestServeSaysWhatIsWrong: a data directory another ledger holds, and the
// AWS backend without credentials, each end with one line saying what to
// do (they ended with a lock error and an IMDS stack).
func TestServeSaysWhatIsWrong(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	held, err := pebblestore.Open(app.Layout(dir).Events)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	code, _, stderr := runCmd(ctx, "serve", "--data", dir, "--addr", "127.0.0.1:0")
	if code != 1 || !strings.Contains(stderr, dir+" is in use by another running ledger") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("serve on a held directory = %d %q; want one line saying it is in use", code, stderr)
	}

	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	code, _, stderr = runCmd(ctx, "serve", "--backend", "aws", "--addr", "127.0.0.1:0")
	if code != 2 || !strings.Contains(stderr, "no AWS credentials found: set AWS_PROFILE") || !strings.Contains(stderr, "AWS_ENDPOINT_URL") || strings.Contains(stderr, "IMDS") {
		t.Errorf("serve --backend aws without credentials = %d %q; want what to set", code, stderr)
	}
}
