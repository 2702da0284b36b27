package main

import (
	"context"
	"strings"
	"testing"
)

// TestGroupHelp: a command group with -h lists its commands (it answered
// unknown command "dlq -h"); the group alone lists them as a usage error;
// an unknown member says so.
func TestGroupHelp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, h := range []string{"-h", "--help", "help"} {
		code, out, stderr := runCmd(ctx, "dlq", h)
		if code != 0 || !strings.Contains(out, "dlq list") || !strings.Contains(out, "dlq redrive") || stderr != "" {
			t.Errorf("ledger dlq %s = %d %q %q; want the group's commands on stdout", h, code, out, stderr)
		}
	}
	if code, _, stderr := runCmd(ctx, "dlq"); code != 2 || !strings.Contains(stderr, "dlq list") {
		t.Errorf("ledger dlq = %d %q; want usage listing its commands, exit 2", code, stderr)
	}
	if code, _, stderr := runCmd(ctx, "dlq", "purge"); code != 2 || !strings.Contains(stderr, `unknown command "dlq purge"`) || !strings.Contains(stderr, "dlq redrive") {
		t.Errorf("ledger dlq purge = %d %q; want unknown command and the group's commands", code, stderr)
	}
	// Every command answers -h with its flags and exit 0.
	for name := range commands {
		args := append(strings.Fields(name), "-h")
		if code, out, stderr := runCmd(ctx, args...); code != 0 || !strings.HasPrefix(out, "usage: ledger "+name+" ") {
			t.Errorf("ledger %s -h = %d %q %q; want its usage on stdout, exit 0", name, code, out, stderr)
		}
	}
}
