package api_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/app"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
)

// TestDeadLetterEndpoints runs the dead-letter routes over a real
// embedded broker: a dead letter of a pending order is redriven, one of a
// cancelled order deleted, one naming no order kept; a dry run and a
// listing change nothing.
func TestDeadLetterEndpoints(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	br, err := app.OpenBroker(filepath.Join(t.TempDir(), "queue"), 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { br.Close() })

	unwired := newHarness(t)
	unwired.want(unwired.do("GET", "/admin/dlq", ""), http.StatusServiceUnavailable, "unavailable")
	unwired.want(unwired.do("POST", "/admin/dlq/redrive", ""), http.StatusServiceUnavailable, "unavailable")

	h := newHarness(t, func(d *api.Deps) { d.DeadLetters = br.DeadLetters() })
	pending, cancelled := h.place(), h.place()
	h.appendEvents(cancelled, order.Cancelled{Reason: "changed mind"}, order.PaymentVoided{Reason: "order cancelled", Attempts: 1})
	for _, id := range []string{pending, cancelled} {
		envs, err := h.store.Load(ctx, id, 1)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(envs[0])
		if _, err := br.DLQ.Send(ctx, body, map[string]string{"event_type": envs[0].Type, "order_id": id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := br.DLQ.Send(ctx, []byte("garbage"), nil); err != nil {
		t.Fatal(err)
	}

	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x"} {
		h.want(h.do("GET", "/admin/dlq"+q, ""), http.StatusBadRequest, "malformed")
	}
	h.want(h.do("POST", "/admin/dlq/redrive?dry_run=yes", ""), http.StatusBadRequest, "malformed")

	r := h.do("GET", "/admin/dlq/", "")
	h.want(r, http.StatusOK)
	var list api.DeadLetterList
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, it := range list.Items {
		status[it.OrderID] = it.OrderStatus
	}
	if list.Count != 3 || len(list.Items) != 3 || status[pending] != "Pending" || status[cancelled] != "Cancelled" || status[""] != "" {
		t.Fatalf("GET /admin/dlq = %s", r.body)
	}
	if l, err := h.client().DeadLetters(ctx, 1); err != nil || l.Count != 1 || len(l.Items) != 1 {
		t.Fatalf("DeadLetters(1) = %+v, %v", l, err)
	}

	c := h.client()
	dry, err := c.RedriveDeadLetters(ctx, true)
	if err != nil || !dry.DryRun || dry.Redriven != 1 || dry.Deleted != 1 || dry.Kept != 1 || len(dry.Items) != 3 {
		t.Fatalf("dry run = %+v, %v", dry, err)
	}
	if s, _ := br.DLQ.Stats(ctx); s.Visible+s.InFlight != 3 {
		t.Fatalf("the dry run changed the DLQ: %+v", s)
	}
	rep, err := c.RedriveDeadLetters(ctx, false)
	if err != nil || rep.DryRun || rep.Redriven != 1 || rep.Deleted != 1 || rep.Kept != 1 {
		t.Fatalf("redrive = %+v, %v", rep, err)
	}
	actions := map[string]string{}
	for _, it := range rep.Items {
		actions[it.OrderID] = it.Action
	}
	if actions[pending] != "redrive" || actions[cancelled] != "delete" || actions[""] != "keep" {
		t.Errorf("actions %v", actions)
	}
	msgs, err := br.Processing.Peek(ctx, 0)
	if err != nil || len(msgs) != 1 || msgs[0].Attributes["order_id"] != pending || msgs[0].ReceiveCount != 0 {
		t.Fatalf("processing queue holds %+v, %v; want the pending order's message, fresh", msgs, err)
	}
	if left, _ := c.DeadLetters(ctx, 0); left.Count != 1 || left.Items[0].Problem == "" {
		t.Errorf("DLQ after redrive: %+v, want the message naming no order, with its problem", left)
	}
	_, err = newHarness(t).client().DeadLetters(ctx, 0)
	wantProblem(t, err, http.StatusServiceUnavailable, domain.Unavailable)
}
