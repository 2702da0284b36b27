package awsapp_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orderledger/orderledger/aws/awsapp"
	"github.com/orderledger/orderledger/aws/bootstrap"
	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/internal/resources"
)

type readiness struct {
	status      int
	contentType string
	body        struct {
		Status any    `json:"status"` // "ready" on 200, 503 in the problem
		Type   string `json:"type"`   // the problem's type on 503
		Checks []struct {
			Name   string `json:"name"`
			OK     bool   `json:"ok"`
			Detail string `json:"detail"`
		} `json:"checks"`
	}
}

func getReady(t *testing.T, base string) readiness {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	res, err := c.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer res.Body.Close()
	r := readiness{status: res.StatusCode, contentType: res.Header.Get("Content-Type")}
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &r.body); err != nil {
		t.Fatalf("GET /readyz: %d %s: %v", res.StatusCode, b, err)
	}
	return r
}

// waitReady polls /readyz until it answers want, failing after limit.
func waitReady(t *testing.T, base string, want int, limit time.Duration) (readiness, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		r := getReady(t, base)
		if r.status == want {
			return r, time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("/readyz still %d after %v, want %d: %+v", r.status, limit, want, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReadyzFollowsTheEmulator runs the AWS runtime in process on a moto
// server of its own, through the real SDK: /readyz answers 200; while moto
// hangs (SIGSTOP) it answers 503 within 5 s, and 200 once moto runs again;
// once moto is stopped it answers 503 (problem+json, every check failing)
// within 5 s and a store read answers 503 too, not 500; moto started again
// on the same port is empty, so /readyz says the resources are missing
// until they are bootstrapped again, and then answers 200.
func TestReadyzFollowsTheEmulator(t *testing.T) {
	t.Parallel()
	moto := awstest.StartMoto(t)
	cfg := awsconfig.ForEndpoint(moto.Endpoint())
	cfg.RetryMaxAttempts = 3 // the SDK's default on AWS; the readiness checks make one attempt anyway
	clients := awsconfig.NewClients(cfg)
	names := resources.For(awstest.UniqueEnv())
	ctx := context.Background()
	if _, err := bootstrap.Bootstrap(ctx, clients, names); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	a, err := awsapp.Open(ctx, awsapp.Config{AWS: cfg, Env: names.Env, Addr: "127.0.0.1:0",
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Started: func(addr string) { addrc <- addr }})
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- a.Serve(serveCtx)
	}()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	var base string
	select {
	case addr := <-addrc:
		base = "http://" + addr
	case err := <-served:
		t.Fatalf("serve: %v", err)
	}

	r := getReady(t, base)
	if r.status != http.StatusOK || r.body.Status != "ready" || len(r.body.Checks) != 3 {
		t.Fatalf("/readyz with moto up: %d %+v", r.status, r.body)
	}
	for _, c := range r.body.Checks {
		if !c.OK {
			t.Errorf("check %s failing with moto up: %s", c.Name, c.Detail)
		}
	}

	moto.Pause()
	r, took := waitReady(t, base, http.StatusServiceUnavailable, 5*time.Second)
	t.Logf("/readyz answered 503 %v after moto hung", took.Round(time.Millisecond))
	for _, c := range r.body.Checks {
		if c.OK || c.Detail != "not answering" {
			t.Errorf("check %s with moto hung: ok %v, %q", c.Name, c.OK, c.Detail)
		}
	}
	moto.Resume()
	waitReady(t, base, http.StatusOK, 10*time.Second)

	moto.Stop()
	r, took = waitReady(t, base, http.StatusServiceUnavailable, 5*time.Second)
	t.Logf("/readyz answered 503 %v after moto stopped", took.Round(time.Millisecond))
	if !strings.HasPrefix(r.contentType, "application/problem+json") || r.body.Type != "urn:orderledger:problem:unavailable" {
		t.Errorf("/readyz with moto down: %s %+v", r.contentType, r.body)
	}
	if len(r.body.Checks) != 3 {
		t.Fatalf("/readyz with moto down: %+v", r.body)
	}
	for _, c := range r.body.Checks {
		if c.OK || c.Detail != "not answering" {
			t.Errorf("check %s with moto down: ok %v, %q", c.Name, c.OK, c.Detail)
		}
	}
	res, err := http.Get(base + "/orders/01KAY9D3J8Q6ZC2W0F7M5T4H1B?consistent=true")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /orders/{id} with the store down: %d, want 503", res.StatusCode)
	}

	moto.Start()
	r = getReady(t, base)
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz on an empty moto: %d %+v", r.status, r.body)
	}
	for _, c := range r.body.Checks {
		if c.OK || !strings.HasPrefix(c.Detail, "missing") {
			t.Errorf("check %s on an empty moto: ok %v, %q", c.Name, c.OK, c.Detail)
		}
	}
	if _, err := bootstrap.Bootstrap(ctx, clients, names); err != nil {
		t.Fatal(err)
	}
	waitReady(t, base, http.StatusOK, 5*time.Second)
}
