package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/app"
	"github.com/orderledger/orderledger/aws/bootstrap"
	"github.com/orderledger/orderledger/aws/lambdas"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/resources"
	"github.com/orderledger/orderledger/orders"
)

func init() {
	register(command{name: "dlq list", summary: "list the dead-letter queue (--url: a running ledger; --backend aws; else a stopped embedded --data DIR)", run: runDLQList})
	register(command{name: "dlq redrive", summary: "resend dead letters of unfinished orders, delete those of settled ones", run: runDLQRedrive})
}

// dlqTarget is where `ledger dlq` works: a running server's API, the AWS
// environment's queues, or a stopped embedded runtime's data directory.
// Every one goes through the same use cases (orders.Service.DeadLetters
// and RedriveDeadLetters), in this process or in the server.
type dlqTarget struct {
	url, backend, dir string
	asJSON            bool
}

func dlqFlags(name string, e *env, args []string, extra func(*flag.FlagSet)) (dlqTarget, error) {
	var t dlqTarget
	fs := newFlags(name, e)
	fs.StringVar(&t.dir, "data", "./data", "data directory of a stopped embedded runtime")
	fs.StringVar(&t.url, "url", "", "go through a running ledger's API instead (either backend), e.g. http://localhost:8000 (sends LEDGER_API_TOKEN as its bearer token when set)")
	fs.StringVar(&t.backend, "backend", "embedded", "embedded (--data) or aws (the queues of environment LEDGER_ENV, through the standard AWS configuration; the server may run)")
	fs.BoolVar(&t.asJSON, "json", false, "print JSON instead of a table")
	if extra != nil {
		extra(fs)
	}
	if err := parseFlags(fs, e, args); err != nil {
		return t, err
	}
	if fs.NArg() > 0 {
		return t, usagef("unexpected argument %q", fs.Arg(0))
	}
	switch t.backend {
	case "embedded", "aws":
	default:
		return t, usagef("--backend must be embedded or aws, not %q", t.backend)
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	if t.url != "" && (onCommandLine["backend"] || onCommandLine["data"]) {
		return t, usagef("--url goes through the server's API: it takes no --backend or --data")
	}
	if t.url == "" && t.backend == "embedded" {
		if st, err := os.Stat(app.Layout(t.dir).Queue); err != nil || !st.IsDir() {
			return t, usagef("--data %s holds no queue directory (no embedded runtime ran there)", t.dir)
		}
	}
	return t, nil
}

// withDeadLetters runs f with the order use cases and the dead-letter queue
// of an embedded data directory or of the AWS environment.
func withDeadLetters(ctx context.Context, e *env, t dlqTarget, f func(*orders.Service, orders.DeadLetterQueue) error) error {
	if t.backend == "aws" {
		envName := e.getenv("LEDGER_ENV")
		if envName == "" {
			envName = resources.DefaultEnv
		}
		if !resources.ValidEnv(envName) {
			return usagef("LEDGER_ENV must be 1..40 lowercase letters, digits or '-', not %q", envName)
		}
		cfg, err := awsconfig.Load(ctx, awsconfig.Options{Getenv: e.getenv})
		if err != nil {
			return err
		}
		if err := awsconfig.CheckCredentials(ctx, cfg); err != nil {
			return usagef("%s", err)
		}
		d, err := lambdas.NewDeps(cfg, envName, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		rep, err := bootstrap.Resolve(ctx, d.Clients, d.Names)
		if err != nil {
			return err
		}
		q, err := d.DeadLetters(rep.DeadLetterQueueURL, rep.ProcessingQueueURL)
		if err != nil {
			return err
		}
		svc, err := orders.New(orders.Config{Store: d.Store, Codec: d.Codec})
		if err != nil {
			return err
		}
		return f(svc, q)
	}
	if st, err := os.Stat(app.Layout(t.dir).Events); err != nil || !st.IsDir() {
		return usagef("--data %s holds no events directory", t.dir)
	}
	br, err := app.OpenBroker(app.Layout(t.dir).Queue, 0, 0, false)
	if err != nil {
		return fmt.Errorf("%w (is ledger serve running on this directory? use --url)", err)
	}
	defer br.Close()
	store, err := pebblestore.Open(app.Layout(t.dir).Events)
	if err != nil {
		return fmt.Errorf("open event store: %w (is ledger serve running on this directory? use --url)", err)
	}
	defer store.Close()
	svc, err := orders.New(orders.Config{Store: store})
	if err != nil {
		return err
	}
	return f(svc, br.DeadLetters())
}

func dlqClient(t dlqTarget, e *env) (*api.Client, error) {
	var opts []api.ClientOption
	if tok := e.getenv("LEDGER_API_TOKEN"); tok != "" {
		opts = append(opts, api.WithToken(tok))
	}
	c, err := api.NewClient(t.url, opts...)
	if err != nil {
		return nil, usagef("--url: %s", err)
	}
	return c, nil
}

func runDLQList(ctx context.Context, e *env, args []string) error {
	var limit int
	t, err := dlqFlags("dlq list", e, args, func(fs *flag.FlagSet) {
		fs.IntVar(&limit, "limit", 0, fmt.Sprintf("list at most this many (0: all; with --url, 0 is the server's default and at most %d)", api.MaxDLQLimit))
	})
	if err != nil {
		return err
	}
	if limit < 0 || (t.url != "" && limit > api.MaxDLQLimit) {
		return usagef("--limit must be from 0 to %d", api.MaxDLQLimit)
	}
	var list api.DeadLetterList
	if t.url != "" {
		c, err := dlqClient(t, e)
		if err != nil {
			return err
		}
		if list, err = c.DeadLetters(ctx, limit); err != nil {
			return err
		}
	} else {
		err = withDeadLetters(ctx, e, t, func(svc *orders.Service, q orders.DeadLetterQueue) error {
			infos, err := svc.DeadLetters(ctx, q, limit)
			list = api.DeadLetterList{Items: []api.DeadLetterItem{}, Count: len(infos)}
			for _, d := range infos {
				list.Items = append(list.Items, api.DeadLetterItem{ID: d.ID, OrderID: d.OrderID, EventType: d.EventType,
					Attempts: d.Attempts, LastError: d.LastError, DeadAt: d.DeadAt.UTC(), OrderStatus: string(d.OrderStatus), Problem: d.Problem})
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	if t.asJSON {
		return json.NewEncoder(e.stdout).Encode(list)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tORDER\tEVENT\tSTATUS\tATTEMPTS\tDEAD AT\tPROBLEM")
	for _, d := range list.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, orDash(d.OrderID), orDash(d.EventType), orDash(d.OrderStatus),
			d.Attempts, d.DeadAt.Format(time.RFC3339), orDash(d.Problem))
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%d dead letter(s)\n", list.Count)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runDLQRedrive moves every dead letter whose order exists and is not
// settled (still pending, or ended with a refund owed) back to the
// processing queue, deletes those whose order is settled, and keeps (and
// reports) those that name no order: resending them would only
// dead-letter them again (orders.Service.RedriveDeadLetters).
func runDLQRedrive(ctx context.Context, e *env, args []string) error {
	var dryRun bool
	t, err := dlqFlags("dlq redrive", e, args, func(fs *flag.FlagSet) {
		fs.BoolVar(&dryRun, "dry-run", false, "say what would be done, change nothing")
	})
	if err != nil {
		return err
	}
	var rep orders.RedriveReport
	if t.url != "" {
		c, err := dlqClient(t, e)
		if err != nil {
			return err
		}
		rep, err = c.RedriveDeadLetters(ctx, dryRun)
		if err != nil {
			return err
		}
	} else {
		err = withDeadLetters(ctx, e, t, func(svc *orders.Service, q orders.DeadLetterQueue) error {
			var err error
			rep, err = svc.RedriveDeadLetters(ctx, q, dryRun)
			return err
		})
		if err != nil && len(rep.Items) == 0 {
			return err
		}
	}
	if t.asJSON {
		if encErr := json.NewEncoder(e.stdout).Encode(rep); encErr != nil {
			return errors.Join(err, encErr)
		}
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tORDER\tACTION\tREASON")
	for _, r := range rep.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, orDash(r.OrderID), r.Action, r.Reason)
	}
	tw.Flush()
	prefix := ""
	if rep.DryRun {
		prefix = "dry run: "
	}
	fmt.Fprintf(e.stdout, "%s%d redriven, %d deleted (order settled), %d kept (no such order)\n",
		prefix, rep.Redriven, rep.Deleted, rep.Kept)
	return err
}
