package main

import (
	"strings"
	"testing"
)

func TestReportCountsAndSkipReasons(t *testing.T) {
	t.Parallel()
	in := strings.Join([]string{
		`{"Action":"run","Package":"p/a","Test":"TestOne"}`,
		`{"Action":"output","Package":"p/a","Test":"TestOne","Output":"=== RUN   TestOne\n"}`,
		`{"Action":"pass","Package":"p/a","Test":"TestOne"}`,
		`{"Action":"output","Package":"p/a","Test":"TestAWS","Output":"    aws_test.go:12: LEDGER_TEST_AWS_ENDPOINT is not set\n"}`,
		`{"Action":"output","Package":"p/a","Test":"TestAWS","Output":"--- SKIP: TestAWS (0.00s)\n"}`,
		`{"Action":"skip","Package":"p/a","Test":"TestAWS"}`,
		`{"Action":"pass","Package":"p/a"}`,
		`{"Action":"fail","Package":"p/b","Test":"TestBad"}`,
		`{"Action":"fail","Package":"p/b"}`,
		`# p/c [build failed]`,
	}, "\n")
	var out strings.Builder
	if code := run(strings.NewReader(in), &out); code != 1 {
		t.Errorf("exit %d with a failing test, want 1", code)
	}
	got := strings.Join(strings.Fields(out.String()), " ")
	for _, want := range []string{
		"=== RUN TestOne", "# p/c [build failed]",
		"1 0 1 p/a", "0 1 0 p/b", "1 1 1 total",
		"1 skipped, with their reasons:", "p/a TestAWS: aws_test.go:12: LEDGER_TEST_AWS_ENDPOINT is not set",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	out.Reset()
	if code := run(strings.NewReader(`{"Action":"pass","Package":"p/a","Test":"T"}`), &out); code != 0 {
		t.Errorf("exit %d when everything passed, want 0", code)
	}
}
