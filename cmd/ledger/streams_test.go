package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/orderledger/orderledger/aws/bootstrap"
	"github.com/orderledger/orderledger/aws/lambdas"
	"github.com/orderledger/orderledger/aws/localmapping"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/internal/resources"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
)

// TestStreamFailuresListAndReplay: an order's projection fails in the
// local projector mapping until its retries run out; `ledger streams
// failures list` shows the failure record, `replay --dry-run` changes
// nothing, and `replay` projects the order (its read item then equals the
// fold of its events) and empties the queue.
func TestStreamFailuresListAndReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, _, errb, name := awsEnv(t, nil)
	clients, names := awstest.Clients(t), resources.For(name)
	t.Cleanup(func() { _ = bootstrap.Teardown(context.Background(), clients, names) })
	if code := run(ctx, e, []string{"aws", "bootstrap", "--env", name}); code != 0 {
		t.Fatalf("aws bootstrap: exit %d: %s", code, errb.String())
	}
	rep, err := bootstrap.Resolve(ctx, clients, names)
	if err != nil {
		t.Fatal(err)
	}
	d, err := lambdas.NewDepsFor(awstest.Config(t), names, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := orders.New(orders.Config{Store: d.Store, Codec: d.Codec})
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Place(ctx, "", order.Place{CustomerName: "Eve", ProductName: "tea", Quantity: 2}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	id := p.Events[0].StreamID
	m := &localmapping.Stream{Client: clients.Streams, StreamARN: rep.EventsStreamARN, Name: "projector",
		SQS: clients.SQS, FailureQueueURL: rep.StreamFailureQueueURL, MaxRetryAttempts: 1,
		FunctionARN: localmapping.FunctionARN(rep.EventsStreamARN, names.ProjectorFunc),
		Handler: func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			return events.DynamoDBEventResponse{}, errors.New("the projector is down (test)")
		}}
	for range 5 {
		_, _ = m.Poll(ctx)
	}

	cli := func(want int, args ...string) string {
		t.Helper()
		var out, errb syncBuffer
		if code := run(ctx, &env{stdout: &out, stderr: &errb, getenv: e.getenv}, args); code != want {
			t.Fatalf("ledger %s: exit %d, want %d: %s%s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		t.Logf("ledger %s:\n%s", strings.Join(args, " "), out.String())
		return out.String()
	}
	var listed struct {
		Count int `json:"count"`
		Items []struct {
			Mapping, Condition, Function string
			BatchSize                    int `json:"batch_size"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(cli(0, "streams", "failures", "list", "--backend", "aws", "--json")), &listed); err != nil {
		t.Fatal(err)
	}
	if listed.Count != 1 || listed.Items[0].Mapping != "projector" || listed.Items[0].Function != names.ProjectorFunc ||
		listed.Items[0].Condition != "RetryAttemptsExhausted" || listed.Items[0].BatchSize != 1 {
		t.Fatalf("list --json = %+v, want the projector's one failure record", listed)
	}
	if got := cli(0, "streams", "failures", "list", "--backend", "aws"); !strings.Contains(got, "projector") || !strings.Contains(got, "1 failure record(s)") {
		t.Fatalf("list:\n%s", got)
	}
	if got := cli(0, "streams", "failures", "replay", "--backend", "aws", "--dry-run"); !strings.Contains(got, "dry run: 1 would be replayed, 0 kept") ||
		!strings.Contains(got, "would re-project "+id) {
		t.Fatalf("replay --dry-run:\n%s", got)
	}
	if _, err := d.Views.Get(ctx, id); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("after the dry run the read table has the order: %v", err)
	}
	if got := cli(0, "streams", "failures", "replay", "--backend", "aws"); !strings.Contains(got, "1 replayed, 0 kept") ||
		!strings.Contains(got, "re-projected "+id+" v0->v1") {
		t.Fatalf("replay:\n%s", got)
	}
	want, err := projections.Fold(d.Codec, p.Events)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := d.Views.Get(ctx, id); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("after the replay the read item is %+v (%v), want the fold %+v", got, err, want)
	}
	if got := cli(0, "streams", "failures", "list", "--backend", "aws"); !strings.Contains(got, "0 failure record(s)") {
		t.Fatalf("list after the replay:\n%s", got)
	}
}

func TestStreamFailuresWithoutBootstrapSaysSo(t *testing.T) {
	t.Parallel()
	e, out, errb, _ := awsEnv(t, nil)
	if code := run(context.Background(), e, []string{"streams", "failures", "list", "--backend", "aws"}); code != 1 ||
		!strings.Contains(errb.String(), "ledger aws bootstrap") || strings.Count(errb.String(), "\n") != 1 || out.String() != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and one line naming the bootstrap", code, out.String(), errb.String())
	}
}

func TestStreamFailuresBadInput(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"streams", "failures", "list"}, "--backend aws is required"},
		{[]string{"streams", "failures", "replay", "--backend", "embedded"}, "--backend aws is required"},
		{[]string{"streams", "failures", "list", "--backend", "aws", "extra"}, `unexpected argument "extra"`},
		{[]string{"streams", "failures", "list", "--backend", "aws", "--limit", "-1"}, "--limit"},
		{[]string{"streams", "failures", "replay", "--backend", "aws", "--dry-run=maybe"}, "dry-run"},
		{[]string{"streams", "failures", "redo"}, `unknown command "streams failures redo"`},
	} {
		code, _, errOut := runCmd(context.Background(), c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("ledger %s: exit %d, stderr %q; want exit 2 saying %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}
}
