package awsconfig_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/orderledger/orderledger/internal/awsconfig"
)

func TestLoadUsesTheEndpointAndDummyCredentials(t *testing.T) {
	t.Parallel()
	env := map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_REGION": "eu-west-1"}
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "eu-west-1" || aws.ToString(cfg.BaseEndpoint) != "http://127.0.0.1:1" {
		t.Fatalf("region %q endpoint %q", cfg.Region, aws.ToString(cfg.BaseEndpoint))
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != "test" {
		t.Fatalf("credentials %+v, %v", creds, err)
	}
}
