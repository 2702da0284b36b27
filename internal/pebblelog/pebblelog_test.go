package pebblelog_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/internal/pebblelog"
)

func TestPrefixEnd(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want []byte }{
		{[]byte("q/a/"), []byte("q/a0")},
		{[]byte{'a', 0xFF}, []byte{'b'}},
		{[]byte{0xFF, 0xFF}, nil},
		{nil, nil},
	} {
		in := bytes.Clone(c.in)
		if got := pebblelog.PrefixEnd(in); !bytes.Equal(got, c.want) {
			t.Errorf("PrefixEnd(%q) = %q, want %q", c.in, got, c.want)
		}
		if !bytes.Equal(in, c.in) {
			t.Errorf("PrefixEnd changed its argument to %q", in)
		}
	}
}

func TestStorageErrorIsUnavailable(t *testing.T) {
	t.Parallel()
	cause := errors.New("disk full")
	err := error(&pebblelog.StorageError{Pkg: "eventstore/pebblestore", Op: "append", Err: cause})
	if got, want := err.Error(), "eventstore/pebblestore: append: disk full"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, cause) {
		t.Error("the engine's error does not unwrap")
	}
	if got := domain.CodeOf(err); got != domain.Unavailable {
		t.Errorf("domain code %v, want Unavailable", got)
	}
}

func TestLoggerLevels(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := pebblelog.Logger{Prefix: "test/db", Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l.Infof("opened %d tables", 3)
	l.Errorf("background error: %s", "disk full")
	out := buf.String()
	for _, want := range []string{
		`level=DEBUG msg="test/db: pebble: opened 3 tables"`,
		`level=ERROR msg="test/db: pebble: background error: disk full"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	// At the default level, informational lines are dropped.
	buf.Reset()
	l.Log = slog.New(slog.NewTextHandler(&buf, nil))
	l.Infof("compacted")
	if buf.Len() != 0 {
		t.Errorf("an informational line at the default level: %s", buf.String())
	}
}

const fatalChildEnv = "PEBBLELOG_FATAL_CHILD"

// TestFatalfChild is the child process of TestFatalfExits: it calls Fatalf
// and reports if Fatalf returned. It does nothing in a normal test run.
func TestFatalfChild(t *testing.T) {
	if os.Getenv(fatalChildEnv) == "" {
		t.Skip("child process of TestFatalfExits only")
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	pebblelog.Logger{Prefix: "test/db"}.Fatalf("MANIFEST sync failed: %s", "injected")
	fmt.Println("Fatalf returned")
	os.Exit(0)
}

// TestFatalfExits checks the fatal-error policy: Fatalf logs at error level
// through slog (the default logger when Log is nil) and exits with status
// 1, never returning to its caller.
func TestFatalfExits(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFatalfChild$")
	cmd.Env = append(os.Environ(), fatalChildEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("child: %v, want exit status 1\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if strings.Contains(stdout.String(), "Fatalf returned") {
		t.Error("Fatalf returned to its caller")
	}
	want := `level=ERROR msg="test/db: pebble: fatal: MANIFEST sync failed: injected"`
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %s:\n%s", want, stderr.String())
	}
}
