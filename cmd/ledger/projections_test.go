package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/internal/ordergen"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/pebbleviews"
	"github.com/orderledger/orderledger/projections/readmodeltest"
)

func TestProjectionsRebuild(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	es, err := pebblestore.Open(filepath.Join(data, "events"))
	if err != nil {
		t.Fatal(err)
	}
	codec := orders.NewCodec()
	streams := ordergen.Orders(rand.New(rand.NewPCG(1, 2)), codec, 50, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	for _, s := range streams {
		if _, err := es.Append(ctx, s[0].StreamID, 0, s...); err != nil {
			t.Fatal(err)
		}
	}
	if err := es.Close(); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCmd(ctx, "projections", "rebuild", "--data", data)
	if code != 0 || !strings.Contains(out, "rebuilt the read model: generation 2") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	rm, err := pebbleviews.Open(filepath.Join(data, "views"))
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	for _, s := range streams {
		want, _ := projections.Fold(codec, s)
		got, err := rm.Get(ctx, s[0].StreamID)
		if err != nil || readmodeltest.Diff(got, want) != "" {
			t.Fatalf("order %s after rebuild: %+v, %v", s[0].StreamID, got, err)
		}
	}

	if code, _, _ := runCmd(ctx, "projections", "rebuild", "--data", data, "extra"); code != 2 {
		t.Errorf("an extra argument: exit %d, want 2", code)
	}
	if code, _, errOut := runCmd(ctx, "projections", "rebuild", "--data", t.TempDir()); code != 1 || !strings.Contains(errOut, "no event store") {
		t.Errorf("no event store: exit %d, stderr %q", code, errOut)
	}
}

func TestBenchRebuildJSON(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCmd(context.Background(), "bench", "rebuild", "--events", "3000", "--dir", t.TempDir(), "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	if rate, _ := got["rebuild_events_per_s"].(float64); rate <= 0 {
		t.Errorf("rebuild_events_per_s = %v", got["rebuild_events_per_s"])
	}
	if n, _ := got["events"].(float64); n < 3000 {
		t.Errorf("events = %v, want at least 3000", got["events"])
	}
	if code, _, _ := runCmd(context.Background(), "bench", "rebuild", "--events", "0"); code != 2 {
		t.Errorf("--events 0: exit %d, want 2", code)
	}
}

// TestRebuildProgressEndsOnTheSummaryRate: the progress display's last
// figures are the rebuild's result, the same rate the summary line prints
// (the bar used to count its own rate from its first update).
func TestRebuildProgressEndsOnTheSummaryRate(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	p := newRebuildProgress(&out, "rebuild")
	p.update(projections.Progress{Done: 10, Total: 1000, Elapsed: time.Second})
	p.cur.Done, p.cur.Elapsed = 1000, 4*time.Second
	p.finish()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "1000/1000 events") || !strings.Contains(last, " 250 events/s") {
		t.Fatalf("last progress line %q, want 1000 events at 250 events/s (1000 in 4 s, as the summary says)", last)
	}
}
