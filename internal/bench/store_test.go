package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/orderledger/orderledger/internal/bench"
)

// TestStore runs the store benchmark on a few orders and checks the report's
// shape (not its speed).
func TestStore(t *testing.T) {
	t.Parallel()
	r, err := bench.Store(context.Background(), bench.StoreOptions{Orders: 40, Writers: 3, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := r.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("last line is not JSON: %q: %v", lines[len(lines)-1], err)
	}
	for _, key := range []string{"append_1w_events_per_s", "append_8w_events_per_s", "load_events_per_s", "replay_events_per_s", "disk_fsyncs_per_s", "disk_fsyncs_after_per_s", "disk_prewritten_fdatasyncs_per_s"} {
		v, ok := got[key].(float64)
		if !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive rate", key, got[key])
		}
	}
	// One writer's appends are one group each; three writers' share some.
	if g := got["append_1w_events_per_group"]; g != float64(1) {
		t.Errorf("append_1w_events_per_group = %v, want 1", g)
	}
	if g, ok := got["append_8w_events_per_group"].(float64); !ok || g < 1 || g > 3 {
		t.Errorf("append_8w_events_per_group = %v, want 1..3 (3 writers)", got["append_8w_events_per_group"])
	}
	for _, key := range []string{"append_1w_share_of_disk", "append_8w_share_of_disk"} {
		if v, ok := got[key].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive share", key, got[key])
		}
	}
	w1, _ := r.Figure("append_1w_events_per_s")
	disk, _ := r.Figure("disk_fsyncs_per_s")
	if want := math.Round(100*w1.PerSecond()/disk.PerSecond()) / 100; got["append_1w_share_of_disk"] != want {
		t.Errorf("append_1w_share_of_disk = %v, want %v", got["append_1w_share_of_disk"], want)
	}
	if f, ok := r.Figure("load_events_per_s"); !ok || f.Count != 2*40*4 {
		t.Errorf("load figure %+v, want %d events", f, 2*40*4)
	}
	if !strings.Contains(out.String(), "replay the whole feed") {
		t.Errorf("table lacks the replay row:\n%s", out.String())
	}
}

func TestReportJSONAndTable(t *testing.T) {
	t.Parallel()
	r := bench.Report{Title: "demo", Params: map[string]any{"orders": 3}}
	r.Add("x_per_s", "x", 1500, 500_000_000) // 1,500 in 0.5 s
	var out bytes.Buffer
	if err := r.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "3,000") || !strings.Contains(out.String(), "orders: 3") {
		t.Fatalf("table:\n%s", out.String())
	}
	j := r.JSON()
	if j["x_per_s"] != int64(3000) || j["orders"] != 3 {
		t.Fatalf("json %v", j)
	}
}
