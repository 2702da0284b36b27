package lambdas_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/orderledger/orderledger/aws/lambdas"
)

func getenv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestLoadConfigReadsEveryVariableOnce(t *testing.T) {
	t.Parallel()
	read := map[string]int{}
	vars := map[string]string{
		"LEDGER_ENV":                 "prod-eu",
		"LEDGER_API_TOKEN":           "s3cret",
		"LEDGER_SERVICES_URL":        "https://services.internal:8443",
		"LEDGER_EVENTS_TOPIC_ARN":    "arn:aws:sns:eu-west-1:123456789012:prod-eu-order-events",
		"LEDGER_COMPLETED_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:prod-eu-order-completed",
		"LEDGER_ORDERS_TABLE":        "prod-eu-orders-blue",
		"AWS_REGION":                 "eu-west-1",
		"AWS_ENDPOINT_URL":           "http://127.0.0.1:1",
	}
	c, err := lambdas.LoadConfig(context.Background(), func(k string) string { read[k]++; return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Env != "prod-eu" || c.APIToken != "s3cret" || c.ServicesURL != vars["LEDGER_SERVICES_URL"] ||
		c.EventsTopicARN != vars["LEDGER_EVENTS_TOPIC_ARN"] || c.CompletedTopicARN != vars["LEDGER_COMPLETED_TOPIC_ARN"] || c.OrdersTable != "prod-eu-orders-blue" {
		t.Fatalf("config %+v", c)
	}
	if c.AWS.Region != "eu-west-1" || aws.ToString(c.AWS.BaseEndpoint) != "http://127.0.0.1:1" {
		t.Fatalf("AWS config: region %q endpoint %q", c.AWS.Region, aws.ToString(c.AWS.BaseEndpoint))
	}
	for _, k := range []string{"LEDGER_ENV", "LEDGER_API_TOKEN", "LEDGER_SERVICES_URL", "LEDGER_EVENTS_TOPIC_ARN", "LEDGER_COMPLETED_TOPIC_ARN", "LEDGER_ORDERS_TABLE"} {
		if read[k] != 1 {
			t.Errorf("%s read %d times, want once", k, read[k])
		}
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := lambdas.LoadConfig(context.Background(), getenv(map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Env != "dev" || c.APIToken != "" || c.ServicesURL != "" || c.EventsTopicARN != "" || c.CompletedTopicARN != "" || c.OrdersTable != "" {
		t.Fatalf("defaults %+v", c)
	}
}

// TestLoadConfigFailsFast: every bad or missing value is an error at cold
// start that names the variable.
func TestLoadConfigFailsFast(t *testing.T) {
	t.Parallel()
	const arn = "arn:aws:sns:us-east-1:123456789012:dev-order-events"
	cases := []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"LEDGER_ENV": "Prod"}, "LEDGER_ENV"},
		{map[string]string{"LEDGER_ENV": "dev_1"}, "LEDGER_ENV"},
		{map[string]string{"LEDGER_ENV": strings.Repeat("a", 41)}, "LEDGER_ENV"},
		{map[string]string{"LEDGER_ORDERS_TABLE": "dev orders"}, "LEDGER_ORDERS_TABLE"},
		{map[string]string{"LEDGER_ORDERS_TABLE": "ab"}, "LEDGER_ORDERS_TABLE"},
		{map[string]string{"LEDGER_SERVICES_URL": "services:8080"}, "LEDGER_SERVICES_URL"},
		{map[string]string{"LEDGER_SERVICES_URL": "ftp://services"}, "LEDGER_SERVICES_URL"},
		{map[string]string{"LEDGER_SERVICES_URL": "http://"}, "LEDGER_SERVICES_URL"},
		{map[string]string{"LEDGER_EVENTS_TOPIC_ARN": arn}, "LEDGER_COMPLETED_TOPIC_ARN"},
		{map[string]string{"LEDGER_COMPLETED_TOPIC_ARN": arn}, "LEDGER_EVENTS_TOPIC_ARN"},
		{map[string]string{"LEDGER_EVENTS_TOPIC_ARN": "dev-order-events", "LEDGER_COMPLETED_TOPIC_ARN": arn}, "LEDGER_EVENTS_TOPIC_ARN="},
		{map[string]string{"LEDGER_EVENTS_TOPIC_ARN": arn, "LEDGER_COMPLETED_TOPIC_ARN": "arn:aws:sqs:us-east-1:123456789012:q"}, "LEDGER_COMPLETED_TOPIC_ARN="},
	}
	for _, c := range cases {
		c.vars["AWS_ENDPOINT_URL"] = "http://127.0.0.1:1"
		_, err := lambdas.LoadConfig(context.Background(), getenv(c.vars))
		if err == nil || !strings.HasPrefix(err.Error(), "lambdas: config: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %s", c.vars, err, c.want)
		}
	}
}
