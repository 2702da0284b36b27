package pebblelog_test

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/internal/pebblelog"
)

func TestCheckSpaceRoomy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A directory not created yet is judged by its nearest existing parent.
	for _, d := range []string{dir, filepath.Join(dir, "not", "yet")} {
		if err := pebblelog.CheckSpace("test/db", "append", d); err != nil {
			t.Errorf("CheckSpace(%s) = %v on a roomy disk", d, err)
		}
	}
}

// TestCheckSpaceFull mounts a tiny tmpfs (skipped where mounting is not
// permitted) and fills it.
func TestCheckSpaceFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs here (needs root and mount permission): %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	err := pebblelog.CheckSpace("test/db", "append", filepath.Join(dir, "events"))
	if !errors.Is(err, syscall.ENOSPC) || domain.CodeOf(err) != domain.Unavailable {
		t.Fatalf("CheckSpace on a 512 KiB filesystem: %v, want ENOSPC and Unavailable", err)
	}
	if !strings.HasPrefix(err.Error(), "test/db: append: no space left on device") {
		t.Errorf("error text %q", err)
	}
}
