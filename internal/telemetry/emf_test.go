package telemetry_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/internal/telemetry"
)

// TestEMFStoreWritesEmbeddedMetrics: accepted appends become EMF lines
// that follow the specification (every dimension and metric named in _aws
// is a top-level member, the namespace is the dashboard's), one per event
// type with its count; a replay, a conflict and a failure write nothing.
func TestEMFStoreWritesEmbeddedMetrics(t *testing.T) {
	ps, err := pebblestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	var out bytes.Buffer
	s := telemetry.EMFStore(ps, &out, "dev")
	ctx := context.Background()
	ev := func(typ string) eventstore.Event {
		return eventstore.Event{EventID: typ + "-id", Type: typ, SchemaVersion: 1, Data: []byte(`{}`)}
	}
	if _, err := s.AppendIdempotent(ctx, "k1", "o1", 0, ev("OrderPlaced")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendIdempotent(ctx, "k1", "o1", 0, ev("OrderPlaced")); err != nil {
		t.Fatal(err)
	}
	var conflict *eventstore.ConflictError
	if _, err := s.Append(ctx, "o1", 0, ev("OrderPlaced")); !errors.As(err, &conflict) {
		t.Fatalf("want a conflict, got %v", err)
	}
	a, b := ev("AttemptFailed"), ev("AttemptFailed")
	b.EventID = "other-id"
	if _, err := s.Append(ctx, "o1", 1, a, b, ev("PaymentSucceeded")); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var doc map[string]any
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		meta, _ := doc["_aws"].(map[string]any)
		if ts, _ := meta["Timestamp"].(float64); ts < 1e12 {
			t.Fatalf("line %q: Timestamp %v is not epoch milliseconds", sc.Text(), meta["Timestamp"])
		}
		dirs, _ := meta["CloudWatchMetrics"].([]any)
		if len(dirs) != 1 {
			t.Fatalf("line %q: want one metric directive", sc.Text())
		}
		dir := dirs[0].(map[string]any)
		if dir["Namespace"] != telemetry.EMFNamespace {
			t.Fatalf("namespace %v", dir["Namespace"])
		}
		for _, set := range dir["Dimensions"].([]any) {
			for _, d := range set.([]any) {
				if _, ok := doc[d.(string)].(string); !ok {
					t.Fatalf("line %q: dimension %v is not a string member", sc.Text(), d)
				}
			}
		}
		for _, m := range dir["Metrics"].([]any) {
			name := m.(map[string]any)["Name"].(string)
			v, ok := doc[name].(float64)
			if !ok {
				t.Fatalf("line %q: metric %s has no numeric member", sc.Text(), name)
			}
			if doc["Environment"] != "dev" {
				t.Fatalf("line %q: Environment %v", sc.Text(), doc["Environment"])
			}
			got[doc["EventType"].(string)] += v
		}
	}
	want := map[string]float64{"OrderPlaced": 1, "AttemptFailed": 2, "PaymentSucceeded": 1}
	if len(got) != len(want) {
		t.Fatalf("metrics %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("metrics %v, want %v", got, want)
		}
	}
}
