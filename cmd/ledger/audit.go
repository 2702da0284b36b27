package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/orderledger/orderledger/app"
	"github.com/orderledger/orderledger/aws/lambdas"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/resources"
	"github.com/orderledger/orderledger/orders"
)

func init() {
	register(command{name: "audit verify", summary: "verify every order's audit chain (and the log against a digest with --digest FILE); exit 1 naming the first broken order", run: runAuditVerify})
	register(command{name: "audit digest", summary: "take a digest of the whole log (every order's head hash; the feed's running digest on the embedded store) to keep out of the writers' reach", run: runAuditDigest})
	register(command{name: "audit migrate", summary: "hash the events stored before the audit chain (one-time, resumable)", run: runAuditMigrate})
}

// auditTarget is the store ledger audit works on: a stopped embedded
// runtime's data directory, or the AWS environment's events table (the
// server may run).
type auditTarget struct {
	backend, dir string
}

func auditFlags(name string, e *env, args []string, extra func(*flag.FlagSet)) (auditTarget, error) {
	var t auditTarget
	fs := newFlags(name, e)
	fs.StringVar(&t.dir, "data", "./data", "data directory of a stopped embedded ledger")
	fs.StringVar(&t.backend, "backend", "embedded", "embedded (--data) or aws (the events table of environment LEDGER_ENV, through the standard AWS configuration; the server may run)")
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
	return t, nil
}

// withAudit runs f with the order use cases and the auditable store.
func withAudit(ctx context.Context, e *env, t auditTarget, f func(*orders.Service, eventstore.Auditable) error) error {
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
		svc, err := orders.New(orders.Config{Store: d.Store, Codec: d.Codec})
		if err != nil {
			return err
		}
		return f(svc, d.Store)
	}
	dir := app.Layout(t.dir).Events
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return usagef("--data %s holds no events directory", t.dir)
	}
	store, err := pebblestore.Open(dir)
	if err != nil {
		if isLocked(err) {
			return fmt.Errorf("%s is in use by a running ledger: stop it first (ledger audit reads the event store directly)", t.dir)
		}
		return err
	}
	defer store.Close()
	svc, err := orders.New(orders.Config{Store: store})
	if err != nil {
		return err
	}
	return f(svc, store)
}

func runAuditVerify(ctx context.Context, e *env, args []string) error {
	var digestFile *string
	var workers *int
	t, err := auditFlags("audit verify", e, args, func(fs *flag.FlagSet) {
		digestFile = fs.String("digest", "", "also check the log against this digest (from ledger audit digest --out): finds a whole order deleted, events cut off, the feed rewritten")
		workers = fs.Int("workers", 8, "orders verified at once")
	})
	if err != nil {
		return err
	}
	if *workers < 1 {
		return usagef("--workers must be at least 1")
	}
	var digest *eventstore.Digest
	if *digestFile != "" {
		b, err := os.ReadFile(*digestFile)
		if err != nil {
			return usagef("--digest: %s", err)
		}
		digest = new(eventstore.Digest)
		if err := json.Unmarshal(b, digest); err != nil {
			return usagef("--digest %s: not a digest: %s", *digestFile, err)
		}
		if err := orders.CheckDigest(digest); err != nil {
			return usagef("--digest %s: %s", *digestFile, err)
		}
		if want := digestBackend(t.backend); digest.Backend != want {
			return usagef("--digest %s is a digest of the %s backend, not %s", *digestFile, digest.Backend, want)
		}
	}
	var rep orders.AuditReport
	err = withAudit(ctx, e, t, func(svc *orders.Service, a eventstore.Auditable) error {
		bar := newAuditBar(e.stderr, "verifying")
		rep, err = svc.Audit(ctx, a, orders.AuditOptions{Workers: *workers, Digest: digest, Progress: bar.update})
		bar.finish()
		return err
	})
	if err != nil {
		return err
	}
	against := ""
	if digest != nil {
		against = fmt.Sprintf(", checked against the digest of %s (%d orders, %d events)", digest.TakenAt.Format(time.RFC3339), digest.Streams, digest.Events)
	}
	if rep.OK() {
		fmt.Fprintf(e.stdout, "ok: %d orders, %d events: every chain holds%s\n", rep.Streams, rep.Events, against)
		return nil
	}
	for _, b := range rep.Breaks {
		fmt.Fprintf(e.stdout, "BROKEN order %s at version %d: %s\n", b.StreamID, b.Version, b.Reason)
	}
	if rep.Feed != nil {
		fmt.Fprintf(e.stdout, "BROKEN feed: %s\n", rep.Feed.Error())
	}
	fmt.Fprintf(e.stdout, "%d orders, %d events: %d broken%s\n", rep.Streams, rep.Events, len(rep.Breaks), against)
	if len(rep.Breaks) > 0 {
		b := rep.Breaks[0]
		more := ""
		if n := len(rep.Breaks) - 1 + btoi(rep.Feed != nil); n > 0 {
			more = fmt.Sprintf(" (and %d more)", n)
		}
		return fmt.Errorf("audit failed: order %s: chain broken at version %d: %s%s", b.StreamID, b.Version, b.Reason, more)
	}
	return fmt.Errorf("audit failed: %s", rep.Feed.Error())
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func digestBackend(backend string) string {
	if backend == "aws" {
		return "aws"
	}
	return "embedded"
}

func runAuditDigest(ctx context.Context, e *env, args []string) error {
	var out *string
	t, err := auditFlags("audit digest", e, args, func(fs *flag.FlagSet) {
		out = fs.String("out", "", "write the digest to this file (default: print it); keep it where the ledger's writers cannot reach")
	})
	if err != nil {
		return err
	}
	var d eventstore.Digest
	err = withAudit(ctx, e, t, func(svc *orders.Service, a eventstore.Auditable) error {
		d, err = svc.TakeDigest(ctx, a, digestBackend(t.backend))
		return err
	})
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if *out == "" {
		_, err = e.stdout.Write(b)
		return err
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		return err
	}
	feed := ""
	if d.Feed != nil {
		feed = fmt.Sprintf(", feed digest %s at position %d", d.Feed.Digest, d.Feed.Position)
	}
	recorded := ""
	if t.backend == "aws" {
		recorded = " (also recorded in the events table)"
	}
	fmt.Fprintf(e.stdout, "digest of %d orders, %d events: root %s%s, written to %s%s\n", d.Streams, d.Events, d.Root, feed, *out, recorded)
	return nil
}

func runAuditMigrate(ctx context.Context, e *env, args []string) error {
	t, err := auditFlags("audit migrate", e, args, nil)
	if err != nil {
		return err
	}
	var rep eventstore.MigrateReport
	err = withAudit(ctx, e, t, func(svc *orders.Service, a eventstore.Auditable) error {
		bar := newAuditBar(e.stderr, "migrating")
		rep, err = svc.Migrate(ctx, a, func(r eventstore.MigrateReport) { bar.update(r.Streams, 0) })
		bar.finish()
		return err
	})
	if err != nil {
		if rep.Events > 0 {
			return fmt.Errorf("%w (%d events were hashed before it stopped: run ledger audit migrate again to carry on)", err, rep.Events)
		}
		return err
	}
	if rep.Events == 0 {
		fmt.Fprintf(e.stdout, "nothing to migrate: every event of %d orders has its hash\n", rep.Streams)
		return nil
	}
	fmt.Fprintf(e.stdout, "hashed %d events in %d of %d orders; every chain now starts at version 1 (check: ledger audit verify)\n", rep.Events, rep.MigratedStreams, rep.Streams)
	return nil
}

// auditBar is a progress bar on a terminal, nothing elsewhere.
type auditBar struct {
	w     io.Writer
	label string
	bar   *progressbar.ProgressBar
}

func newAuditBar(w io.Writer, label string) *auditBar {
	b := &auditBar{label: label}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b.w = w
	}
	return b
}

// update shows done of total (total 0: unknown).
func (b *auditBar) update(done, total int) {
	if b.w == nil {
		return
	}
	if b.bar == nil {
		n := int64(total)
		if total == 0 {
			n = -1
		}
		b.bar = progressbar.NewOptions64(n,
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetDescription(b.label+" orders"),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetWidth(30),
		)
	}
	_ = b.bar.Set(done)
}

func (b *auditBar) finish() {
	if b.bar != nil {
		_ = b.bar.Finish()
		fmt.Fprintln(b.w)
	}
}
