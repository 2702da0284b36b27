// Package resources is the single source of truth for the names and settings
// of the AWS resources orderledger uses (the queue semantics both backends
// share, the redrive count and the message attribute names, are package
// messaging's). The Go adapters, `ledger aws
// bootstrap` and the Terraform checks all read them from here, so the code and
// the infrastructure cannot drift apart.
package resources

import "time"

// DefaultEnv is the environment prefix used when none is configured; the seed
// deployment calls it "dev".
const DefaultEnv = "dev"

// Settings shared by the code and Terraform.
const (
	// StreamViewType is the DynamoDB Streams view the projector and publisher read.
	StreamViewType = "NEW_IMAGE"
	// StatusIndex is the read table's global secondary index for listing by status.
	StatusIndex = "status-index"
	// CustomerIndex is the read table's global secondary index for listing by customer.
	CustomerIndex = "customer-index"
	// IdempotencyTTLAttribute is the events table attribute that expires idempotency records.
	IdempotencyTTLAttribute = "expires_at"
	// ProcessorTimeout is the processor Lambda's timeout.
	ProcessorTimeout = 30 * time.Second
	// VisibilityTimeout is the processing queue's visibility timeout: 6x the
	// processor timeout, as AWS recommends for Lambda event sources.
	VisibilityTimeout = 6 * ProcessorTimeout
	// StreamMaxRetryAttempts is how many times the projector's and the
	// publisher's stream mappings retry a failing record after its first
	// try before they send its batch's failure record to the stream
	// failures queue (Terraform's stream_maximum_retry_attempts default).
	StreamMaxRetryAttempts = 5
	// FailureRetention is how long the stream failures queue keeps a
	// failure record: SQS's longest, 14 days (a stream keeps its records
	// for 24 hours only; the replay then falls back to the events table).
	FailureRetention = 14 * 24 * time.Hour
)

// Names are the names of one environment's resources.
type Names struct {
	Env             string
	EventsTable     string // the append-only event log: stream_id / version
	OrdersTable     string // the read table (projections), the seed's dev-orders
	EventsTopic     string // SNS topic for OrderPlaced, feeds the processing queue
	CompletedTopic  string // SNS topic for OrderCompleted / OrderFailed / OrderCancelled
	ProcessingQueue string // SQS queue the processor Lambda consumes
	DeadLetterQueue string // SQS dead-letter queue of ProcessingQueue
	// StreamFailureQueue receives the failure records of the stream
	// mappings (projector, publisher) whose retries ran out.
	StreamFailureQueue string
	ProcessorFunc      string // Lambda: SQS -> order saga
	ProjectorFunc      string // Lambda: events stream -> read table
	PublisherFunc      string // Lambda: events stream -> SNS
	APIFunc            string // Lambda: API Gateway HTTP API -> REST API
}

// ValidEnv reports whether env can prefix the resource names: 1..40
// lowercase letters, digits or '-' (what every resource kind accepts).
func ValidEnv(env string) bool {
	if env == "" || len(env) > 40 {
		return false
	}
	for _, r := range env {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// OrdersTableEnv names the one setting that points the runtime, the
// Lambdas and the CLI at another read table than <env>-orders: the table a
// blue/green rebuild filled (`ledger projections rebuild --backend aws
// --into NAME`). Terraform's orders_table variable sets it.
const OrdersTableEnv = "LEDGER_ORDERS_TABLE"

// ValidTableName reports whether name is a DynamoDB table name: 3..255
// letters, digits, '_', '-' or '.'.
func ValidTableName(name string) bool {
	if len(name) < 3 || len(name) > 255 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// WithOrdersTable returns n reading and writing the read table table
// instead (n unchanged when table is empty).
func (n Names) WithOrdersTable(table string) Names {
	if table != "" {
		n.OrdersTable = table
	}
	return n
}

// For returns the resource names of environment env ("dev" when empty).
func For(env string) Names {
	if env == "" {
		env = DefaultEnv
	}
	return Names{
		Env:                env,
		EventsTable:        env + "-order-event-log",
		OrdersTable:        env + "-orders",
		EventsTopic:        env + "-order-events",
		CompletedTopic:     env + "-order-completed",
		ProcessingQueue:    env + "-order-processing",
		DeadLetterQueue:    env + "-order-dlq",
		StreamFailureQueue: env + "-order-stream-failures",
		ProcessorFunc:      env + "-order-processor",
		ProjectorFunc:      env + "-order-projector",
		PublisherFunc:      env + "-order-publisher",
		APIFunc:            env + "-order-api",
	}
}
