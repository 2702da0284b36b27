package awstest

import (
	"fmt"
	"io"
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

// Order is what one order costs in requests, with the Lambda assumptions.
type Order struct {
	// Usage is the metered AWS usage of one order (DynamoDB units, SNS and
	// SQS requests).
	Usage Usage
	// LambdaInvocations is how many function invocations one order causes.
	LambdaInvocations float64
	// LambdaGBSeconds is the billed duration times memory of those invocations.
	LambdaGBSeconds float64
	// HTTPRequests is how many API Gateway requests one order takes.
	HTTPRequests float64
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
	u := o.Usage
	lines := []Line{
		{"DynamoDB write request units", u.WriteUnits, "WRU", u.WriteUnits * p.DynamoDBWriteUnit},
		{"DynamoDB read request units", u.ReadUnits, "RRU", u.ReadUnits * p.DynamoDBReadUnit},
		{"SNS publishes", float64(u.Calls["SNS.Publish"]), "request", float64(u.Calls["SNS.Publish"]) * p.SNSPublish},
		{"SQS requests", float64(u.Service("SQS")), "request", float64(u.Service("SQS")) * p.SQSRequest},
		{"Lambda invocations", o.LambdaInvocations, "request", o.LambdaInvocations * p.LambdaRequest},
		{"Lambda compute", o.LambdaGBSeconds, "GB-s", o.LambdaGBSeconds * p.LambdaGBSecond},
		{"API Gateway HTTP API", o.HTTPRequests, "request", o.HTTPRequests * p.HTTPAPIRequest},
	}
	return lines
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
