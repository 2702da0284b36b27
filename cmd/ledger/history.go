package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/app"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/orders"
)

func init() {
	register(command{name: "history", summary: "print an order's audit history", run: runHistory})
}

func runHistory(ctx context.Context, e *env, args []string) error {
	fs := newFlags("history", e)
	data := fs.String("data", "./data", "data directory of a stopped embedded ledger")
	base := fs.String("url", "", "read through a running ledger's API instead, e.g. http://localhost:8000 (sends LEDGER_API_TOKEN as its bearer token when set)")
	asJSON := fs.Bool("json", false, "print the history as JSON (the body of GET /orders/{id}/events)")
	// Flags may come after the order ID: ledger history ID --json.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	rest := fs.Args()
	if id == "" && len(rest) > 0 {
		id, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if id == "" {
		return usagef("usage: ledger history ORDER_ID [--data DIR | --url URL] [--json]")
	}
	id = strings.ToUpper(id)
	if !domain.ValidULID(id) {
		return usagef("%q is not an order ID (a 26-character ULID)", id)
	}
	var h orders.History
	var err error
	if *base != "" {
		h, err = historyFromAPI(ctx, *base, id, e.getenv("LEDGER_API_TOKEN"))
	} else {
		h, err = historyFromDir(ctx, *data, id)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(h)
	}
	return printHistory(e.stdout, h)
}

// historyFromDir reads the event store of a data directory. The store is
// locked by a running server; then --url is the way.
func historyFromDir(ctx context.Context, dir, id string) (orders.History, error) {
	events := app.Layout(dir).Events
	if _, err := os.Stat(events); err != nil {
		return orders.History{}, fmt.Errorf("no event store in %s (use --data DIR, or --url for a running ledger)", dir)
	}
	store, err := pebblestore.Open(events)
	if err != nil {
		if isLocked(err) {
			return orders.History{}, fmt.Errorf("%s is in use by a running ledger: use --url http://localhost:8000 (or its address)", dir)
		}
		return orders.History{}, err
	}
	defer store.Close()
	svc, err := orders.New(orders.Config{Store: store})
	if err != nil {
		return orders.History{}, err
	}
	h, err := svc.History(ctx, id)
	if errors.Is(err, order.ErrNotFound) {
		return orders.History{}, fmt.Errorf("order %s not found in %s", id, dir)
	}
	return h, err
}

func isLocked(err error) bool {
	s := err.Error()
	return strings.Contains(s, "lock") || strings.Contains(s, "resource temporarily unavailable")
}

// historyFromAPI fetches GET /orders/{id}/events from a running ledger.
func historyFromAPI(ctx context.Context, base, id, token string) (orders.History, error) {
	c, err := api.NewClient(base, api.WithToken(token))
	if err != nil {
		return orders.History{}, usagef("--url must be an http:// or https:// URL, not %q", base)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return c.History(ctx, id)
}

// printHistory prints one line per event: version, time, type, the data as
// key=value pairs, and the request that caused it.
func printHistory(w io.Writer, h orders.History) error {
	fmt.Fprintf(w, "order %s: %d events\n\n", h.OrderID, len(h.Events))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tOCCURRED AT (UTC)\tTYPE\tDATA\tREQUEST ID")
	for _, ev := range h.Events {
		rid := ev.Metadata.RequestID
		if rid == "" {
			rid = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", ev.Version, ev.OccurredAt.UTC().Format("2006-01-02 15:04:05.000"), ev.Type, dataPairs(ev.Data), rid)
	}
	return tw.Flush()
}

// dataPairs renders a JSON object as sorted key=value pairs ("-" when empty).
func dataPairs(raw json.RawMessage) string {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := m[k]
		var s string
		switch v := v.(type) {
		case string:
			s = v
			if s == "" || strings.ContainsAny(s, " \t") {
				s = fmt.Sprintf("%q", s)
			}
		default:
			b, _ := json.Marshal(v)
			s = string(b)
		}
		parts[i] = k + "=" + s
	}
	return strings.Join(parts, " ")
}
