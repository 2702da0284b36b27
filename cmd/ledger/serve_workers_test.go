package main

import (
	"testing"
)

// TestFlagGiven: the aws backend's own --workers default applies only when
// the flag was given neither on the command line nor through LEDGER_WORKERS.
func TestFlagGiven(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		vars map[string]string
		want bool
	}{
		{nil, nil, false},
		{[]string{"--workers", "8"}, nil, true},
		{[]string{"--workers=32"}, nil, true},
		{nil, map[string]string{"LEDGER_WORKERS": "8"}, true},
		{[]string{"--addr", ":1"}, map[string]string{"LEDGER_ADDR": ":2"}, false},
	}
	for _, c := range cases {
		e := &env{stdout: &lockedBuf{}, stderr: &lockedBuf{}, getenv: func(k string) string { return c.vars[k] }}
		fs := newFlags("serve", e)
		fs.Int("workers", 32, "")
		fs.String("addr", "", "")
		if err := parseFlags(fs, e, c.args); err != nil {
			t.Fatal(err)
		}
		if got := flagGiven(fs, e, "workers"); got != c.want {
			t.Errorf("%v %v: flagGiven = %v, want %v", c.args, c.vars, got, c.want)
		}
	}
}
