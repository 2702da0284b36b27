package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/orderledger/orderledger/app"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/messaging/pebblequeue"
	"github.com/orderledger/orderledger/orders"
)

func init() {
	register(command{name: "dlq list", summary: "list the dead-letter queue (embedded; ledger serve stopped)", run: runDLQList})
	register(command{name: "dlq redrive", summary: "resend dead letters of unfinished orders, drop those of finished ones", run: runDLQRedrive})
}

// dlqFlags parses --data (and --json) and checks that DIR holds a runtime.
func dlqFlags(name string, e *env, args []string, dryRun *bool) (dir string, asJSON bool, err error) {
	fs := newFlags(name, e)
	fs.StringVar(&dir, "data", "./data", "data directory of the embedded runtime")
	fs.BoolVar(&asJSON, "json", false, "print JSON lines instead of a table")
	if dryRun != nil {
		fs.BoolVar(dryRun, "dry-run", false, "say what would be done, change nothing")
	}
	if err := parseFlags(fs, e, args); err != nil {
		return "", false, err
	}
	if fs.NArg() > 0 {
		return "", false, usagef("unexpected argument %q", fs.Arg(0))
	}
	if st, err := os.Stat(app.Layout(dir).Queue); err != nil || !st.IsDir() {
		return "", false, usagef("--data %s holds no queue directory (no embedded runtime ran there)", dir)
	}
	return dir, asJSON, nil
}

func openDLQBroker(dir string) (*app.Broker, error) {
	br, err := app.OpenBroker(app.Layout(dir).Queue, 0, 0, false)
	if err != nil {
		return nil, fmt.Errorf("%w (is ledger serve running on this directory?)", err)
	}
	return br, nil
}

// deadLetter is one line of `dlq list`.
type deadLetter struct {
	ID           string    `json:"id"`
	OrderID      string    `json:"order_id,omitempty"`
	EventType    string    `json:"event_type,omitempty"`
	From         string    `json:"from"`
	ReceiveCount int       `json:"receive_count"`
	SentAt       time.Time `json:"sent_at"`
	Body         string    `json:"body"`
}

func describe(m pebblequeue.Stored) deadLetter {
	d := deadLetter{ID: m.ID, From: m.DeadLetteredFrom, ReceiveCount: m.DeadReceiveCount, SentAt: m.SentAt, Body: string(m.Body)}
	var env eventstore.Event
	if json.Unmarshal(m.Body, &env) == nil {
		d.OrderID, d.EventType = env.StreamID, env.Type
	}
	if d.OrderID == "" {
		d.OrderID = m.Attributes["order_id"]
	}
	return d
}

func runDLQList(ctx context.Context, e *env, args []string) error {
	dir, asJSON, err := dlqFlags("dlq list", e, args, nil)
	if err != nil {
		return err
	}
	br, err := openDLQBroker(dir)
	if err != nil {
		return err
	}
	defer br.Close()
	msgs, err := br.DLQ.Peek(ctx, 0)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, m := range msgs {
			if err := enc.Encode(describe(m)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tORDER\tEVENT\tFROM\tRECEIVES\tSENT")
	for _, m := range msgs {
		d := describe(m)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", d.ID, orDash(d.OrderID), orDash(d.EventType), d.From, d.ReceiveCount, d.SentAt.Format(time.RFC3339))
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%d dead letter(s)\n", len(msgs))
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runDLQRedrive moves every dead letter whose order exists and is not
// settled (still pending, or ended with a refund owed) back to the
// processing queue, drops those whose order is settled, and keeps (and reports) those that name no order: resending
// them would only dead-letter them again.
func runDLQRedrive(ctx context.Context, e *env, args []string) error {
	var dryRun bool
	dir, asJSON, err := dlqFlags("dlq redrive", e, args, &dryRun)
	if err != nil {
		return err
	}
	if st, err := os.Stat(app.Layout(dir).Events); err != nil || !st.IsDir() {
		return usagef("--data %s holds no events directory", dir)
	}
	br, err := openDLQBroker(dir)
	if err != nil {
		return err
	}
	defer br.Close()
	store, err := pebblestore.Open(app.Layout(dir).Events)
	if err != nil {
		return fmt.Errorf("open event store: %w (is ledger serve running on this directory?)", err)
	}
	defer store.Close()
	svc, err := orders.New(orders.Config{Store: store})
	if err != nil {
		return err
	}
	msgs, err := br.DLQ.Peek(ctx, 0)
	if err != nil {
		return err
	}
	type outcome struct {
		ID      string `json:"id"`
		OrderID string `json:"order_id,omitempty"`
		Action  string `json:"action"` // redriven, dropped, kept
		Reason  string `json:"reason"`
	}
	var results []outcome
	counts := map[string]int{}
	for _, m := range msgs {
		d := describe(m)
		o := outcome{ID: m.ID, OrderID: d.OrderID}
		switch ord, err := deadLetterOrder(ctx, svc, d); {
		case err != nil:
			o.Action, o.Reason = "kept", err.Error()
		case ord.Settled():
			o.Action, o.Reason = "dropped", "order is already "+string(ord.Status)
		case ord.Status.Terminal():
			o.Action, o.Reason = "redriven", "order is "+string(ord.Status)+" but its "+string(ord.NextStep())+" is owed"
		default:
			o.Action, o.Reason = "redriven", "order is "+string(ord.Status)
		}
		if !dryRun {
			switch o.Action {
			case "dropped":
				err = br.DLQ.Remove(ctx, m.ID)
			case "redriven":
				_, err = br.DLQ.MoveTo(ctx, m.ID, br.Processing)
			}
			if err != nil {
				return fmt.Errorf("%s %s: %w", o.Action, m.ID, err)
			}
		}
		counts[o.Action]++
		results = append(results, o)
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, r := range results {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tORDER\tACTION\tREASON")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, orDash(r.OrderID), r.Action, r.Reason)
	}
	tw.Flush()
	prefix := ""
	if dryRun {
		prefix = "dry run: "
	}
	fmt.Fprintf(e.stdout, "%s%d redriven, %d dropped (order finished), %d kept (no such order)\n",
		prefix, counts["redriven"], counts["dropped"], counts["kept"])
	return nil
}

// deadLetterOrder returns the order a dead letter names, or an error
// saying why it names none.
func deadLetterOrder(ctx context.Context, svc *orders.Service, d deadLetter) (order.Order, error) {
	if d.EventType != order.TypePlaced {
		return order.Order{}, fmt.Errorf("not an OrderPlaced message")
	}
	if !domain.ValidULID(d.OrderID) {
		return order.Order{}, fmt.Errorf("invalid order ID %q", d.OrderID)
	}
	st, err := svc.Load(ctx, d.OrderID)
	if err != nil {
		return order.Order{}, err
	}
	o := st.Order
	if !o.Exists() {
		return order.Order{}, fmt.Errorf("unknown order")
	}
	return o, nil
}
