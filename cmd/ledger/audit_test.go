package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orderledger/orderledger/eventstore"
)

// TestAuditCommands: on a stopped embedded ledger, verify exits 0 and
// says how much it checked, digest writes a digest that verify checks
// against, migrate has nothing to do on data written with the chain; bad
// invocations exit 2 with one line.
func TestAuditCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store, id := writeOrder(t, dir)
	if code, _, stderr := runWithEnv(t.Context(), nil, "audit", "verify", "--data", dir); code != 1 || !strings.Contains(stderr, "in use by a running ledger") {
		t.Errorf("locked dir: exit %d, %q", code, stderr)
	}
	if err := store.(interface{ Close() error }).Close(); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runWithEnv(t.Context(), nil, "audit", "verify", "--data", dir)
	if code != 0 || !strings.Contains(stdout, "ok: 1 orders, 3 events: every chain holds") {
		t.Fatalf("verify: exit %d\n%s%s", code, stdout, stderr)
	}
	out := filepath.Join(t.TempDir(), "digest.json")
	if code, stdout, stderr := runWithEnv(t.Context(), nil, "audit", "digest", "--data", dir, "--out", out); code != 0 || !strings.Contains(stdout, "digest of 1 orders, 3 events") {
		t.Fatalf("digest: exit %d\n%s%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var d eventstore.Digest
	if err := json.Unmarshal(b, &d); err != nil || len(d.Heads) != 1 || d.Heads[0].StreamID != id || d.Feed == nil || d.Feed.Position != 3 {
		t.Fatalf("digest file: %v\n%s", err, b)
	}
	if code, stdout, stderr := runWithEnv(t.Context(), nil, "audit", "verify", "--data", dir, "--digest", out); code != 0 || !strings.Contains(stdout, "checked against the digest") {
		t.Fatalf("verify --digest: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, _ := runWithEnv(t.Context(), nil, "audit", "digest", "--data", dir); code != 0 || !strings.Contains(stdout, `"format": "orderledger.digest.v1"`) {
		t.Fatalf("digest to stdout: exit %d\n%s", code, stdout)
	}
	if code, stdout, stderr := runWithEnv(t.Context(), nil, "audit", "migrate", "--data", dir); code != 0 || !strings.Contains(stdout, "nothing to migrate: every event of 1 orders has its hash") {
		t.Fatalf("migrate: exit %d\n%s%s", code, stdout, stderr)
	}

	// A digest whose heads were edited is refused before anything is read.
	edited := strings.Replace(string(b), `"version": 3`, `"version": 4`, 1)
	bad := filepath.Join(t.TempDir(), "edited.json")
	if err := os.WriteFile(bad, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"audit", "verify", "--data", dir, "--digest", bad},
		{"audit", "verify", "--data", dir, "--digest", filepath.Join(dir, "missing.json")},
		{"audit", "verify", "--backend", "gcp"},
		{"audit", "verify", "--data", t.TempDir()},
		{"audit", "verify", "--data", dir, "--workers", "0"},
		{"audit", "digest", "--data", dir, "extra"},
	} {
		code, _, stderr := runWithEnv(t.Context(), nil, args...)
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", args, code, stderr)
		}
	}
}
