package awstest

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// Prices are public on-demand list prices in USD, region us-east-1, as
// published by AWS and read on PricesDated (check before relying on them).
// Free tiers are ignored.
type Prices struct {
	Dated string
	// DynamoDB on-demand, standard table class, per million request units.
	DynamoDBWriteUnit, DynamoDBReadUnit float64
	// SQS standard queue, per million requests (each 64 KiB chunk is one).
	SQSRequest float64
	// SNS standard topic, per million publishes; deliveries to SQS are free.
	SNSPublish float64
	// Lambda on arm64: per million requests, and per GB-second.
	LambdaRequest, LambdaGBSecond float64
	// API Gateway HTTP API, per million requests.
	HTTPAPIRequest float64
}

// PricesDated is when Default was read.
const PricesDated = "2026-11-25"

// Default are the us-east-1 on-demand prices (DynamoDB at the rates in force
// since the November 2024 reduction).
var Default = Prices{
	Dated:             PricesDated,
	DynamoDBWriteUnit: 0.625,
	DynamoDBReadUnit:  0.125,
	SQSRequest:        0.40,
	SNSPublish:        0.50,
	LambdaRequest:     0.20,
	LambdaGBSecond:    0.0000133334 * 1e6, // per million GB-seconds
	HTTPAPIRequest:    1.00,
}

// Order is what one order costs, in billed quantities per order.
type Order struct {
	WriteUnits, ReadUnits float64 // DynamoDB request units
	SNSRequests           float64 // billed publish requests
	SQSRequests           float64 // deliveries from SNS, receives, deletes
	// LambdaInvocations is how many function invocations one order causes.
	LambdaInvocations float64
	// LambdaGBSeconds is the billed duration times memory of those invocations.
	LambdaGBSeconds float64
	// HTTPRequests is how many API Gateway requests one order takes.
	HTTPRequests float64
}

// Measured is the order u metered, alone: every publish its own request (a
// PublishBatch of small messages is billed as one), and the DynamoDB units
// as metered. The Lambda and SQS lines are left to the caller.
func Measured(u Usage) Order {
	return Order{WriteUnits: u.WriteUnits, ReadUnits: u.ReadUnits,
		SNSRequests: float64(u.Calls["SNS.Publish"] + u.Calls["SNS.PublishBatch"]), SQSRequests: float64(u.Service("SQS"))}
}

// SeedOrder is what one order was measured to cost, by the parts the
// batching of a loaded deployment changes (TestServeAWSSeedOrderCompletes
// measures it).
type SeedOrder struct {
	StreamRecords   float64 // events, one stream record each
	Published       float64 // messages the publisher sends (OrderPlaced, the outcome)
	EventWriteUnits float64 // the event table's write units
	ViewInsertUnits float64 // the read table's first write of the order, indexes included
	ViewUpdateUnits float64 // a later write that changes its status
	ReadUnits       float64 // the processor's stream read and the projector's view reads
}

// Load is the traffic and the settings the cost model assumes: a sustained
// rate of orders on one stream shard, and the event-source mappings of
// terraform/modules/lambda. Lambda reads a stream shard StreamPollsPerSecond
// times a second and hands a function at most its batch size; with a
// batching window it waits up to the window to fill the batch.
type Load struct {
	OrdersPerSecond      float64
	StreamPollsPerSecond float64 // 4, Lambda's documented rate per shard
	PublisherBatchSize   float64 // stream_batch_size; no window (notifications stay prompt)
	ProjectorBatchSize   float64 // projector_batch_size
	ProjectorWindow      float64 // seconds, projector_batching_window_seconds
	// OrderSpan is the seconds from an order's first event to its last:
	// its events fall in one projector batch unless a batch boundary cuts
	// that span, which happens to the fraction OrderSpan / (time one batch
	// covers) of the orders; those are written twice.
	OrderSpan          float64
	ProcessorBatchSize float64 // the SQS mapping's batch, filled within its window at this load
	// Billed seconds: per API request, per processed message, per stream
	// batch; at MemoryGB.
	APISeconds, ProcessorSeconds, StreamBatchSeconds, MemoryGB float64
}

// Model returns what one order costs at load l, from what one order alone
// was measured to cost.
func (l Load) Model(m SeedOrder) Order {
	recordsPerSecond := l.OrdersPerSecond * m.StreamRecords
	pubBatch := min(l.PublisherBatchSize, max(1, recordsPerSecond/l.StreamPollsPerSecond))
	ordersPerPubBatch := pubBatch / m.StreamRecords
	// Two topics, the messages shared evenly, PublishBatch of up to 10.
	perTopic := max(1, ordersPerPubBatch*m.Published/2)
	snsPerOrder := 2 * math.Ceil(perTopic/10) / ordersPerPubBatch
	projBatch := min(l.ProjectorBatchSize, max(1, recordsPerSecond*l.ProjectorWindow))
	covered := projBatch / recordsPerSecond // seconds of traffic in one projector batch
	cut := min(1, l.OrderSpan/covered)
	streamInvocations := m.StreamRecords/pubBatch + m.StreamRecords/projBatch
	return Order{
		WriteUnits:        m.EventWriteUnits + m.ViewInsertUnits + cut*m.ViewUpdateUnits,
		ReadUnits:         m.ReadUnits,
		SNSRequests:       snsPerOrder,
		SQSRequests:       1 + 2/l.ProcessorBatchSize, // SNS's delivery; a receive and a delete per batch
		LambdaInvocations: 1 + 1/l.ProcessorBatchSize + streamInvocations,
		LambdaGBSeconds:   (l.APISeconds + l.ProcessorSeconds + streamInvocations*l.StreamBatchSeconds) * l.MemoryGB,
		HTTPRequests:      1,
	}
}

// Line is one row of a cost breakdown.
type Line struct {
	Item     string
	Quantity float64 // per order
	Unit     string
	USD      float64 // per million orders
}

// PerMillion returns the cost of a million orders, line by line.
func (p Prices) PerMillion(o Order) []Line {
	return []Line{
		{"DynamoDB write request units", o.WriteUnits, "WRU", o.WriteUnits * p.DynamoDBWriteUnit},
		{"DynamoDB read request units", o.ReadUnits, "RRU", o.ReadUnits * p.DynamoDBReadUnit},
		{"SNS publishes", o.SNSRequests, "request", o.SNSRequests * p.SNSPublish},
		{"SQS requests", o.SQSRequests, "request", o.SQSRequests * p.SQSRequest},
		{"Lambda invocations", o.LambdaInvocations, "request", o.LambdaInvocations * p.LambdaRequest},
		{"Lambda compute", o.LambdaGBSeconds, "GB-s", o.LambdaGBSeconds * p.LambdaGBSecond},
		{"API Gateway HTTP API", o.HTTPRequests, "request", o.HTTPRequests * p.HTTPAPIRequest},
	}
}

// Total sums lines.
func Total(lines []Line) float64 {
	t := 0.0
	for _, l := range lines {
		t += l.USD
	}
	return t
}

// WriteTable prints the breakdown as a Markdown table.
func WriteTable(w io.Writer, lines []Line) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "| item\t| per order\t| unit\t| USD per million orders\t|")
	fmt.Fprintln(tw, "|---\t|---:\t|---\t|---:\t|")
	for _, l := range lines {
		fmt.Fprintf(tw, "| %s\t| %s\t| %s\t| %.2f\t|\n", l.Item, trim(l.Quantity), l.Unit, l.USD)
	}
	fmt.Fprintf(tw, "| **total**\t|\t|\t| **%.2f**\t|\n", Total(lines))
	tw.Flush()
}

// WriteCalls prints the counted calls, one per line.
func WriteCalls(w io.Writer, u Usage) {
	ops := u.Operations()
	sort.Strings(ops)
	var parts []string
	for _, op := range ops {
		parts = append(parts, fmt.Sprintf("%s %d", op, u.Calls[op]))
	}
	fmt.Fprintln(w, strings.Join(parts, ", "))
}

func trim(f float64) string {
	s := fmt.Sprintf("%.3f", f)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}
