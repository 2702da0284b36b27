package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/orderledger/orderledger/app"
	"github.com/orderledger/orderledger/aws/awsapp"
	"github.com/orderledger/orderledger/internal/httpserver"
	"github.com/orderledger/orderledger/internal/logging"
	"github.com/orderledger/orderledger/services/servicehttp"
	"github.com/orderledger/orderledger/services/sim"
)

func init() {
	register(command{name: "serve", summary: "run the API and every worker in one process", run: runServe})
	registerServeBackend("embedded", serveEmbedded)
}

// serveOptions are the flags of `ledger serve`, shared by every backend.
type serveOptions struct {
	Addr         string
	Data         string
	Backend      string
	Workers      int
	RetryBackoff time.Duration
	Sim          sim.Config
	// ServicesURL sends payment and inventory calls to an external service
	// (LEDGER_SERVICES_URL) instead of the in-process simulator.
	ServicesURL   string
	NotifyWebhook string
	// Token, from --api-token or LEDGER_API_TOKEN, guards /orders and /admin.
	Token string
	// LocalMappings runs the local event-source mappings (aws backend). Off
	// where the deployed Lambdas consume the stream and the queue, as in the
	// ECS service Terraform deploys (LEDGER_LOCAL_MAPPINGS=false).
	LocalMappings bool
	// ShutdownTimeout bounds, on shutdown, the drain of requests in flight
	// and then that of the workers, each.
	ShutdownTimeout time.Duration
	// Logger writes JSON lines to stderr.
	Logger *slog.Logger
}

// serveBackends maps --backend to the function that serves with it until ctx
// ends. "embedded" is registered here; other backends register themselves
// from their own files with registerServeBackend.
var serveBackends = map[string]func(ctx context.Context, e *env, o serveOptions) error{}

func registerServeBackend(name string, run func(ctx context.Context, e *env, o serveOptions) error) {
	if _, dup := serveBackends[name]; dup {
		panic("ledger: serve backend registered twice: " + name)
	}
	serveBackends[name] = run
}

func runServe(ctx context.Context, e *env, args []string) error {
	fs := newFlags("serve", e)
	var o serveOptions
	fs.StringVar(&o.Addr, "addr", ":8000", "listen address of the HTTP API")
	fs.StringVar(&o.Data, "data", "./data", "data directory (embedded backend): events, views and queues")
	fs.StringVar(&o.Backend, "backend", "embedded", "storage and messaging backend: "+strings.Join(backendNames(), " or "))
	fs.IntVar(&o.Workers, "workers", app.DefaultWorkers, "order processing workers: orders handled at once. "+
		"Each spends most of its time waiting for durable writes that concurrent workers share, so more workers "+
		"overlap more of them, up to about 32 on 2 cores (figures in BENCHMARKS.md); "+
		"with --backend aws the default is "+strconv.Itoa(awsapp.DefaultWorkers)+" queue pollers")
	fs.DurationVar(&o.RetryBackoff, "retry-backoff", app.DefaultRetryBackoff, "delay before a failed processing attempt is retried")
	fs.Float64Var(&o.Sim.PaymentDeclineRate, "sim-payment-decline-rate", 0, "simulator: share of charges declined, 0..1 (not retried)")
	fs.Float64Var(&o.Sim.PaymentErrorRate, "sim-payment-error-rate", 0, "simulator: share of payment calls failing transiently, 0..1 (retried)")
	fs.Float64Var(&o.Sim.RefundErrorRate, "sim-refund-error-rate", 0, "simulator: share of refunds failing transiently, 0..1 (at 1 an owed refund is dead-lettered: a dead letter on purpose)")
	fs.IntVar(&o.Sim.InventoryStock, "sim-inventory-stock", 0, "simulator: starting stock per product (0: unlimited)")
	fs.DurationVar(&o.Sim.Latency, "sim-latency", 0, "simulator: latency added to every service call")
	fs.Uint64Var(&o.Sim.Seed, "sim-seed", 0, "simulator: random seed, so runs repeat (0: a fixed default)")
	fs.StringVar(&o.ServicesURL, "services-url", "", "payment and inventory service speaking the simulator's HTTP API, e.g. a `ledger simulate --addr` (default: the in-process simulator; the --sim-* knobs then do not apply)")
	fs.StringVar(&o.NotifyWebhook, "notify-webhook", "", "URL that receives order outcome notifications (POST, JSON)")
	fs.StringVar(&o.Token, "api-token", "", "bearer token required on /orders and /admin (prefer LEDGER_API_TOKEN)")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", httpserver.DefaultShutdownTimeout, "on SIGTERM or Ctrl-C, how long requests in flight may take to finish, and then the workers")
	fs.BoolVar(&o.LocalMappings, "local-mappings", true, "aws backend: poll the events stream and processing queue in this process (false where Lambdas do)")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if o.Backend == "aws" && !flagGiven(fs, e, "workers") {
		o.Workers = awsapp.DefaultWorkers
	}
	switch {
	case o.Workers < 1:
		return usagef("--workers must be at least 1, not %d", o.Workers)
	case o.RetryBackoff < 0:
		return usagef("--retry-backoff must not be negative")
	case o.ShutdownTimeout <= 0:
		return usagef("--shutdown-timeout must be positive")
	case o.Addr == "":
		return usagef("--addr is required")
	}
	if err := o.Sim.Validate(); err != nil {
		return usagef("%v", err)
	}
	if o.ServicesURL != "" {
		if _, err := servicehttp.NewClient(o.ServicesURL, 0); err != nil {
			return usagef("--services-url: %v", err)
		}
		for _, f := range []string{"sim-payment-decline-rate", "sim-payment-error-rate", "sim-refund-error-rate", "sim-inventory-stock", "sim-latency", "sim-seed"} {
			if flagGiven(fs, e, f) {
				return usagef("--%s configures the in-process simulator, which --services-url replaces: set it on the service instead", f)
			}
		}
	}
	if o.NotifyWebhook != "" && !strings.HasPrefix(o.NotifyWebhook, "http://") && !strings.HasPrefix(o.NotifyWebhook, "https://") {
		return usagef("--notify-webhook must be an http:// or https:// URL")
	}
	if !o.LocalMappings && o.Backend != "aws" {
		return usagef("--local-mappings=false applies to --backend aws only")
	}
	run, ok := serveBackends[o.Backend]
	if !ok {
		return usagef("--backend must be %s, not %q", strings.Join(backendNames(), " or "), o.Backend)
	}
	// JSON lines with trace_id, request_id and order_id from the context
	// (internal/logging). The storage engine's and the AWS SDK's lines
	// (internal/pebblelog, internal/awsconfig) go to slog's default
	// logger: the same JSON lines.
	o.Logger = logging.New(e.stderr, nil)
	slog.SetDefault(o.Logger)
	return run(ctx, e, o)
}

// flagGiven reports whether flag name was set on the command line or through
// its LEDGER_* environment variable.
func flagGiven(fs *flag.FlagSet, e *env, name string) bool {
	given := e.getenv("LEDGER_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))) != ""
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

func backendNames() []string {
	var names []string
	for n := range serveBackends {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// serveEmbedded runs everything in this process on the data directory.
func serveEmbedded(ctx context.Context, e *env, o serveOptions) error {
	if err := os.MkdirAll(o.Data, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	err := app.Run(ctx, app.Config{
		Dir: o.Data, Addr: o.Addr, Token: o.Token, Workers: o.Workers, RetryBackoff: o.RetryBackoff,
		Sim: o.Sim, ServicesURL: o.ServicesURL, NotifyWebhook: o.NotifyWebhook, Logger: o.Logger, ShutdownTimeout: o.ShutdownTimeout,
		Started: func(addr string) {
			fmt.Fprintf(e.stderr, "ledger: serving on http://%s (data in %s)\n", displayAddr(addr), o.Data)
		},
	})
	if err != nil && isLocked(err) {
		return fmt.Errorf("%s is in use by another running ledger: stop it, or serve another --data directory", o.Data)
	}
	return err
}

// displayAddr turns a wildcard listen address into one a browser can open.
func displayAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
