package streamfailures_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	qtypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/orderledger/orderledger/aws/bootstrap"
	"github.com/orderledger/orderledger/aws/lambdas"
	"github.com/orderledger/orderledger/aws/localmapping"
	"github.com/orderledger/orderledger/aws/streamfailures"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/publisher"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// env is one bootstrapped environment on the emulator.
type env struct {
	t   *testing.T
	d   *lambdas.Deps
	rep bootstrap.Report
	svc *orders.Service
	r   *streamfailures.Replayer
}

func setup(t *testing.T) *env {
	t.Helper()
	names, clients := awstest.Bootstrap(t)
	d, err := lambdas.NewDepsFor(awstest.Config(t), names, quiet)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := bootstrap.Resolve(context.Background(), clients, names)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := orders.New(orders.Config{Store: d.Store, Codec: d.Codec})
	if err != nil {
		t.Fatal(err)
	}
	proj, err := d.Projector()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := d.Publisher(rep.EventsTopicARN, rep.CompletedTopicARN)
	if err != nil {
		t.Fatal(err)
	}
	r, err := streamfailures.New(streamfailures.Config{SQS: d.Clients.SQS, QueueURL: rep.StreamFailureQueueURL, Streams: d.Clients.Streams,
		Store: d.Store, Views: d.Views, Projector: proj, Publisher: pub, Names: names})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, d: d, rep: rep, svc: svc, r: r}
}

// place places an order; with cancel, it is cancelled too (2 events).
func (e *env) place(customer string, cancel bool) string {
	e.t.Helper()
	ctx := context.Background()
	p, err := e.svc.Place(ctx, "", order.Place{CustomerName: customer, ProductName: "tea", Quantity: 1}, eventstore.Metadata{})
	if err != nil {
		e.t.Fatal(err)
	}
	id := p.Events[0].StreamID
	if cancel {
		if _, err := e.svc.Update(ctx, id, eventstore.Metadata{}, func(o order.Order) ([]order.Event, error) {
			return order.Decide(o, order.Cancel{Reason: "changed my mind"})
		}); err != nil {
			e.t.Fatal(err)
		}
	}
	return id
}

// mapping is a local stream mapping as `serve --backend aws` runs it,
// with handler h and one retry.
func (e *env) mapping(name, function string, h lambdas.StreamHandler) *localmapping.Stream {
	return &localmapping.Stream{Client: e.d.Clients.Streams, StreamARN: e.rep.EventsStreamARN, Name: name, Handler: h, Logger: quiet,
		SQS: e.d.Clients.SQS, FailureQueueURL: e.rep.StreamFailureQueueURL, MaxRetryAttempts: 1,
		FunctionARN: localmapping.FunctionARN(e.rep.EventsStreamARN, function)}
}

// pollUntil polls m until n failure records are listed.
func (e *env) pollUntil(m *localmapping.Stream, n int) []streamfailures.Failure {
	e.t.Helper()
	ctx := context.Background()
	for range 40 {
		_, _ = m.Poll(ctx)
		fs, err := e.r.List(ctx, 0)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(fs) >= n {
			return fs
		}
	}
	e.t.Fatalf("no %d failure records after 40 polls", n)
	return nil
}

// fold is what the read table should hold for order id.
func (e *env) fold(id string) projections.View {
	e.t.Helper()
	evs, err := e.d.Store.Load(context.Background(), id, 1)
	if err != nil {
		e.t.Fatal(err)
	}
	v, err := projections.Fold(e.d.Codec, evs)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// failingViews is the read table, refusing every write of one order.
type failingViews struct {
	projections.ReadModel
	bad string
}

func (f failingViews) Put(ctx context.Context, expected int64, v projections.View) error {
	if v.OrderID == f.bad {
		return errors.New("the read table refuses this order (test)")
	}
	return f.ReadModel.Put(ctx, expected, v)
}

// TestProjectorFailureIsListedAndReplayed makes the projector fail for one
// order: its records are given up after the retries and their failure
// records land in the queue; list shows them, a dry run changes nothing,
// and replay re-projects the order so its item equals the fold.
func TestProjectorFailureIsListedAndReplayed(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	good := e.place("Ada", false)
	bad := e.place("Bob", true)
	proj, err := projections.NewProjector(failingViews{e.d.Views, bad}, e.d.Store, e.d.Codec)
	if err != nil {
		t.Fatal(err)
	}
	m := e.mapping("projector", e.d.Names.ProjectorFunc, lambdas.Projector(proj, quiet))
	// One record per event of the bad order (bisected down to each).
	fs := e.pollUntil(m, 2)
	if len(fs) != 2 {
		t.Fatalf("%d failure records, want 2 (one per event of the failing order): %+v", len(fs), fs)
	}
	for _, f := range fs {
		if f.Mapping != streamfailures.Projector || f.Function != e.d.Names.ProjectorFunc || f.Condition != "RetryAttemptsExhausted" ||
			f.BatchSize != 1 || f.StartSequenceNumber == "" || f.StartSequenceNumber != f.EndSequenceNumber || f.Problem != "" || f.FailedAt.IsZero() {
			t.Fatalf("listed failure = %+v", f)
		}
	}
	if got, err := e.d.Views.Get(ctx, good); err != nil || !reflect.DeepEqual(got, e.fold(good)) {
		t.Fatalf("the good order was not projected past the failing one: %+v, %v", got, err)
	}
	if _, err := e.d.Views.Get(ctx, bad); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("the failing order has an item before the replay: %v", err)
	}

	dry, err := e.r.Replay(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || dry.Replayed != 2 || dry.Kept != 0 || len(dry.Items) != 2 {
		t.Fatalf("dry run report = %+v", dry)
	}
	for _, o := range dry.Items {
		want := []streamfailures.OrderOutcome{{OrderID: bad, Head: 2, Before: 0, After: 0}}
		if o.Action != streamfailures.WouldReplay || o.Source != streamfailures.FromStream || !reflect.DeepEqual(o.Orders, want) {
			t.Fatalf("dry run outcome = %+v, want %+v from the stream", o, want)
		}
	}
	if _, err := e.d.Views.Get(ctx, bad); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("the dry run wrote the read table: %v", err)
	}
	if fs, err := e.r.List(ctx, 0); err != nil || len(fs) != 2 {
		t.Fatalf("after the dry run the queue lists %d records (%v), want both still there", len(fs), err)
	}

	rep, err := e.r.Replay(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.DryRun || rep.Replayed != 2 || rep.Kept != 0 {
		t.Fatalf("replay report = %+v", rep)
	}
	if o := rep.Items[0]; o.Action != streamfailures.Replayed || len(o.Orders) != 1 || o.Orders[0] != (streamfailures.OrderOutcome{OrderID: bad, Head: 2, Before: 0, After: 2}) {
		t.Fatalf("first outcome = %+v, want order %s projected from nothing to version 2", o, bad)
	}
	if o := rep.Items[1]; o.Orders[0] != (streamfailures.OrderOutcome{OrderID: bad, Head: 2, Before: 2, After: 2}) {
		t.Fatalf("second outcome = %+v, want the same order already at version 2", o)
	}
	got, err := e.d.Views.Get(ctx, bad)
	if want := e.fold(bad); err != nil || !reflect.DeepEqual(got, want) || got.Status != order.StatusCancelled {
		t.Fatalf("after the replay the read item is %+v (%v), want the fold %+v", got, err, want)
	}
	if fs, err := e.r.List(ctx, 0); err != nil || len(fs) != 0 {
		t.Fatalf("after the replay the queue lists %d records (%v), want none", len(fs), err)
	}
}

// failingTopic refuses every publish.
type failingTopic struct{}

func (failingTopic) Publish(context.Context, []byte, map[string]string) (string, error) {
	return "", errors.New("the topic refuses (test)")
}

// TestPublisherFailureReplayRepublishesWithTheSameEventIDs makes the
// events topic refuse: the OrderPlaced notification's record is given up
// and replay publishes it to the real topic with its own event ID, which
// the processing queue (subscribed to OrderPlaced) then holds.
func TestPublisherFailureReplayRepublishesWithTheSameEventIDs(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	id := e.place("Cy", false)
	placed, err := e.d.Store.Load(ctx, id, 1)
	if err != nil || len(placed) != 1 {
		t.Fatalf("load: %v, %v", placed, err)
	}
	refusing, err := publisher.New(publisher.Config{Events: failingTopic{}, Completed: failingTopic{}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	fs := e.pollUntil(e.mapping("publisher", e.d.Names.PublisherFunc, lambdas.Publisher(refusing, quiet)), 1)
	if len(fs) != 1 || fs[0].Mapping != streamfailures.Publisher {
		t.Fatalf("failure records = %+v, want one of the publisher", fs)
	}
	if msgs := receive(t, e, e.rep.ProcessingQueueURL); len(msgs) != 0 {
		t.Fatalf("the processing queue holds %d messages before the replay", len(msgs))
	}

	dry, err := e.r.Replay(ctx, true)
	if err != nil || dry.Replayed != 1 || !slices.Equal(dry.Items[0].EventIDs, []string{placed[0].EventID}) {
		t.Fatalf("dry run = %+v, %v; want the OrderPlaced event %s", dry, err, placed[0].EventID)
	}
	if msgs := receive(t, e, e.rep.ProcessingQueueURL); len(msgs) != 0 {
		t.Fatalf("the dry run published: the processing queue holds %d messages", len(msgs))
	}

	rep, err := e.r.Replay(ctx, false)
	if err != nil || rep.Replayed != 1 || rep.Items[0].Action != streamfailures.Replayed || !slices.Equal(rep.Items[0].EventIDs, []string{placed[0].EventID}) {
		t.Fatalf("replay = %+v, %v", rep, err)
	}
	msgs := receive(t, e, e.rep.ProcessingQueueURL)
	if len(msgs) != 1 {
		t.Fatalf("after the replay the processing queue holds %d messages, want the OrderPlaced notification", len(msgs))
	}
	var body eventstore.Event
	if err := json.Unmarshal([]byte(aws.ToString(msgs[0].Body)), &body); err != nil {
		t.Fatal(err)
	}
	attr := msgs[0].MessageAttributes[messaging.AttrEventID]
	if body.EventID != placed[0].EventID || aws.ToString(attr.StringValue) != placed[0].EventID || body.StreamID != id {
		t.Fatalf("republished message: body event %q of %q, attribute %q; want event %s of %s", body.EventID, body.StreamID, aws.ToString(attr.StringValue), placed[0].EventID, id)
	}
	if fs, err := e.r.List(ctx, 0); err != nil || len(fs) != 0 {
		t.Fatalf("after the replay the queue lists %d records (%v), want none", len(fs), err)
	}
}

// TestReplayFallsBackToTheEventsTable: a record whose shard the stream no
// longer has (its records aged out) is replayed from the events table, by
// the events that occurred in its arrival window; a message that is no
// failure record is kept and reported.
func TestReplayFallsBackToTheEventsTable(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	before := time.Now().UTC().Truncate(time.Second)
	id := e.place("Di", true)
	after := time.Now().UTC().Truncate(time.Second)
	// The stream's shard, at sequence numbers it does not hold (moto keeps
	// every record, and answers an unknown shard or a number below the
	// shard's first with a 500: records gone are played by numbers past
	// its last).
	desc, err := e.d.Clients.Streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(e.rep.EventsStreamARN)})
	if err != nil || len(desc.StreamDescription.Shards) == 0 {
		t.Fatalf("describe stream: %+v, %v", desc, err)
	}
	gone, ok := new(big.Int).SetString(aws.ToString(desc.StreamDescription.Shards[0].SequenceNumberRange.StartingSequenceNumber), 10)
	if !ok {
		t.Fatalf("shard starts at %q", aws.ToString(desc.StreamDescription.Shards[0].SequenceNumberRange.StartingSequenceNumber))
	}
	gone.Add(gone, big.NewInt(1_000_000))
	rec := localmapping.FailureRecord{
		RequestContext: localmapping.RequestContext{RequestID: "r1", FunctionARN: localmapping.FunctionARN(e.rep.EventsStreamARN, e.d.Names.ProjectorFunc),
			Condition: localmapping.ConditionRetriesExhausted, ApproximateInvokeCount: 6},
		ResponseContext: localmapping.ResponseContext{StatusCode: 200, ExecutedVersion: "$LATEST", FunctionError: "Unhandled"},
		Version:         "1.0", Timestamp: time.Now().UTC().Add(-25 * time.Hour),
		Batch: localmapping.BatchInfo{ShardID: aws.ToString(desc.StreamDescription.Shards[0].ShardId), StartSequenceNumber: gone.String(),
			EndSequenceNumber: new(big.Int).Add(gone, big.NewInt(1)).String(), ApproximateArrivalOfFirstRecord: before, ApproximateArrivalOfLastRecord: after,
			BatchSize: 2, StreamARN: e.rep.EventsStreamARN},
	}
	body, _ := json.Marshal(rec)
	for _, b := range []string{string(body), "not a failure record"} {
		if _, err := e.d.Clients.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(e.rep.StreamFailureQueueURL), MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := e.r.Replay(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Replayed != 1 || rep.Kept != 1 {
		t.Fatalf("replay = %+v, want one replayed and the stray message kept", rep)
	}
	for _, o := range rep.Items {
		switch o.Action {
		case streamfailures.Replayed:
			if o.Source != streamfailures.FromEventsTable || len(o.Orders) != 1 || o.Orders[0].OrderID != id || o.Orders[0].After != 2 {
				t.Fatalf("replayed outcome = %+v, want order %s re-projected from the events table", o, id)
			}
		case streamfailures.Kept:
			if o.Problem == "" || o.Reason == "" {
				t.Fatalf("kept outcome says nothing of why: %+v", o)
			}
		default:
			t.Fatalf("outcome %+v", o)
		}
	}
	if got, err := e.d.Views.Get(ctx, id); err != nil || !reflect.DeepEqual(got, e.fold(id)) {
		t.Fatalf("after the replay the read item is %+v (%v), want the fold", got, err)
	}
	fs, err := e.r.List(ctx, 0)
	if err != nil || len(fs) != 1 || fs[0].Problem == "" {
		t.Fatalf("after the replay the queue lists %+v (%v), want the stray message alone", fs, err)
	}
}

// receive returns the queue's messages and leaves them invisible for the
// rest of the test.
func receive(t *testing.T, e *env, url string) []qtypes.Message {
	t.Helper()
	out, err := e.d.Clients.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Messages
}
