package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	qtypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/awstest"
)

// startEmbeddedServer serves a fresh data directory in process with the
// flags given and returns the API's base URL and the directory.
func startEmbeddedServer(t *testing.T, flags ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb lockedBuf
	done := make(chan int, 1)
	dir := t.TempDir()
	go func() {
		done <- run(ctx, &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }},
			append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dir}, flags...))
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exit %d: %s", code, errb.String())
		}
	})
	re := regexp.MustCompile(`serving on (http://[0-9.:]+)`)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(errb.String()); m != nil {
			return m[1], dir
		}
	}
	t.Fatalf("not serving: %s", errb.String())
	return "", ""
}

// deadLetterOnPurpose places two orders on a server started with
// --sim-inventory-stock 1 --sim-refund-error-rate 1: the first completes,
// the second is charged, finds no stock and cannot be refunded, so its
// message is dead-lettered with the order Pending and its refund owed. It
// returns both order IDs once the dead letter is listed.
func deadLetterOnPurpose(t *testing.T, c *api.Client, base string) (completed, dead string) {
	t.Helper()
	ctx := t.Context()
	completed = placeSeedOrder(t, base)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		o, err := c.Get(ctx, completed, api.GetQuery{Consistent: true})
		if err == nil && o.Status == "Completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first order never completed: %+v %v", o, err)
		}
	}
	dead = placeSeedOrder(t, base)
	waitDeadLetters(t, c, 1)
	return completed, dead
}

// waitDeadLetters polls GET /admin/dlq until it lists n messages.
func waitDeadLetters(t *testing.T, c *api.Client, n int) api.DeadLetterList {
	t.Helper()
	var l api.DeadLetterList
	var err error
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if l, err = c.DeadLetters(t.Context(), 0); err == nil && l.Count == n {
			return l
		}
	}
	t.Fatalf("GET /admin/dlq never listed %d dead letters: %+v %v", n, l, err)
	return l
}

// checkDeadLetterTour lists and redrives, through the API of a running
// server, the dead letter produced on purpose and, when send is not nil
// (a queue the test can reach beside the server), one of a settled order
// and one naming no order, sent by send.
func checkDeadLetterTour(t *testing.T, c *api.Client, completed, dead string, send func(body []byte, attrs map[string]string)) {
	ctx := t.Context()
	l := waitDeadLetters(t, c, 1)
	if it := l.Items[0]; it.OrderID != dead || it.OrderStatus != "Pending" || it.Attempts != 3 || it.DeadAt.IsZero() {
		t.Fatalf("dead letter %+v, want order %s Pending after 3 attempts", it, dead)
	}
	extra := 0
	if send != nil {
		settled, _ := json.Marshal(eventstore.Event{StreamID: completed, Type: "OrderPlaced", Version: 1})
		send(settled, map[string]string{"event_type": "OrderPlaced", "order_id": completed})
		send([]byte("not an event"), nil)
		extra = 1
		waitDeadLetters(t, c, 3)
	}

	dry, err := c.RedriveDeadLetters(ctx, true)
	if err != nil || !dry.DryRun || dry.Redriven != 1 || dry.Deleted != extra || dry.Kept != extra {
		t.Fatalf("dry run = %+v, %v", dry, err)
	}
	if l, err := c.DeadLetters(ctx, 0); err != nil || l.Count != 1+2*extra {
		t.Fatalf("after the dry run: %+v, %v; want the dead letters untouched", l, err)
	}
	rep, err := c.RedriveDeadLetters(ctx, false)
	if err != nil || rep.DryRun || rep.Redriven != 1 || rep.Deleted != extra || rep.Kept != extra {
		t.Fatalf("redrive = %+v, %v", rep, err)
	}
	for _, it := range rep.Items {
		want := map[string]string{dead: "redrive", completed: "delete", "": "keep"}[it.OrderID]
		if it.Action != want || it.Reason == "" {
			t.Errorf("item %+v, want action %s", it, want)
		}
	}
	if l, err := c.DeadLetters(ctx, 0); err != nil || l.Count != extra || (extra == 1 && l.Items[0].OrderID != "") {
		t.Fatalf("after the redrive: %+v, %v; want only the message naming no order", l, err)
	}
	// The redriven message really went back to processing: the refund
	// still fails, so after 3 more attempts it is dead again.
	l = waitDeadLetters(t, c, 1+extra)
	found := false
	for _, it := range l.Items {
		found = found || it.OrderID == dead
	}
	if !found {
		t.Fatalf("the redriven order %s did not come back: %+v", dead, l)
	}
}

func TestDeadLettersWhileServingEmbedded(t *testing.T) {
	t.Parallel()
	base, dir := startEmbeddedServer(t, "--workers", "1", "--retry-backoff", "100ms",
		"--sim-inventory-stock", "1", "--sim-refund-error-rate", "1")
	c, err := api.NewClient(base)
	if err != nil {
		t.Fatal(err)
	}
	completed, dead := deadLetterOnPurpose(t, c, base)

	code, out, errOut := runCmd(t.Context(), "dlq", "list", "--url", base)
	if code != 0 || !strings.Contains(out, dead) || !strings.Contains(out, "1 dead letter(s)") {
		t.Fatalf("dlq list --url = %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runCmd(t.Context(), "dlq", "list", "--data", dir); code == 0 || !strings.Contains(errOut, "--url") {
		t.Errorf("dlq list --data on a running server: exit %d %q, want a failure pointing at --url", code, errOut)
	}
	// The running server owns the embedded broker: nothing else can send
	// to its queues (the delete and keep cases run on a stopped one in
	// TestDLQListAndRedrive, and over the API in package api's tests).
	checkDeadLetterTour(t, c, completed, dead, nil)
}

func TestDeadLettersWhileServingAWS(t *testing.T) {
	t.Parallel()
	base, names, clients := startAWSServer(t, nil, nil, "--sim-inventory-stock", "1", "--sim-refund-error-rate", "1")
	c, err := api.NewClient(base)
	if err != nil {
		t.Fatal(err)
	}
	completed, dead := deadLetterOnPurpose(t, c, base)

	vars := map[string]string{"AWS_ENDPOINT_URL": awstest.Endpoint(t), "LEDGER_ENV": names.Env}
	code, stdout, errOut := runWithEnv(t.Context(), vars, "dlq", "list", "--backend", "aws", "--json")
	if code != 0 {
		t.Fatalf("dlq list --backend aws: exit %d: %s", code, errOut)
	}
	out := strings.NewReader(stdout)
	var l api.DeadLetterList
	if err := json.NewDecoder(out).Decode(&l); err != nil || l.Count != 1 || l.Items[0].OrderID != dead {
		t.Fatalf("dlq list --backend aws --json = %q (%v), want the dead order %s", stdout, err, dead)
	}
	dlq, err := clients.SQS.GetQueueUrl(t.Context(), &sqs.GetQueueUrlInput{QueueName: aws.String(names.DeadLetterQueue)})
	if err != nil {
		t.Fatal(err)
	}
	send := func(body []byte, attrs map[string]string) {
		in := &sqs.SendMessageInput{QueueUrl: dlq.QueueUrl, MessageBody: aws.String(string(body))}
		if len(attrs) > 0 {
			in.MessageAttributes = map[string]qtypes.MessageAttributeValue{}
			for k, v := range attrs {
				in.MessageAttributes[k] = qtypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
			}
		}
		if _, err := clients.SQS.SendMessage(t.Context(), in); err != nil {
			t.Fatal(err)
		}
	}
	checkDeadLetterTour(t, c, completed, dead, send)
}
