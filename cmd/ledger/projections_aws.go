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
}

// rebuildAWS rebuilds the read table of environment LEDGER_ENV in place
// from its events table (package projections/dynamoviews: a parallel scan,
// each order folded and written with the projector's version fence, so
// that it converges with the live projector), resuming a run that was
// interrupted. Progress goes to stderr: a bar on a terminal, JSON log lines
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
	d, err := lambdas.NewDeps(cfg, envName, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	if _, err := bootstrap.Resolve(ctx, d.Clients, d.Names); err != nil {
		return err
	}
	show := newRebuildProgress(e.stderr, "rebuild "+d.Names.OrdersTable)
	log := slog.New(slog.DiscardHandler)
	if !show.tty {
		log = slog.New(slog.NewJSONHandler(e.stderr, nil))
		show.log = log
	}
	res, err := d.Views.Rebuild(ctx, d.Store, d.Codec, dynamoviews.RebuildOptions{
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
	return nil
}
