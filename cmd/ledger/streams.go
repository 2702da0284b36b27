package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orderledger/orderledger/aws/bootstrap"
	"github.com/orderledger/orderledger/aws/lambdas"
	"github.com/orderledger/orderledger/aws/streamfailures"
	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/resources"
)

func init() {
	register(command{name: "streams failures list", summary: "list the stream mappings' failure records (--backend aws)", run: runStreamFailuresList})
	register(command{name: "streams failures replay", summary: "re-project / re-publish what the stream mappings gave up, then delete the records", run: runStreamFailuresReplay})
}

// streamFailuresFlags parses the flags `ledger streams failures` shares.
func streamFailuresFlags(name string, e *env, args []string, extra func(*flag.FlagSet)) (asJSON bool, err error) {
	fs := newFlags(name, e)
	backend := fs.String("backend", "", "aws (required): the stream failures queue of environment LEDGER_ENV, through the standard AWS configuration; the server may run")
	fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	if extra != nil {
		extra(fs)
	}
	if err := parseFlags(fs, e, args); err != nil {
		return false, err
	}
	if fs.NArg() > 0 {
		return false, usagef("unexpected argument %q", fs.Arg(0))
	}
	if *backend != "aws" {
		return false, usagef("--backend aws is required: only the AWS backend has stream mappings (the embedded projector and publisher follow the log from checkpoints and skip nothing)")
	}
	return asJSON, nil
}

// withReplayer runs f with the stream failures of environment LEDGER_ENV:
// its queue, its events stream and table, the read table (LEDGER_ORDERS_TABLE
// when set) and its topics.
func withReplayer(ctx context.Context, e *env, f func(*streamfailures.Replayer) error) error {
	envName := e.getenv("LEDGER_ENV")
	if envName == "" {
		envName = resources.DefaultEnv
	}
	if !resources.ValidEnv(envName) {
		return usagef("LEDGER_ENV must be 1..40 lowercase letters, digits or '-', not %q", envName)
	}
	ordersTable, err := ordersTableSetting(e)
	if err != nil {
		return err
	}
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{Getenv: e.getenv})
	if err != nil {
		return err
	}
	if err := awsconfig.CheckCredentials(ctx, cfg); err != nil {
		return usagef("%s", err)
	}
	d, err := lambdas.NewDepsFor(cfg, resources.For(envName).WithOrdersTable(ordersTable), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	rep, err := bootstrap.Resolve(ctx, d.Clients, d.Names)
	if err != nil {
		return err
	}
	proj, err := d.Projector()
	if err != nil {
		return err
	}
	pub, err := d.Publisher(rep.EventsTopicARN, rep.CompletedTopicARN)
	if err != nil {
		return err
	}
	r, err := streamfailures.New(streamfailures.Config{SQS: d.Clients.SQS, QueueURL: rep.StreamFailureQueueURL, Streams: d.Clients.Streams,
		Store: d.Store, Views: d.Views, Projector: proj, Publisher: pub, Names: d.Names})
	if err != nil {
		return err
	}
	return f(r)
}

func runStreamFailuresList(ctx context.Context, e *env, args []string) error {
	var limit int
	asJSON, err := streamFailuresFlags("streams failures list", e, args, func(fs *flag.FlagSet) {
		fs.IntVar(&limit, "limit", 0, "list at most this many (0: all)")
	})
	if err != nil {
		return err
	}
	if limit < 0 {
		return usagef("--limit must not be negative")
	}
	var fs []streamfailures.Failure
	if err := withReplayer(ctx, e, func(r *streamfailures.Replayer) error {
		fs, err = r.List(ctx, limit)
		return err
	}); err != nil {
		return err
	}
	if asJSON {
		if fs == nil {
			fs = []streamfailures.Failure{}
		}
		return json.NewEncoder(e.stdout).Encode(map[string]any{"items": fs, "count": len(fs)})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MESSAGE\tMAPPING\tCONDITION\tSHARD\tSEQUENCE NUMBERS\tRECORDS\tFAILED AT\tPROBLEM")
	for _, f := range fs {
		seqs := "-"
		switch {
		case f.StartSequenceNumber != "" && f.StartSequenceNumber == f.EndSequenceNumber:
			seqs = f.StartSequenceNumber
		case f.StartSequenceNumber != "":
			seqs = f.StartSequenceNumber + ".." + f.EndSequenceNumber
		}
		failedAt := "-"
		if !f.FailedAt.IsZero() {
			failedAt = f.FailedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", f.MessageID, orDash(f.Mapping), orDash(f.Condition), orDash(f.ShardID), seqs,
			f.BatchSize, failedAt, orDash(f.Problem))
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%d failure record(s)\n", len(fs))
	return nil
}

// runStreamFailuresReplay re-applies every failure record (package
// aws/streamfailures): a projector's re-projects the orders its records
// name, a publisher's re-publishes its events with their own IDs; each
// replayed record is deleted, the others kept and reported.
func runStreamFailuresReplay(ctx context.Context, e *env, args []string) error {
	var dryRun bool
	asJSON, err := streamFailuresFlags("streams failures replay", e, args, func(fs *flag.FlagSet) {
		fs.BoolVar(&dryRun, "dry-run", false, "say what would be done, change nothing")
	})
	if err != nil {
		return err
	}
	var rep streamfailures.Report
	var replayErr error
	if err := withReplayer(ctx, e, func(r *streamfailures.Replayer) error {
		rep, replayErr = r.Replay(ctx, dryRun)
		return nil
	}); err != nil {
		return err
	}
	if replayErr != nil && len(rep.Items) == 0 {
		return replayErr
	}
	if asJSON {
		return errors.Join(replayErr, json.NewEncoder(e.stdout).Encode(rep))
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MESSAGE\tMAPPING\tACTION\tSOURCE\tWHAT")
	for _, o := range rep.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.MessageID, orDash(o.Mapping), o.Action, orDash(o.Source), outcomeText(o))
	}
	tw.Flush()
	prefix, verb := "", "replayed"
	if rep.DryRun {
		prefix, verb = "dry run: ", "would be replayed"
	}
	fmt.Fprintf(e.stdout, "%s%d %s, %d kept\n", prefix, rep.Replayed, verb, rep.Kept)
	return replayErr
}

// outcomeText says in a line what a replay did to one record.
func outcomeText(o streamfailures.Outcome) string {
	if o.Action == streamfailures.Kept {
		return o.Reason
	}
	dry := o.Action == streamfailures.WouldReplay
	if o.Mapping == streamfailures.Publisher {
		verb := "re-published"
		if dry {
			verb = "to re-publish"
		}
		return fmt.Sprintf("%d events of %d orders %s: %s", len(o.EventIDs), len(o.Orders), verb, strings.Join(o.EventIDs, " "))
	}
	parts := make([]string, 0, len(o.Orders))
	for _, oo := range o.Orders {
		if dry {
			parts = append(parts, fmt.Sprintf("%s (read table at v%d, log at v%d)", oo.OrderID, oo.Before, oo.Head))
		} else {
			parts = append(parts, fmt.Sprintf("%s v%d->v%d (log at v%d)", oo.OrderID, oo.Before, oo.After, oo.Head))
		}
	}
	if len(parts) == 0 {
		return "no events in the batch"
	}
	if dry {
		return "would re-project " + strings.Join(parts, ", ")
	}
	return "re-projected " + strings.Join(parts, ", ")
}
