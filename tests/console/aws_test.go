package console

import (
	"context"
	"fmt"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/internal/ledgertest"
)

// TestConsoleAWS: the same console from `ledger serve --backend aws` on the
// AWS emulator, where GET /feed answers 501: the orders page says it polls,
// an order placed through the API appears and completes without a reload,
// its timeline shows its four events, and a rebuild reaches 100%.
func TestConsoleAWS(t *testing.T) {
	endpoint := awstest.Endpoint(t) // skips without the emulator (fails under CI)
	ctx := browser(t)
	p := page{t: t, ctx: ctx}
	env := awstest.UniqueEnv()
	t.Setenv("AWS_ENDPOINT_URL", endpoint)
	t.Setenv("LEDGER_ENV", env)
	if out, err := exec.Command(ledgertest.Binary(t), "aws", "bootstrap", "--env", env).CombinedOutput(); err != nil {
		t.Fatalf("ledger aws bootstrap: %v\n%s", err, out)
	}
	srv := ledgertest.Serve(t, t.TempDir(), "--backend", "aws")
	cli, err := api.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}

	p.do("open the console", chromedp.Navigate(srv.URL+"/console/"))
	p.waitFor("the polling notice", `document.getElementById('live-mode') && document.getElementById('live-mode').dataset.mode === 'polling'`)
	if !eval[bool](p, `document.getElementById('token-panel').hidden`) {
		t.Error("the console asked for a token the server does not need")
	}
	o, err := cli.Place(context.Background(), api.PlaceRequest{CustomerName: "Ada Lovelace", ProductName: "Brass gear", Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	p.waitFor("the order Completed in the table", fmt.Sprintf(`(document.querySelector('tr[data-order-id=%q] [data-status]') || {}).dataset?.status === 'Completed'`, o.OrderID))
	if n := eval[int](p, `performance.getEntriesByType('navigation').length`); n != 1 {
		t.Errorf("the page navigated %d times; want 1 (no reload)", n)
	}
	p.axeCheck("orders (aws)")

	p.do("open the order", chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-order-id=%q] a`, o.OrderID))))
	p.waitFor("the timeline's four events", `document.querySelectorAll('#timeline li.event').length === 4`)

	p.route("#/projections")
	p.waitFor("the projections page", `!!document.getElementById('rebuild-start')`)
	p.do("start a rebuild", chromedp.Click(chromedp.CSS("#rebuild-start")))
	p.waitFor("the rebuild at 100%", `document.getElementById('rebuild-label').dataset.pct === '100' && document.getElementById('rebuild-label').textContent.startsWith('Finished')`)

	p.route("#/dlq")
	p.waitFor("the empty dead-letter list", `!!document.querySelector('#dlq-table') && document.querySelector('#dlq-table tbody').textContent.includes('The dead-letter queue is empty')`)
	p.route("#/health")
	p.waitFor("the readiness checks", `document.querySelectorAll('#ready-table tbody tr').length >= 1`)
}
