// Package streamfailures lists and replays the failure records of the
// events stream's mappings (`ledger streams failures list|replay --backend
// aws`). When the projector's or the publisher's mapping gives a batch up
// after its retries (the deployed Lambda mappings, and the local ones of
// `serve --backend aws`, package localmapping), it sends a failure record
// (localmapping.FailureRecord, Lambda's format) to the environment's stream
// failures queue: the shard and the sequence numbers of the records given
// up, not the records themselves.
//
// Replay re-applies each record, then deletes it from the queue:
//
//   - It reads the records back from the stream: GetShardIterator
//     (AT_SEQUENCE_NUMBER, the first) and GetRecords up to the last.
//   - A stream keeps its records for 24 hours. When they are gone (the
//     shard or the records trimmed, or the stream replaced), Replay falls
//     back to the events table: a scan for the events that occurred within
//     the record's arrival window (widened by Slack on both sides, since an
//     event's occurred_at is set before it is written), a superset of the
//     batch's events.
//   - A projector record: every order the events name is re-projected by
//     the projector (projections.Projector), handed its whole stream from
//     the events table: the view is folded on from its stored version with
//     the projector's version fence, so a replay running beside the live
//     projector converges with it.
//   - A publisher record: the batch's events are published again, in
//     stream order, with their own event IDs (in the body and the event_id
//     attribute): consumers de-duplicate by event ID, so what the first
//     attempts did publish is not a second notification.
//
// Guarantees and caveats. Re-projecting and re-publishing are idempotent,
// so replaying a record twice (a crash between the re-apply and the
// delete, or two operators at once) does no harm, and the events table
// fallback may re-apply more than the batch held, harmlessly. SQS has no
// peek: List and Replay receive the records with a visibility timeout of
// HoldTimeout and make those they keep visible again at once. A record
// whose function is neither the projector nor the publisher, or that is
// not a failure record, is kept and reported. DryRun reads everything and
// changes nothing: no write to the read table, no publish, no delete. The
// fallback scans the whole events table (reads only; about one read unit
// per 4 KiB, per failure record).
package streamfailures

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	stypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	qtypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/orderledger/orderledger/aws/localmapping"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/dynamostore"
	"github.com/orderledger/orderledger/internal/resources"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/publisher"
)

// HoldTimeout is how long List and Replay hide the records they hold from
// other readers of the queue.
const HoldTimeout = 60 * time.Second

// Slack widens the arrival window of a record whose stream records are
// gone, for the events table fallback.
const Slack = time.Minute

// Mappings a failure record can come from.
const (
	Projector = "projector"
	Publisher = "publisher"
)

// Config wires a Replayer. SQS, QueueURL, Streams, Store, Views, Projector,
// Publisher and Names are required.
type Config struct {
	SQS      *sqs.Client
	QueueURL string
	Streams  *dynamodbstreams.Client
	// Store is the events table: whole streams for the projector, and the
	// fallback's scan.
	Store *dynamostore.Store
	// Views is the read table the projector writes, read to report what a
	// replay does to each order.
	Views     projections.ReadModel
	Projector *projections.Projector
	Publisher *publisher.Publisher
	// Names tell the mappings apart by their functions' names.
	Names resources.Names
}

// Replayer lists and replays the stream failure records of one environment.
type Replayer struct{ cfg Config }

// New returns a Replayer, or an error naming a missing dependency.
func New(cfg Config) (*Replayer, error) {
	if cfg.SQS == nil || cfg.QueueURL == "" || cfg.Streams == nil || cfg.Store == nil || cfg.Views == nil ||
		cfg.Projector == nil || cfg.Publisher == nil || cfg.Names.ProjectorFunc == "" || cfg.Names.PublisherFunc == "" {
		return nil, errors.New("aws/streamfailures: new: SQS, QueueURL, Streams, Store, Views, Projector, Publisher and Names are required")
	}
	return &Replayer{cfg: cfg}, nil
}

// Failure is one message of the stream failures queue.
type Failure struct {
	MessageID string `json:"message_id"`
	// Mapping is Projector or Publisher; empty when the record names
	// another function or is no failure record (Problem says which).
	Mapping  string `json:"mapping,omitempty"`
	Function string `json:"function,omitempty"`
	// Condition is why the batch was given up (RetryAttemptsExhausted...).
	Condition           string    `json:"condition,omitempty"`
	Invokes             int       `json:"invokes,omitempty"`
	ShardID             string    `json:"shard_id,omitempty"`
	StartSequenceNumber string    `json:"start_sequence_number,omitempty"`
	EndSequenceNumber   string    `json:"end_sequence_number,omitempty"`
	BatchSize           int       `json:"batch_size,omitempty"`
	FirstArrival        time.Time `json:"first_arrival,omitzero"`
	LastArrival         time.Time `json:"last_arrival,omitzero"`
	// FailedAt is when the record was sent.
	FailedAt time.Time `json:"failed_at,omitzero"`
	Problem  string    `json:"problem,omitempty"`

	record  localmapping.FailureRecord
	receipt string
}

// hold receives every message of the queue (up to limit, 0: all) and keeps
// them invisible for HoldTimeout.
func (r *Replayer) hold(ctx context.Context, limit int) ([]Failure, error) {
	var out []Failure
	seen := map[string]bool{}
	for limit <= 0 || len(out) < limit {
		n := int32(10)
		if limit > 0 {
			n = int32(min(10, limit-len(out)))
		}
		got, err := r.cfg.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(r.cfg.QueueURL), MaxNumberOfMessages: n, VisibilityTimeout: int32(HoldTimeout / time.Second),
			MessageSystemAttributeNames: []qtypes.MessageSystemAttributeName{qtypes.MessageSystemAttributeNameSentTimestamp},
		})
		if err != nil {
			return out, fmt.Errorf("aws/streamfailures: receive: %w", err)
		}
		fresh := 0
		for _, m := range got.Messages {
			id := aws.ToString(m.MessageId)
			if seen[id] {
				continue
			}
			seen[id], fresh = true, fresh+1
			out = append(out, r.failure(id, aws.ToString(m.ReceiptHandle), aws.ToString(m.Body), m.Attributes))
		}
		if fresh == 0 {
			break
		}
	}
	return out, nil
}

func (r *Replayer) failure(id, receipt, body string, attrs map[string]string) Failure {
	f := Failure{MessageID: id, receipt: receipt}
	if ms, err := strconv.ParseInt(attrs[string(qtypes.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		f.FailedAt = time.UnixMilli(ms).UTC()
	}
	rec, err := localmapping.DecodeFailureRecord([]byte(body))
	if err != nil {
		f.Problem = err.Error()
		return f
	}
	b := rec.Batch
	f.record, f.Function, f.Condition, f.Invokes = rec, rec.FunctionName(), rec.RequestContext.Condition, rec.RequestContext.ApproximateInvokeCount
	f.ShardID, f.StartSequenceNumber, f.EndSequenceNumber, f.BatchSize = b.ShardID, b.StartSequenceNumber, b.EndSequenceNumber, b.BatchSize
	f.FirstArrival, f.LastArrival = b.ApproximateArrivalOfFirstRecord, b.ApproximateArrivalOfLastRecord
	if !rec.Timestamp.IsZero() {
		f.FailedAt = rec.Timestamp
	}
	switch f.Function {
	case r.cfg.Names.ProjectorFunc:
		f.Mapping = Projector
	case r.cfg.Names.PublisherFunc:
		f.Mapping = Publisher
	default:
		f.Problem = fmt.Sprintf("the record is from function %q, neither %s nor %s", f.Function, r.cfg.Names.ProjectorFunc, r.cfg.Names.PublisherFunc)
	}
	return f
}

// release makes held messages visible again.
func (r *Replayer) release(ctx context.Context, fs []Failure) error {
	var errs []error
	for _, f := range fs {
		if _, err := r.cfg.SQS.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(r.cfg.QueueURL), ReceiptHandle: aws.String(f.receipt), VisibilityTimeout: 0,
		}); err != nil {
			errs = append(errs, fmt.Errorf("aws/streamfailures: release %s: %w", f.MessageID, err))
		}
	}
	return errors.Join(errs...)
}

// List returns the failure records in the queue (up to limit, 0: all),
// oldest receive first; it changes nothing.
func (r *Replayer) List(ctx context.Context, limit int) ([]Failure, error) {
	fs, err := r.hold(ctx, limit)
	return fs, errors.Join(err, r.release(context.WithoutCancel(ctx), fs))
}

// Actions of an Outcome.
const (
	Replayed    = "replayed"
	WouldReplay = "would replay"
	Kept        = "kept"
)

// Sources of the events an Outcome re-applied.
const (
	FromStream      = "stream"
	FromEventsTable = "events table"
)

// Outcome is what Replay did (or, in a dry run, would do) with one record.
type Outcome struct {
	Failure
	Action string `json:"action"`
	// Source is where the batch's events were read: FromStream or,
	// when the stream no longer holds them, FromEventsTable.
	Source string `json:"source,omitempty"`
	// Orders are the orders re-projected (projector) or whose events were
	// re-published (publisher).
	Orders []OrderOutcome `json:"orders,omitempty"`
	// EventIDs are the events re-published (publisher), in stream order.
	EventIDs []string `json:"event_ids,omitempty"`
	// Reason says why a record was kept.
	Reason string `json:"reason,omitempty"`
}

// OrderOutcome is one order a projector record named.
type OrderOutcome struct {
	OrderID string `json:"order_id"`
	// Head is the order's last version in the events table.
	Head int64 `json:"head"`
	// Before and After are the read table's version of the order before
	// and after the replay (0: no item).
	Before int64 `json:"before"`
	After  int64 `json:"after"`
}

// Report is the result of Replay.
type Report struct {
	DryRun   bool      `json:"dry_run"`
	Items    []Outcome `json:"items"`
	Replayed int       `json:"replayed"`
	Kept     int       `json:"kept"`
}

// Replay re-applies every failure record in the queue and deletes it;
// with dryRun it only reports what it would do. A record that cannot be
// replayed is kept (visible again at once) and reported; the error joins
// what went wrong, after every record was tried.
func (r *Replayer) Replay(ctx context.Context, dryRun bool) (Report, error) {
	rep := Report{DryRun: dryRun, Items: []Outcome{}}
	fs, err := r.hold(ctx, 0)
	if err != nil {
		return rep, errors.Join(err, r.release(context.WithoutCancel(ctx), fs))
	}
	var notReplayed, keep []Failure
	var failures []error
	for _, f := range fs {
		o := Outcome{Failure: f}
		if f.Mapping == "" {
			o.Action, o.Reason = Kept, f.Problem
			keep = append(keep, f)
			rep.Items, rep.Kept = append(rep.Items, o), rep.Kept+1
			continue
		}
		if err := r.replay(ctx, &o, dryRun); err != nil {
			o.Action, o.Reason = Kept, err.Error()
			keep, notReplayed = append(keep, f), append(notReplayed, f)
			failures = append(failures, fmt.Errorf("record %s: %w", f.MessageID, err))
			rep.Items, rep.Kept = append(rep.Items, o), rep.Kept+1
			continue
		}
		if dryRun {
			o.Action = WouldReplay
			keep = append(keep, f)
		} else {
			if _, err := r.cfg.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(r.cfg.QueueURL), ReceiptHandle: aws.String(f.receipt)}); err != nil {
				// Replayed, and replayed again next time: harmless.
				failures = append(failures, fmt.Errorf("record %s replayed but not deleted: %w", f.MessageID, err))
			}
			o.Action = Replayed
		}
		rep.Items, rep.Replayed = append(rep.Items, o), rep.Replayed+1
	}
	if err := r.release(context.WithoutCancel(ctx), keep); err != nil {
		failures = append(failures, err)
	}
	if len(failures) > 0 {
		return rep, fmt.Errorf("aws/streamfailures: replay: %d of %d records not replayed: %w", len(notReplayed), len(fs), errors.Join(failures...))
	}
	return rep, nil
}

// replay re-applies one record (or, with dryRun, works out what it would).
func (r *Replayer) replay(ctx context.Context, o *Outcome, dryRun bool) error {
	evs, src, err := r.events(ctx, o.record)
	if err != nil {
		return err
	}
	o.Source = src
	if o.Mapping == Publisher {
		for _, e := range evs {
			if publisher.RouteOf(e.Type) == publisher.None {
				continue
			}
			if !dryRun {
				if err := r.cfg.Publisher.Publish(ctx, e); err != nil {
					return err
				}
			}
			o.EventIDs = append(o.EventIDs, e.EventID)
			if len(o.Orders) == 0 || o.Orders[len(o.Orders)-1].OrderID != e.StreamID {
				o.Orders = append(o.Orders, OrderOutcome{OrderID: e.StreamID, Head: e.Version})
			}
		}
		return nil
	}
	var ids []string
	for _, e := range evs {
		if !slices.Contains(ids, e.StreamID) {
			ids = append(ids, e.StreamID)
		}
	}
	for _, id := range ids {
		stream, err := r.cfg.Store.Load(ctx, id, 1)
		if err != nil {
			return fmt.Errorf("aws/streamfailures: load %s: %w", id, err)
		}
		oo := OrderOutcome{OrderID: id}
		if len(stream) > 0 {
			oo.Head = stream[len(stream)-1].Version
		}
		if oo.Before, err = r.readVersion(ctx, id); err != nil {
			return err
		}
		oo.After = oo.Before
		if !dryRun && len(stream) > 0 {
			if err := r.cfg.Projector.HandleBatch(ctx, stream); err != nil {
				return err
			}
			if oo.After, err = r.readVersion(ctx, id); err != nil {
				return err
			}
		}
		o.Orders = append(o.Orders, oo)
	}
	return nil
}

func (r *Replayer) readVersion(ctx context.Context, id string) (int64, error) {
	v, err := r.cfg.Views.Get(ctx, id)
	if errors.Is(err, order.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("aws/streamfailures: read %s: %w", id, err)
	}
	return v.Version, nil
}

// events returns the events of the record's batch, in stream order, from
// the stream, or from the events table when the stream no longer has them.
func (r *Replayer) events(ctx context.Context, rec localmapping.FailureRecord) ([]eventstore.Event, string, error) {
	evs, ok, err := r.fromStream(ctx, rec.Batch)
	if err != nil {
		return nil, "", err
	}
	if ok {
		return evs, FromStream, nil
	}
	evs, err = r.fromEventsTable(ctx, rec.Batch)
	return evs, FromEventsTable, err
}

// fromStream reads the batch's records; ok is false when the stream no
// longer holds them all.
func (r *Replayer) fromStream(ctx context.Context, b localmapping.BatchInfo) ([]eventstore.Event, bool, error) {
	it, err := r.cfg.Streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
		StreamArn: aws.String(b.StreamARN), ShardId: aws.String(b.ShardID),
		ShardIteratorType: stypes.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(b.StartSequenceNumber),
	})
	if gone(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("aws/streamfailures: shard iterator %s at %s: %w", b.ShardID, b.StartSequenceNumber, err)
	}
	var evs []eventstore.Event
	iter, first, empty := it.ShardIterator, true, 0
	for iter != nil && empty < 3 {
		out, err := r.cfg.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(int32(min(1000, max(b.BatchSize, 1))))})
		if gone(err) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("aws/streamfailures: get records %s: %w", b.ShardID, err)
		}
		if len(out.Records) == 0 {
			empty++
		} else {
			empty = 0
		}
		for _, sr := range out.Records {
			seq := ""
			if sr.Dynamodb != nil {
				seq = aws.ToString(sr.Dynamodb.SequenceNumber)
			}
			if first && seq != b.StartSequenceNumber {
				return nil, false, nil // the batch's first record is trimmed
			}
			first = false
			if seqLess(b.EndSequenceNumber, seq) {
				return evs, true, nil
			}
			e, ok, err := dynamostore.DecodeStreamRecord(localmapping.EventRecord(sr, b.StreamARN, ""))
			if err != nil {
				return nil, false, fmt.Errorf("aws/streamfailures: record %s: %w", seq, err)
			}
			if ok {
				evs = append(evs, e)
			}
			if seq == b.EndSequenceNumber {
				return evs, true, nil
			}
		}
		iter = out.NextShardIterator
	}
	return nil, false, nil // the batch's last record was not found
}

// gone reports whether err says the stream no longer holds what was asked:
// the records trimmed (24 hours), or the shard or stream gone.
func gone(err error) bool {
	var trimmed *stypes.TrimmedDataAccessException
	var missing *stypes.ResourceNotFoundException
	return errors.As(err, &trimmed) || errors.As(err, &missing)
}

// fromEventsTable scans the events table for the events that occurred in
// the batch's arrival window, widened by Slack, each order's in version order.
func (r *Replayer) fromEventsTable(ctx context.Context, b localmapping.BatchInfo) ([]eventstore.Event, error) {
	if b.ApproximateArrivalOfFirstRecord.IsZero() || b.ApproximateArrivalOfLastRecord.IsZero() {
		return nil, errors.New("aws/streamfailures: the stream no longer holds the records, and the failure record has no arrival times to look for them in the events table")
	}
	from, to := b.ApproximateArrivalOfFirstRecord.Add(-Slack), b.ApproximateArrivalOfLastRecord.Add(Slack)
	var evs []eventstore.Event
	var after *dynamostore.ScanKey
	for {
		page, err := r.cfg.Store.ScanSegment(ctx, 0, 1, after, 0)
		if err != nil {
			return nil, fmt.Errorf("aws/streamfailures: scan the events table: %w", err)
		}
		for _, e := range page.Events {
			if !e.OccurredAt.Before(from) && !e.OccurredAt.After(to) {
				evs = append(evs, e)
			}
		}
		if page.Next == nil {
			break
		}
		after = page.Next
	}
	// A stream's events in version order; the order across streams does
	// not matter (a stream only orders each item's records).
	slices.SortFunc(evs, func(a, b eventstore.Event) int {
		if c := cmp.Compare(a.StreamID, b.StreamID); c != 0 {
			return c
		}
		return cmp.Compare(a.Version, b.Version)
	})
	return evs, nil
}

// seqLess orders stream sequence numbers (decimal strings of any length).
func seqLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}
