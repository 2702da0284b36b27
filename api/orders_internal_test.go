package api

import "testing"

// TestParseIfMatchLines: several If-Match lines are one list (RFC 9110
// 5.3), so a tag on the second line matches too.
func TestParseIfMatchLines(t *testing.T) {
	t.Parallel()
	m, err := parseIfMatch([]string{`"2"`, `W/"3", "5"`})
	if err != nil {
		t.Fatal(err)
	}
	if !m.present || m.any || len(m.tags) != 3 || !m.matches(5) || !m.matches(2) || m.matches(3) || m.expected() != 2 {
		t.Fatalf("parsed %+v", m)
	}
	if m, err := parseIfMatch(nil); err != nil || m.present || !m.matches(7) {
		t.Fatalf("no header: %+v, %v", m, err)
	}
}
