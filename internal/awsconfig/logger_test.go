package awsconfig_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/aws/smithy-go/logging"

	"github.com/orderledger/orderledger/internal/awsconfig"
	ledgerlog "github.com/orderledger/orderledger/internal/logging"
)

// TestSDKLoggerCarriesTheCallsContext: a line the SDK logs for an operation
// (through smithy's logging.WithContext, as the SDK does) reaches slog's
// default logger with the operation's context, so the ledger's handler
// adds its fields. Not parallel: it swaps slog's default logger.
func TestSDKLoggerCarriesTheCallsContext(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(ledgerlog.New(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	defer slog.SetDefault(prev)
	ctx := ledgerlog.WithOrderID(context.Background(), "01ORDER")
	logging.WithContext(ctx, awsconfig.SDKLogger{}).Logf(logging.Warn, "retrying %s", "PutItem")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("%q: %v", buf.String(), err)
	}
	if m["msg"] != "aws sdk: retrying PutItem" || m["classification"] != "WARN" || m["order_id"] != "01ORDER" || m["level"] != "DEBUG" {
		t.Fatalf("SDK line %v", m)
	}
}
