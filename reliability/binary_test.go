package reliability

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the ledger binary, built once for the package by ledgerBinary.
var (
	binDir    string
	buildOnce sync.Once
	buildErr  error
	binary    string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ledger-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ledgerBinary builds cmd/ledger once (plain go build: the binary under
// test is the one that ships) and returns its path.
func ledgerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binary = filepath.Join(binDir, "ledger")
		out, err := exec.Command("go", "build", "-o", binary, "../cmd/ledger").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/ledger: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// syncBuffer is a bytes.Buffer safe for one writer and many readers.
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

var servingRE = regexp.MustCompile(`serving on (http://\S+)`)

// proc is one running `ledger serve`.
type proc struct {
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer
	done chan struct{}
	err  error // the exit status, once done is closed
}

// serve starts `ledger serve` on dir and a free loopback port and returns
// once it is serving.
func serve(t *testing.T, dir string, flags ...string) *proc {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dir}, flags...)
	cmd := exec.Command(ledgerBinary(t), args...)
	cmd.Env = append(os.Environ(), "LEDGER_API_TOKEN=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.logs, line)
			if m := servingRE.FindStringSubmatch(line); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		if keep := os.Getenv("RELIABILITY_LOG_DIR"); keep != "" {
			// Keep every server log for a post-mortem.
			name := filepath.Join(keep, fmt.Sprintf("%s-%d.log", strings.ReplaceAll(t.Name(), "/", "_"), cmd.Process.Pid))
			_ = os.MkdirAll(keep, 0o755)
			_ = os.WriteFile(name, []byte(p.logs.String()), 0o644)
		}
		if t.Failed() {
			t.Logf("server log (%s; RELIABILITY_LOG_DIR=DIR keeps them all):\n%s", dir, lastLines(p.logs.String(), 40))
		}
	})
	select {
	case p.url = <-urlc:
	case <-p.done:
		t.Fatalf("ledger serve exited before serving: %v\n%s", p.err, p.logs.String())
	case <-time.After(waitLimit):
		t.Fatalf("ledger serve did not start\n%s", p.logs.String())
	}
	return p
}

// signal sends sig (unless the process has exited) and waits for the exit.
func (p *proc) signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(waitLimit):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return p.err
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runLedger runs the binary to completion and returns its exit code,
// stdout and stderr.
func runLedger(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(ledgerBinary(t), args...)
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
