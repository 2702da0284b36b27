package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/app"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/internal/ledgertest"
	"github.com/orderledger/orderledger/internal/resources"
)

// tamperer changes the underlying database behind the ledger's back.
type tamperer interface {
	// changeData rewrites order's version 1 data in place, old -> new
	// (same length), leaving its hashes as they were.
	changeData(id, old, new string)
	// deleteEvent removes one event of order.
	deleteEvent(id string, version int64)
	// deleteStream removes every event of order.
	deleteStream(id string)
	// swap exchanges two events of order: each is stored under the other's
	// version (its version field rewritten to match).
	swap(id string, a, b int64)
}

// auditRun runs ledger audit verify with the real binary and returns its
// exit status and output.
func auditRun(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(ledgertest.Binary(t), append([]string{"audit"}, args...)...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errorsAs(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("ledger audit %v: %v\n%s", args, err, out)
	return 0, ""
}

func errorsAs(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*ee = e
	}
	return ok
}

// auditScenario: four orders of a served ledger, each tampered with in
// another way behind the ledger's back, one after the other; after each,
// ledger audit verify exits 1 and names the order, and GET
// /orders/{id}/events?verify=true answers that its chain is broken.
// Untouched data verifies with exit 0, and the whole-stream deletion is
// found against a digest taken before. offline stops whatever holds the
// store before the audit; ask returns a server to ask afterwards.
func auditScenario(t *testing.T, s *server, target []string, tm tamperer, offline func(), ask func() *server) {
	ids := map[string]string{}
	for _, name := range []string{"Tamper Data", "Tamper Delete", "Tamper Gone", "Tamper Swap", "Left Alone"} {
		o := s.place(name, "Lamp", 1)
		if v := s.waitTerminal(o.OrderID); v.Status != "Completed" {
			t.Fatalf("%s ended %s", name, v.Status)
		}
		ids[name] = o.OrderID
	}
	offline()
	verify := func(args ...string) (int, string) {
		return auditRun(t, append(append([]string{"verify"}, target...), args...)...)
	}
	if code, out := verify(); code != 0 || !strings.Contains(out, "every chain holds") {
		t.Fatalf("untouched data: exit %d\n%s", code, out)
	}
	digest := filepath.Join(t.TempDir(), "digest.json")
	if code, out := auditRun(t, append(append([]string{"digest"}, target...), "--out", digest)...); code != 0 || !strings.Contains(out, "written to "+digest) {
		t.Fatalf("ledger audit digest: exit %d\n%s", code, out)
	}
	if code, out := verify("--digest", digest); code != 0 || !strings.Contains(out, "checked against the digest") {
		t.Fatalf("untouched data against its digest: exit %d\n%s", code, out)
	}
	broken := func(name string, version int64, args ...string) {
		t.Helper()
		code, out := verify(args...)
		want := "BROKEN order " + ids[name] + " at version " + strconv.FormatInt(version, 10)
		if code != 1 || !strings.Contains(out, want) {
			t.Fatalf("after %q: exit %d, want 1 and %q in\n%s", name, code, want, out)
		}
		t.Logf("after %q:\n%s", name, out)
	}
	tm.changeData(ids["Tamper Data"], `"Tamper Data"`, `"Tamper Date"`)
	broken("Tamper Data", 1)
	tm.deleteEvent(ids["Tamper Delete"], 2)
	broken("Tamper Delete", 2)
	tm.deleteStream(ids["Tamper Gone"])
	if _, out := verify(); strings.Contains(out, ids["Tamper Gone"]) {
		t.Fatalf("a whole stream deleted cannot show without a digest, yet:\n%s", out)
	}
	broken("Tamper Gone", 1, "--digest", digest)
	tm.swap(ids["Tamper Swap"], 2, 3)
	broken("Tamper Swap", 2)
	if code, out := verify(); strings.Contains(out, ids["Left Alone"]) || code != 1 {
		t.Fatalf("exit %d, or the untouched order is reported:\n%s", code, out)
	}

	// The API says the same.
	s = ask()
	for _, name := range []string{"Tamper Data", "Tamper Delete", "Tamper Swap", "Left Alone"} {
		h, err := s.api.VerifyHistory(context.Background(), ids[name])
		if err != nil {
			t.Fatalf("%s: GET ?verify=true: %v", name, err)
		}
		if holds := name == "Left Alone"; h.Chain == nil || h.Chain.Holds != holds {
			t.Errorf("%s: GET ?verify=true says %+v, want holds=%v", name, h.Chain, holds)
		}
	}
	if code, body := s.getRaw("/orders/" + ids["Tamper Data"] + "/events/?verify=true"); code != 200 || !strings.Contains(string(body), `"holds":false`) {
		t.Errorf("GET /orders/{id}/events/?verify=true: %d %s", code, body)
	}
}

// TestAuditFindsTamperingEmbedded: the embedded backend, tampered with by
// opening its pebble database directly (the layout of
// eventstore/pebblestore's record.go).
func TestAuditFindsTamperingEmbedded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := start(t, dir)
	auditScenario(t, s, []string{"--data", dir}, &pebbleTamperer{t: t, dir: app.Layout(dir).Events},
		func() {
			if err := s.stop(syscall.SIGTERM); err != nil {
				t.Fatalf("stop: %v", err)
			}
		},
		func() *server { return start(t, dir) })
}

// TestAuditFindsTamperingAWS: serve --backend aws on moto, tampered with
// through DynamoDB's own API while it runs.
func TestAuditFindsTamperingAWS(t *testing.T) {
	svc := simulate(t)
	s := startAWS(t, svc)
	env := resources.For(lookupEnv(t))
	c := awstest.Clients(t)
	tm := &dynamoTamperer{t: t, db: c.DynamoDB, table: env.EventsTable}
	auditScenario(t, s, []string{"--backend", "aws"}, tm, func() {}, func() *server { return s })
}

type pebbleTamperer struct {
	t   *testing.T
	dir string
}

func (p *pebbleTamperer) with(f func(db *pebble.DB, b *pebble.Batch)) {
	p.t.Helper()
	db, err := pebble.Open(p.dir, &pebble.Options{})
	if err != nil {
		p.t.Fatal(err)
	}
	b := db.NewBatch()
	f(db, b)
	if err := b.Commit(pebble.Sync); err != nil {
		p.t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		p.t.Fatal(err)
	}
}

func streamKey(id string, v int64) []byte {
	k := append([]byte{'s', byte(len(id))}, id...)
	return binary.BigEndian.AppendUint64(k, uint64(v))
}

func feedKeyOf(rec []byte) []byte {
	return append([]byte{'f'}, rec[1:9]...) // position: bytes 1..8 of a record
}

func (p *pebbleTamperer) get(db *pebble.DB, k []byte) []byte {
	p.t.Helper()
	v, closer, err := db.Get(k)
	if err != nil {
		p.t.Fatalf("get %q: %v", k, err)
	}
	defer closer.Close()
	return bytes.Clone(v)
}

func (p *pebbleTamperer) changeData(id, old, new string) {
	p.with(func(db *pebble.DB, b *pebble.Batch) {
		k := streamKey(id, 1)
		rec := p.get(db, k)
		if !bytes.Contains(rec, []byte(old)) {
			p.t.Fatalf("%s v1 holds no %s", id, old)
		}
		rec = bytes.Replace(rec, []byte(old), []byte(new), 1)
		_ = b.Set(k, rec, nil)
		_ = b.Set(feedKeyOf(rec), rec, nil)
	})
}

func (p *pebbleTamperer) deleteEvent(id string, v int64) {
	p.with(func(db *pebble.DB, b *pebble.Batch) {
		k := streamKey(id, v)
		rec := p.get(db, k)
		_ = b.Delete(k, nil)
		_ = b.Delete(feedKeyOf(rec), nil)
	})
}

func (p *pebbleTamperer) deleteStream(id string) {
	p.with(func(db *pebble.DB, b *pebble.Batch) {
		for v := int64(1); ; v++ {
			k := streamKey(id, v)
			rec, closer, err := db.Get(k)
			if err == pebble.ErrNotFound {
				if v == 1 {
					p.t.Fatalf("no stream %s", id)
				}
				return
			}
			if err != nil {
				p.t.Fatal(err)
			}
			_ = b.Delete(feedKeyOf(rec), nil)
			_ = closer.Close()
			_ = b.Delete(k, nil)
		}
	})
}

func (p *pebbleTamperer) swap(id string, a, bv int64) {
	p.with(func(db *pebble.DB, b *pebble.Batch) {
		ra, rb := p.get(db, streamKey(id, a)), p.get(db, streamKey(id, bv))
		// Each record carries its version at bytes 9..16: rewrite it to
		// match the key it moves to, as a careful forger would.
		binary.BigEndian.PutUint64(ra[9:], uint64(bv))
		binary.BigEndian.PutUint64(rb[9:], uint64(a))
		_ = b.Set(streamKey(id, bv), ra, nil)
		_ = b.Set(streamKey(id, a), rb, nil)
	})
}

type dynamoTamperer struct {
	t     *testing.T
	db    *dynamodb.Client
	table string
}

func dkey(id string, v int64) map[string]ddb.AttributeValue {
	return map[string]ddb.AttributeValue{
		"stream_id": &ddb.AttributeValueMemberS{Value: id},
		"version":   &ddb.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)},
	}
}

func (d *dynamoTamperer) get(id string, v int64) map[string]ddb.AttributeValue {
	d.t.Helper()
	out, err := d.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(d.table), Key: dkey(id, v), ConsistentRead: aws.Bool(true)})
	if err != nil || len(out.Item) == 0 {
		d.t.Fatalf("get %s v%d: %v (%d attributes)", id, v, err, len(out.Item))
	}
	return out.Item
}

func (d *dynamoTamperer) put(item map[string]ddb.AttributeValue) {
	d.t.Helper()
	if _, err := d.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: item}); err != nil {
		d.t.Fatal(err)
	}
}

func (d *dynamoTamperer) del(id string, v int64) {
	d.t.Helper()
	if _, err := d.db.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: aws.String(d.table), Key: dkey(id, v)}); err != nil {
		d.t.Fatal(err)
	}
}

func (d *dynamoTamperer) changeData(id, old, new string) {
	it := d.get(id, 1)
	data := it["data"].(*ddb.AttributeValueMemberS).Value
	if !strings.Contains(data, old) {
		d.t.Fatalf("%s v1 holds no %s: %s", id, old, data)
	}
	it["data"] = &ddb.AttributeValueMemberS{Value: strings.Replace(data, old, new, 1)}
	d.put(it)
}

func (d *dynamoTamperer) deleteEvent(id string, v int64) { d.get(id, v); d.del(id, v) }

func (d *dynamoTamperer) deleteStream(id string) {
	for v := int64(1); v <= 4; v++ {
		d.del(id, v)
	}
}

func (d *dynamoTamperer) swap(id string, a, b int64) {
	ia, ib := d.get(id, a), d.get(id, b)
	ia["version"], ib["version"] = ib["version"], ia["version"]
	d.put(ia)
	d.put(ib)
}

func lookupEnv(t *testing.T) string {
	t.Helper()
	env := os.Getenv("LEDGER_ENV") // set by startAWS
	if env == "" {
		t.Fatal("LEDGER_ENV is not set")
	}
	return env
}
