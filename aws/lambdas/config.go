package lambdas

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/resources"
)

// ServicesTimeout bounds each call of the processor to the payment and
// inventory services named by LEDGER_SERVICES_URL.
const ServicesTimeout = 5 * time.Second

// Config is everything a deployed function reads from its environment. It
// is loaded once, at cold start, by LoadConfig; no handler reads the
// environment afterwards.
type Config struct {
	// AWS is the SDK configuration from the standard chain (AWS_REGION,
	// credentials, AWS_ENDPOINT_URL...).
	AWS aws.Config
	// Env prefixes every resource name (LEDGER_ENV; resources.DefaultEnv
	// when unset).
	Env string
	// APIToken, when set, is the bearer token the api function requires on
	// /orders and /admin (LEDGER_API_TOKEN).
	APIToken string
	// ServicesURL, when set, is the base URL of the payment and inventory
	// services the processor calls (LEDGER_SERVICES_URL); unset, it calls
	// the simulators.
	ServicesURL string
	// OrdersTable, when set, is the read table to use instead of
	// <env>-orders (LEDGER_ORDERS_TABLE: a blue/green rebuild's table).
	OrdersTable string
	// EventsTopicARN and CompletedTopicARN are the publisher's topics
	// (LEDGER_EVENTS_TOPIC_ARN, LEDGER_COMPLETED_TOPIC_ARN), both or neither.
	// Unset, the publisher derives them on its first invocation from its
	// own function ARN (same partition, region and account).
	EventsTopicARN, CompletedTopicARN string
}

// LoadConfig reads the configuration through getenv (os.Getenv in a
// function's main) and checks every value, so that a bad or missing one
// fails the cold start with an error naming the variable rather than an
// invocation later.
func LoadConfig(ctx context.Context, getenv func(string) string) (Config, error) {
	c := Config{
		Env:               strings.TrimSpace(getenv("LEDGER_ENV")),
		APIToken:          getenv("LEDGER_API_TOKEN"),
		ServicesURL:       strings.TrimSpace(getenv("LEDGER_SERVICES_URL")),
		OrdersTable:       strings.TrimSpace(getenv(resources.OrdersTableEnv)),
		EventsTopicARN:    strings.TrimSpace(getenv("LEDGER_EVENTS_TOPIC_ARN")),
		CompletedTopicARN: strings.TrimSpace(getenv("LEDGER_COMPLETED_TOPIC_ARN")),
	}
	if c.Env == "" {
		c.Env = resources.DefaultEnv
	}
	if !resources.ValidEnv(c.Env) {
		return Config{}, fmt.Errorf("lambdas: config: LEDGER_ENV=%q: want 1..40 lowercase letters, digits or '-'", c.Env)
	}
	if c.OrdersTable != "" && !resources.ValidTableName(c.OrdersTable) {
		return Config{}, fmt.Errorf("lambdas: config: %s=%q: want a DynamoDB table name (3..255 letters, digits, '_', '-', '.')", resources.OrdersTableEnv, c.OrdersTable)
	}
	if c.ServicesURL != "" {
		if u, err := url.Parse(c.ServicesURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Config{}, fmt.Errorf("lambdas: config: LEDGER_SERVICES_URL=%q: want http(s)://host[:port]", c.ServicesURL)
		}
	}
	if (c.EventsTopicARN == "") != (c.CompletedTopicARN == "") {
		return Config{}, fmt.Errorf("lambdas: config: set both LEDGER_EVENTS_TOPIC_ARN and LEDGER_COMPLETED_TOPIC_ARN, or neither")
	}
	for _, v := range []struct{ name, value string }{
		{"LEDGER_EVENTS_TOPIC_ARN", c.EventsTopicARN}, {"LEDGER_COMPLETED_TOPIC_ARN", c.CompletedTopicARN},
	} {
		if v.value != "" && !topicARN(v.value) {
			return Config{}, fmt.Errorf("lambdas: config: %s=%q: want arn:PARTITION:sns:REGION:ACCOUNT:TOPIC", v.name, v.value)
		}
	}
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{Getenv: getenv})
	if err != nil {
		return Config{}, fmt.Errorf("lambdas: config: %w", err)
	}
	c.AWS = cfg
	return c, nil
}

// topicARN reports whether s has the shape of an SNS topic ARN.
func topicARN(s string) bool {
	p := strings.Split(s, ":")
	return len(p) == 6 && p[0] == "arn" && p[1] != "" && p[2] == "sns" && p[3] != "" && p[4] != "" && p[5] != ""
}
