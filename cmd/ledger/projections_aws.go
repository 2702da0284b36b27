package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/orderledger/orderledger/aws/bootstrap"
	"github.com/orderledger/orderledger/aws/lambdas"
	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/resources"
	"github.com/orderledger/orderledger/projections/dynamoviews"
)

// awsRebuildFlags are the flags of `ledger projections rebuild --backend aws`.
type awsRebuildFlags struct {
	segments      int
	maxWriteUnits float64
	prune         bool
	asJSON        bool
	into          string
}

// rebuildAWS rebuilds the read table of environment LEDGER_ENV in place
// from its events table (package projections/dynamoviews: a parallel scan,
// each order folded and written with the projector's version fence, so
// that it converges with the live projector), resuming a run that was
// interrupted. With --into NAME it creates table NAME like the read table
// (keys and indexes) and fills it instead: blue/green, switched to with
// LEDGER_ORDERS_TABLE=NAME. Progress goes to stderr: a bar on a terminal, JSON log lines
// otherwise; the result to stdout.
func rebuildAWS(ctx context.Context, e *env, o awsRebuildFlags) error {
	if o.segments < 0 || o.segments > 1_000_000 {
		return usagef("--segments must be 1..1000000 (0: sized to the table), not %d", o.segments)
	}
	if o.maxWriteUnits < 0 {
		return usagef("--max-write-units-per-second must not be negative")
	}
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
	ordersTable, err := ordersTableSetting(e)
	if err != nil {
		return err
	}
	names := resources.For(envName).WithOrdersTable(ordersTable)
	if o.into != "" && (!resources.ValidTableName(o.into) || o.into == names.OrdersTable || o.into == names.EventsTable) {
		return usagef("--into must name a new DynamoDB table (3..255 letters, digits, '_', '-', '.'), not %q", o.into)
	}
	d, err := lambdas.NewDepsFor(cfg, names, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	if _, err := bootstrap.Resolve(ctx, d.Clients, d.Names); err != nil {
		return err
	}
	views := d.Views
	if o.into != "" {
		created, err := dynamoviews.CreateTableLike(ctx, d.Clients.DynamoDB, names.OrdersTable, o.into)
		if err != nil {
			return err
		}
		verb := "filling the existing"
		if created {
			verb = "created"
		}
		fmt.Fprintf(e.stderr, "ledger: %s table %s (keys and indexes of %s)\n", verb, o.into, names.OrdersTable)
		if views, err = dynamoviews.New(d.Clients.DynamoDB, o.into); err != nil {
			return err
		}
	}
	show := newRebuildProgress(e.stderr, "rebuild")
	log := slog.New(slog.DiscardHandler)
	if !show.tty {
		log = slog.New(slog.NewJSONHandler(e.stderr, nil))
		show.log = log
	}
	res, err := views.Rebuild(ctx, d.Store, d.Codec, dynamoviews.RebuildOptions{
		Segments: o.segments, MaxWriteUnitsPerSecond: o.maxWriteUnits, Prune: o.prune,
		Progress: show.update, Logger: log,
	})
	show.cur.Done, show.cur.Orders, show.cur.Repaired, show.cur.Elapsed = res.Events, res.Orders, res.Repaired, res.Elapsed
	show.finish()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted")
		}
		return fmt.Errorf("rebuild of %s stopped after %d orders; its checkpoints are kept: rerun to resume: %w", res.Table, res.Orders, err)
	}
	if o.asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	rate := 0.0
	if res.Elapsed > 0 {
		rate = float64(res.Events) / res.Elapsed.Seconds()
	}
	resumed := ""
	if res.Resumed {
		resumed = fmt.Sprintf(", resumed (%d of %d segments were done)", res.SegmentsSkipped, res.Segments)
	}
	fmt.Fprintf(e.stdout, "rebuilt %s: %d orders (%d events) in %.2fs (%.0f events/s), %d segments%s\n",
		res.Table, res.Orders, res.Events, res.Elapsed.Seconds(), rate, res.Segments, resumed)
	fmt.Fprintf(e.stdout, "  %d views repaired (missing, stale or corrupted), %d already right, ~%.0f write units\n",
		res.Repaired, res.Unchanged, res.WriteUnits)
	if res.OrphanCount > 0 {
		what := "kept (--prune deletes them)"
		if o.prune {
			what = fmt.Sprintf("%d deleted", res.Pruned)
		}
		fmt.Fprintf(e.stdout, "  %d orphans (items whose order has no events), %s: %s\n", res.OrphanCount, what, strings.Join(res.Orphans, " "))
	}
	if o.into != "" {
		fmt.Fprintf(e.stdout, "  to switch: %s=%s for serve --backend aws (Terraform: orders_table = %q), restart, then rebuild once more in place "+
			"to catch up what changed meanwhile; %s stays until you delete it\n", resources.OrdersTableEnv, o.into, o.into, names.OrdersTable)
	}
	return nil
}
