package reliability

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orderledger/orderledger/internal/ledgertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ledgertest.Cleanup()
	os.Exit(code)
}

// serve starts `ledger serve` on dir and a free loopback port and returns
// once it is serving. With RELIABILITY_LOG_DIR set, every server's log is
// kept there for a post-mortem.
func serve(t *testing.T, dir string, flags ...string) *ledgertest.Proc {
	t.Helper()
	p := ledgertest.Serve(t, dir, flags...)
	if keep := os.Getenv("RELIABILITY_LOG_DIR"); keep != "" {
		t.Cleanup(func() {
			name := filepath.Join(keep, fmt.Sprintf("%s-%d.log", strings.ReplaceAll(t.Name(), "/", "_"), p.Pid()))
			_ = os.MkdirAll(keep, 0o755)
			_ = os.WriteFile(name, []byte(p.Logs.String()), 0o644)
		})
	}
	return p
}

// runLedger runs the binary to completion and returns its exit code,
// stdout and stderr.
func runLedger(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(ledgertest.Binary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("ledger %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return code, stdout.String(), stderr.String()
}

// messageLines returns stderr's lines that are not JSON log records.
func messageLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if l != "" && !strings.HasPrefix(l, "{") {
			out = append(out, l)
		}
	}
	return out
}
