package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/orderledger/orderledger/services/servicehttp"
	"github.com/orderledger/orderledger/services/sim"
)

func init() {
	register(command{name: "simulate", summary: "serve the payment and inventory simulators over HTTP", run: runSimulate})
}

// runSimulate serves the simulator over servicehttp until ctx ends, so the saga's HTTP client
// can be pointed at a real HTTP service.
func runSimulate(ctx context.Context, e *env, args []string) error {
	fs := newFlags("simulate", e)
	var cfg sim.Config
	addr := fs.String("addr", "127.0.0.1:8100", "listen address")
	fs.Float64Var(&cfg.PaymentDeclineRate, "sim-payment-decline-rate", 0, "share of charges declined, 0..1 (not retried)")
	fs.Float64Var(&cfg.PaymentErrorRate, "sim-payment-error-rate", 0, "share of payment calls failing transiently, 0..1 (retried)")
	fs.Float64Var(&cfg.RefundErrorRate, "sim-refund-error-rate", 0, "share of refunds failing transiently, 0..1 (at 1 an owed refund is dead-lettered)")
	fs.IntVar(&cfg.InventoryStock, "sim-inventory-stock", 0, "starting stock per product (0: unlimited)")
	fs.DurationVar(&cfg.Latency, "sim-latency", 0, "latency added to every call")
	fs.Uint64Var(&cfg.Seed, "sim-seed", 0, "random seed, so runs repeat (0: a fixed default)")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *addr == "" {
		return usagef("--addr is required")
	}
	s, err := sim.New(cfg)
	if err != nil {
		return usagef("%v", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	// The services' protocol, and the simulator's own record: its counts at
	// GET /stats, each order's net charge at GET /held.
	mux := http.NewServeMux()
	mux.Handle("/", servicehttp.NewHandler(s, s))
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Stats())
	})
	// What each order holds, charges net of refunds: the outside record to
	// hold a ledger's histories against.
	mux.HandleFunc("GET /held", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Held())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(e.stderr, "ledger: simulating payment and inventory on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
