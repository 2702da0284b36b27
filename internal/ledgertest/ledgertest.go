// Package ledgertest runs the real ledger binary in tests: it builds
// cmd/ledger once per test process and starts `ledger serve` on a data
// directory and a free loopback port, capturing its log. The end-to-end,
// reliability and CLI tests share it.
package ledgertest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// WaitLimit bounds every wait for the server: a guard against a hung test,
// not a performance assertion.
const WaitLimit = 90 * time.Second

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// Binary builds cmd/ledger once per test process (a plain go build: the
// binary under test is the one that ships) and returns its path. The file
// lives in the system temp directory until Cleanup removes it.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ledgertest-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "ledger")
		out, err := exec.Command("go", "build", "-o", binary, moduleRoot()+"/cmd/ledger").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/ledger: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// Cleanup removes the built binary; call it from TestMain after m.Run.
func Cleanup() {
	if binary != "" {
		os.RemoveAll(filepath.Dir(binary))
	}
}

// moduleRoot is the repository root, found from this file's location.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// SyncBuffer is a bytes.Buffer safe for one writer and many readers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var servingRE = regexp.MustCompile(`serving on (http://\S+)`)

// Proc is one running `ledger serve`.
type Proc struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:41234.
	URL string
	// Logs is everything the server wrote to stderr so far.
	Logs *SyncBuffer
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit status, once done is closed
}

// Serve starts `ledger serve` on dir and a free loopback port with extra
// flags and returns once it is serving. The test's cleanup kills it; on a
// failed test the end of its log is printed.
func Serve(t testing.TB, dir string, flags ...string) *Proc {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dir}, flags...)
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = append(os.Environ(), "LEDGER_API_TOKEN=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &Proc{cmd: cmd, Logs: &SyncBuffer{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.Logs, line)
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
		p.Signal(os.Kill)
		if t.Failed() {
			t.Logf("server log (%s):\n%s", dir, LastLines(p.Logs.String(), 60))
		}
	})
	select {
	case p.URL = <-urlc:
	case <-p.done:
		t.Fatalf("ledger serve exited before serving: %v\n%s", p.err, p.Logs.String())
	case <-time.After(WaitLimit):
		t.Fatalf("ledger serve did not start\n%s", p.Logs.String())
	}
	p.URL = strings.Replace(p.URL, "0.0.0.0", "127.0.0.1", 1)
	return p
}

// Pid is the server's process ID.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig (unless the process has exited) and waits for the exit,
// returning its status; a process that outlives WaitLimit is killed.
func (p *Proc) Signal(sig os.Signal) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(WaitLimit):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return p.err
}

// LastLines returns the last n lines of s.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
