package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestBenchE2ERejectsBadFlags(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		vars map[string]string
		want string
	}{
		{[]string{"bench", "e2e", "--orders", "0"}, nil, "--orders"},
		{[]string{"bench", "e2e", "--clients", "-2"}, nil, "--clients"},
		{[]string{"bench", "e2e"}, map[string]string{"LEDGER_WORKERS": "0"}, "--workers"},
		{[]string{"bench", "e2e", "--warmup", "-1"}, nil, "--warmup"},
		{[]string{"bench", "e2e", "--url", "localhost:8000"}, nil, "--url"},
		{[]string{"bench", "e2e", "--pid", "12"}, nil, "--pid needs --url"},
		{[]string{"bench", "e2e", "--sweep", "--sweep-clients", "1,x"}, nil, "--sweep-clients"},
		{[]string{"bench", "e2e", "extra"}, nil, "unexpected argument"},
	}
	for _, c := range cases {
		code, _, stderr := runWithEnv(t.Context(), c.vars, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v %v: exit %d, stderr %q (want %q)", c.args, c.vars, code, stderr, c.want)
		}
	}
}

// TestBenchE2ERuns runs a tiny benchmark in process: a table, then one JSON
// object on the last line; no progress line when stderr is not a terminal.
func TestBenchE2ERuns(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runWithEnv(t.Context(), map[string]string{"LEDGER_DIR": t.TempDir()},
		"bench", "e2e", "--orders", "20", "--clients", "2", "--warmup", "2", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr %q, want nothing off a terminal", stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if !strings.HasPrefix(lines[0], "end to end: in-process") {
		t.Errorf("table:\n%s", stdout)
	}
	var obj struct {
		OrdersPerS float64        `json:"orders_per_s"`
		PostP99Ms  float64        `json:"post_p99_ms"`
		Clients    int            `json:"clients"`
		Statuses   map[string]int `json:"statuses"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &obj); err != nil {
		t.Fatalf("last line is not JSON: %v\n%s", err, stdout)
	}
	if obj.OrdersPerS <= 0 || obj.PostP99Ms <= 0 || obj.Clients != 2 || obj.Statuses["Completed"] != 20 {
		t.Errorf("JSON %+v", obj)
	}
}

func TestBenchMemoryFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"bench", "memory", "--events", "0"},
		{"bench", "memory", "--events", "10,abc"},
		{"bench", "memory", "--reads", "0"},
		{"bench", "memory", "extra"},
	} {
		if code, _, stderr := runWithEnv(t.Context(), nil, args...); code != 2 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
	code, stdout, stderr := runWithEnv(t.Context(), map[string]string{"LEDGER_DIR": t.TempDir()},
		"bench", "memory", "--events", "500", "--reads", "100", "--json")
	if code != 0 || !strings.Contains(stdout, `"runs":[{"events":`) {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
