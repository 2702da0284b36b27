package awstest

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// MotoServerEnv names the variable holding the path of the moto_server
// executable that StartMoto runs; without it StartMoto uses the one
// scripts/moto.sh installs, .cache/moto/bin/moto_server at the module root.
const MotoServerEnv = "LEDGER_TEST_MOTO_SERVER"

// Moto is an emulator owned by one test, for tests that stop and start it
// (outages). Tests that only need an emulator share the one at Endpoint.
type Moto struct {
	t    testing.TB
	bin  string
	port int

	cmd    *exec.Cmd     // nil while stopped
	exited chan struct{} // closed when cmd has exited
}

// StartMoto starts a dedicated moto server on a free loopback port and
// stops it when the test ends. It skips the test as Endpoint does (the
// shared emulator's variable says AWS tests are to run); when they are and
// no moto_server is found, it skips saying where it looked, or fails under
// CI=true.
func StartMoto(t testing.TB) *Moto {
	t.Helper()
	Endpoint(t)
	bin := os.Getenv(MotoServerEnv)
	if bin == "" {
		if root, ok := moduleRoot(); ok {
			bin = filepath.Join(root, ".cache", "moto", "bin", "moto_server")
		}
	}
	if st, err := os.Stat(bin); bin == "" || err != nil || st.IsDir() {
		msg := "no moto_server at " + strconv.Quote(bin) + ": set " + MotoServerEnv + " to its path, or run scripts/moto.sh start once to install it"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	m := &Moto{t: t, bin: bin, port: port}
	t.Cleanup(m.Stop)
	m.Start()
	return m
}

// Endpoint returns the server's endpoint URL; it stays the same across
// Stop and Start.
func (m *Moto) Endpoint() string { return "http://127.0.0.1:" + strconv.Itoa(m.port) }

// Start starts the server (again) on its port and waits until it answers.
// A restarted moto is empty: it keeps no state across a stop.
func (m *Moto) Start() {
	m.t.Helper()
	if m.cmd != nil {
		m.t.Fatal("awstest: moto is already running")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.Command(m.bin, "-H", "127.0.0.1", "-p", strconv.Itoa(m.port))
		if err := cmd.Start(); err != nil {
			m.t.Fatalf("awstest: start moto: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		if m.waitReady(exited, deadline) {
			m.cmd, m.exited = cmd, exited
			return
		}
		_ = cmd.Process.Kill()
		<-exited
		if time.Now().After(deadline) {
			m.t.Fatalf("awstest: moto on port %d not ready after 30s", m.port)
		}
		// The previous server's socket may hold the port for a moment.
		time.Sleep(200 * time.Millisecond)
	}
}

// waitReady polls until the server answers (true), or exits or the
// deadline passes (false).
func (m *Moto) waitReady(exited <-chan struct{}, deadline time.Time) bool {
	for time.Now().Before(deadline) {
		if ready(m.Endpoint()) {
			return true
		}
		select {
		case <-exited:
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false
}

// Pause freezes the server (SIGSTOP): connections are still accepted by
// the kernel but never answered, as with a network partition. Resume ends it.
func (m *Moto) Pause() { m.signal(syscall.SIGSTOP) }

// Resume lets a paused server run again (SIGCONT), its state intact.
func (m *Moto) Resume() { m.signal(syscall.SIGCONT) }

func (m *Moto) signal(sig os.Signal) {
	m.t.Helper()
	if m.cmd == nil {
		m.t.Fatal("awstest: moto is not running")
	}
	if err := m.cmd.Process.Signal(sig); err != nil {
		m.t.Fatalf("awstest: signal moto: %v", err)
	}
}

// Stop kills the server, as an outage would, and waits until it is gone.
// Stopping a stopped server does nothing.
func (m *Moto) Stop() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
	m.cmd, m.exited = nil, nil
}

func ready(endpoint string) bool {
	c := http.Client{Timeout: time.Second}
	res, err := c.Get(endpoint + "/moto-api/")
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// moduleRoot finds the directory of go.mod above the working directory
// (a test runs in its package's directory).
func moduleRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}
