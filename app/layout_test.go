package app

import (
	"path/filepath"
	"testing"
)

// TestLayoutIsTheOnDiskLayout pins the directory names: data directories
// written by earlier versions must still open.
func TestLayoutIsTheOnDiskLayout(t *testing.T) {
	t.Parallel()
	got := Layout(filepath.Join("data", "dir"))
	want := Dirs{
		Events: filepath.Join("data", "dir", "events"),
		Views:  filepath.Join("data", "dir", "views"),
		Queue:  filepath.Join("data", "dir", "queue"),
	}
	if got != want {
		t.Fatalf("Layout = %+v, want %+v", got, want)
	}
}
