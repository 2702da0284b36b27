package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderledger/orderledger/app"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/internal/ledgertest"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/services"
	"github.com/orderledger/orderledger/services/servicehttp"
)

// runCmd runs the ledger in process and returns exit status, stdout, stderr.
func runCmd(ctx context.Context, args ...string) (int, string, string) {
	var out, errb syncBuffer
	code := run(ctx, &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}, args)
	return code, out.String(), errb.String()
}

// syncBuffer captures a command's output safely across goroutines.
type syncBuffer = ledgertest.SyncBuffer

func TestDLQListAndRedrive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := pebblestore.Open(filepath.Join(dir, "events"))
	if err != nil {
		t.Fatal(err)
	}
	codec := orders.NewCodec()
	ids := domain.NewULIDSource(nil)
	appendOrder := func(evs ...order.Event) eventstore.Event {
		now := time.Now().UTC()
		id := ids(now)
		var envs []eventstore.Event
		for _, e := range evs {
			env, err := codec.Encode(e, ids(now), now, eventstore.Metadata{})
			if err != nil {
				t.Fatal(err)
			}
			env.StreamID = id
			envs = append(envs, env)
		}
		if _, err := store.Append(ctx, id, 0, envs...); err != nil {
			t.Fatal(err)
		}
		return envs[0]
	}
	placed := order.Placed{CustomerName: "Ada", ProductName: "widget", Quantity: 1}
	finished := appendOrder(placed, order.Cancelled{Reason: "changed mind"}, order.PaymentVoided{Reason: "order cancelled", Attempts: 1})
	pending := appendOrder(placed)
	// Cancelled while it was being charged: the late charge is recorded,
	// its refund is still owed, so the order is not settled.
	owed := appendOrder(placed, order.Cancelled{}, order.PaymentSucceeded{PaymentID: "pay-1", Amount: 1000})
	store.Close()

	br, err := app.OpenBroker(filepath.Join(dir, "queue"), 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []eventstore.Event{finished, pending, owed} {
		body, _ := json.Marshal(env)
		if _, err := br.DLQ.Send(ctx, body, map[string]string{"event_type": env.Type, "order_id": env.StreamID}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := br.DLQ.Send(ctx, []byte("garbage"), nil); err != nil {
		t.Fatal(err)
	}
	br.Close()

	code, out, stderr := runCmd(ctx, "dlq", "list", "--data", dir)
	if code != 0 || !strings.Contains(out, "4 dead letter(s)") || !strings.Contains(out, pending.StreamID) {
		t.Fatalf("dlq list = %d %q %q", code, out, stderr)
	}
	code, out, stderr = runCmd(ctx, "dlq", "redrive", "--data", dir, "--dry-run")
	if code != 0 || !strings.Contains(out, "dry run: 2 redriven, 1 deleted (order settled), 1 kept (no such order)") || !strings.Contains(out, "Cancelled but its refund is owed") {
		t.Fatalf("dlq redrive --dry-run = %d %q %q", code, out, stderr)
	}
	code, out, stderr = runCmd(ctx, "dlq", "redrive", "--data", dir)
	if code != 0 || !strings.Contains(out, "2 redriven, 1 deleted (order settled), 1 kept (no such order)") {
		t.Fatalf("dlq redrive = %d %q %q", code, out, stderr)
	}

	br, err = app.OpenBroker(filepath.Join(dir, "queue"), 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	left, _ := br.DLQ.Peek(ctx, 0)
	if len(left) != 1 || string(left[0].Body) != "garbage" {
		t.Fatalf("DLQ after redrive holds %d messages, want only the garbage one", len(left))
	}
	msgs, err := br.Processing.Receive(ctx, 10, 0)
	redriven := map[string]bool{}
	for _, m := range msgs {
		redriven[m.Attributes["order_id"]] = m.ReceiveCount == 1
	}
	if err != nil || len(msgs) != 2 || !redriven[pending.StreamID] || !redriven[owed.StreamID] {
		t.Fatalf("processing queue after redrive = %+v %v, want the pending order's and the owed refund's messages, fresh", msgs, err)
	}
}

func TestDLQBadInput(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"dlq", "list", "--data", t.TempDir()},
		{"dlq", "redrive", "--data", t.TempDir()},
		{"dlq", "list", "extra"},
		{"dlq", "list", "--backend", "gcp"},
		{"dlq", "list", "--url", "http://127.0.0.1:1", "--data", t.TempDir()},
		{"dlq", "list", "--url", "http://127.0.0.1:1", "--limit", "-1"},
		{"dlq", "redrive", "--url", "http://127.0.0.1:1", "--backend", "aws"},
	} {
		if code, _, _ := runCmd(context.Background(), args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestSimulateServesOverHTTP(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		code, _, _ := runCmd(ctx, "simulate", "--addr", addr, "--sim-payment-decline-rate", "1")
		done <- code
	}()
	c, err := servicehttp.NewClient("http://"+addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var chargeErr error
	for range 200 { // until the server listens
		_, chargeErr = c.Charge(context.Background(), services.ChargeRequest{IdempotencyKey: "o:payment", OrderID: "o", ProductName: "p", Quantity: 1})
		if _, ok := services.IsRejected(chargeErr); ok {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if reason, ok := services.IsRejected(chargeErr); !ok || reason != "card declined" {
		t.Fatalf("charge against ledger simulate = %v, want declined", chargeErr)
	}
	resp, err := http.Get("http://" + addr + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /stats = %d", resp.StatusCode)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("simulate exited %d", code)
	}
	if code, _, _ := runCmd(context.Background(), "simulate", "--sim-payment-error-rate", "2"); code != 2 {
		t.Fatalf("simulate with an error rate of 2 exited %d, want 2", code)
	}
}
