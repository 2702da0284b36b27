package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
)

// writeOrder stores a failed order's events in dir/events and returns its ID.
func writeOrder(t *testing.T, dir string) (eventstore.Store, string) {
	t.Helper()
	store, err := pebblestore.Open(filepath.Join(dir, "events"))
	if err != nil {
		t.Fatal(err)
	}
	ids := domain.NewULIDSource(nil)
	at := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	id := ids(at)
	codec := orders.NewCodec()
	var envs []eventstore.Event
	for i, e := range []order.Event{
		order.Placed{CustomerName: "Test Customer", ProductName: "Test Product", Quantity: 1},
		order.PaymentFailed{Reason: "card declined"},
		order.Failed{Reason: "card declined", Step: "payment", Attempts: 1},
	} {
		env, err := codec.Encode(e, ids(at), at.Add(time.Duration(i)*time.Millisecond), eventstore.Metadata{RequestID: "req-7"})
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, env)
	}
	if _, err := store.Append(t.Context(), id, 0, envs...); err != nil {
		t.Fatal(err)
	}
	return store, id
}

func TestHistoryFromDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store, id := writeOrder(t, dir)
	// A running ledger holds the directory: the error says what to do.
	code, _, stderr := runWithEnv(t.Context(), nil, "history", id, "--data", dir)
	if code != 1 || !strings.Contains(stderr, "--url") {
		t.Errorf("locked dir: exit %d, %q", code, stderr)
	}
	if err := store.(interface{ Close() error }).Close(); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runWithEnv(t.Context(), nil, "history", strings.ToLower(id), "--data", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"order " + id + ": 3 events", "VERSION", "OrderPlaced", `customer_name="Test Customer"`, "PaymentFailed", `reason="card declined"`, "OrderFailed", "attempts=1", "req-7", "2026-11-25 13:00:00.002"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}

	code, stdout, _ = runWithEnv(t.Context(), nil, "history", "--json", "--data", dir, id)
	var h orders.History
	if code != 0 || json.Unmarshal([]byte(stdout), &h) != nil || len(h.Events) != 3 || h.Events[2].Type != order.TypeFailed {
		t.Errorf("--json: exit %d\n%s", code, stdout)
	}

	code, _, stderr = runWithEnv(t.Context(), nil, "history", "01KAW5Y8Z9ABCDEFGHJKMNPQRS", "--data", dir)
	if code != 1 || !strings.Contains(stderr, "not found") {
		t.Errorf("unknown order: exit %d, %q", code, stderr)
	}
	code, _, stderr = runWithEnv(t.Context(), nil, "history", id, "--data", filepath.Join(dir, "nothing"))
	if code != 1 || !strings.Contains(stderr, "no event store") {
		t.Errorf("missing dir: exit %d, %q", code, stderr)
	}
	for _, args := range [][]string{{"history"}, {"history", "nope"}, {"history", id, "extra"}, {"history", id, "--url", "ftp://x"}} {
		if code, _, stderr := runWithEnv(t.Context(), nil, args...); code != 2 {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
}

// emptyViews is a read model with nothing in it: history reads the log.
type emptyViews struct{}

func (emptyViews) Get(context.Context, string) (projections.View, error) {
	return projections.View{}, order.ErrNotFound
}
func (emptyViews) List(context.Context, projections.ListQuery) (projections.Page, error) {
	return projections.Page{}, nil
}

func TestHistoryFromAPI(t *testing.T) {
	t.Parallel()
	store, id := writeOrder(t, t.TempDir())
	defer store.(interface{ Close() error }).Close()
	srv := httptest.NewServer(api.NewRouter(api.Deps{Store: store, Views: emptyViews{}, Codec: orders.NewCodec(), Token: "tok"}))
	defer srv.Close()

	code, stdout, stderr := runWithEnv(t.Context(), map[string]string{"LEDGER_API_TOKEN": "tok"}, "history", id, "--url", srv.URL+"/")
	if code != 0 || !strings.Contains(stdout, "OrderFailed") {
		t.Errorf("exit %d: %s %s", code, stdout, stderr)
	}
	code, _, stderr = runWithEnv(t.Context(), nil, "history", id, "--url", srv.URL)
	if code != 1 || !strings.Contains(stderr, "401") {
		t.Errorf("without token: exit %d, %q", code, stderr)
	}
	code, _, stderr = runWithEnv(t.Context(), map[string]string{"LEDGER_API_TOKEN": "tok"}, "history", "01KAW5Y8Z9ABCDEFGHJKMNPQRS", "--url", srv.URL)
	if code != 1 || !strings.Contains(stderr, "order not found") {
		t.Errorf("unknown order: exit %d, %q", code, stderr)
	}
}

func TestHistoryHelpNamesTheToken(t *testing.T) {
	t.Parallel()
	code, out, _ := runCmd(context.Background(), "history", "--help")
	if code != 0 || !strings.Contains(out, "--url") && !strings.Contains(out, "-url") || !strings.Contains(out, "LEDGER_API_TOKEN") {
		t.Fatalf("ledger history --help = %d %q; want --url's use of LEDGER_API_TOKEN said", code, out)
	}
}
