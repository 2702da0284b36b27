package e2e

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/orderledger/orderledger/aws/bootstrap"
	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/internal/ledgertest"
	"github.com/orderledger/orderledger/internal/resources"
)

// TestMotoEnvIsAllTheAWSToolsNeed: in an environment holding nothing but
// PATH and an empty HOME (no ~/.aws), `eval "$(scripts/moto.sh env)"` is
// enough for the real binary to bootstrap an environment through the
// standard AWS configuration chain and to pass its credential check, as
// the README's `aws dynamodb get-item` commands need.
func TestMotoEnvIsAllTheAWSToolsNeed(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	script, err := filepath.Abs("../../scripts/moto.sh")
	if err != nil {
		t.Fatal(err)
	}
	port, _ := os.ReadFile(filepath.Join(filepath.Dir(script), "..", ".cache", "moto", "server.port"))
	if u, err := url.Parse(endpoint); err != nil || u.Port() != strings.TrimSpace(string(port)) {
		msg := "the moto at " + endpoint + " is not the one scripts/moto.sh manages (its `env` would start another)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	name := awstest.UniqueEnv()
	names := resources.For(name)
	cfg := awsconfig.ForEndpoint(endpoint)
	t.Cleanup(func() { _ = bootstrap.Teardown(context.Background(), awsconfig.NewClients(cfg), names) })
	sh := `eval "$("$SCRIPT" env)" && "$LEDGER" aws bootstrap --env "$NAME" >/dev/null && LEDGER_ENV="$NAME" "$LEDGER" dlq list --backend aws && echo "endpoint=$AWS_ENDPOINT_URL"`
	cmd := exec.Command("bash", "-c", sh)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "SCRIPT=" + script, "LEDGER=" + ledgertest.Binary(t), "NAME=" + name}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", sh, err, out)
	}
	if !strings.Contains(string(out), "0 dead letter(s)") || !strings.Contains(string(out), "endpoint="+endpoint) {
		t.Fatalf("output:\n%s", out)
	}
	db := dynamodb.NewFromConfig(cfg)
	if _, err := db.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(names.OrdersTable)}); err != nil {
		t.Fatalf("the bootstrap through moto.sh env made no %s: %v", names.OrdersTable, err)
	}
	// The README's command itself, where the AWS CLI is installed (it is
	// not a test dependency).
	if _, err := exec.LookPath("aws"); err != nil {
		t.Log("no aws CLI on PATH: the README's get-item command itself is not run")
		return
	}
	get := exec.Command("bash", "-c", `eval "$("$SCRIPT" env)" && aws dynamodb get-item --table-name "$TABLE" --key '{"order_id":{"S":"01JZZZZZZZZZZZZZZZZZZZZZZZ"}}'`)
	get.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "SCRIPT=" + script, "TABLE=" + names.OrdersTable}
	if out, err := get.CombinedOutput(); err != nil {
		t.Fatalf("aws dynamodb get-item after eval \"$(scripts/moto.sh env)\": %v\n%s", err, out)
	}
}
