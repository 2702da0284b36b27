package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/internal/ledgertest"
	"github.com/orderledger/orderledger/internal/resources"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/dynamoviews"
)

// rebuildResult is the JSON `ledger projections rebuild --backend aws
// --json` prints (dynamoviews.RebuildResult).
type rebuildResult = dynamoviews.RebuildResult

// rebuildCLI runs `ledger projections rebuild --backend aws --json` with
// extra flags in the test's environment and returns its result.
func rebuildCLI(t *testing.T, flags ...string) rebuildResult {
	t.Helper()
	cmd := exec.Command(ledgertest.Binary(t), append([]string{"projections", "rebuild", "--backend", "aws", "--json"}, flags...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ledger projections rebuild %v: %v\nstdout %s\nstderr %s", flags, err, out, ledgertest.LastLines(stderr.String(), 20))
	}
	var res rebuildResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("rebuild output %q: %v", out, err)
	}
	return res
}

// placeMany places n orders from 8 clients and returns their IDs.
func (s *server) placeMany(n int) []string {
	s.t.Helper()
	ids := make([]string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				o, err := s.api.Place(context.Background(), api.PlaceRequest{CustomerName: "Ada", ProductName: "tea", Quantity: 1 + i%3})
				if err != nil {
					errs <- err
					return
				}
				ids[i] = o.OrderID
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		s.t.Fatal(err)
	}
	return ids
}

// sameAsLog asserts that the read table holds, for every order, exactly
// what GET /orders/{id}/?consistent=true folds from the log.
func (s *server) sameAsLog(views *dynamoviews.Store, ids []string) {
	s.t.Helper()
	ctx := context.Background()
	for _, id := range ids {
		want, err := s.api.Get(ctx, id, api.GetQuery{Consistent: true})
		if err != nil {
			s.t.Fatalf("GET %s consistent: %v", id, err)
		}
		got, err := views.Get(ctx, id)
		if err != nil {
			s.t.Fatalf("read table %s: item %s: %v", views.Table(), id, err)
		}
		if got != want.View {
			s.t.Fatalf("read table %s: item %s:\n got  %+v\n want %+v (GET ?consistent=true)", views.Table(), id, got, want.View)
		}
	}
}

// TestAWSRebuild is issue 14's "done when" for the rebuild, on moto: 200
// orders placed on serve --backend aws; items of the read table deleted,
// edited (a wrong status) and one added for an order with no events;
// `ledger projections rebuild --backend aws` restores every item to what
// GET ?consistent=true says and reports the orphan (and --prune deletes
// it); the same --into a new table, followed by a restart on it
// (LEDGER_ORDERS_TABLE), which then serves and projects there; and a
// rebuild killed with SIGKILL halfway resumes on the next run.
func TestAWSRebuild(t *testing.T) {
	s := startAWS(t, simulate(t))
	ctx := context.Background()
	names := resources.For(os.Getenv("LEDGER_ENV"))
	db := awsconfig.NewClients(awstest.Config(t)).DynamoDB
	views, err := dynamoviews.New(db, names.OrdersTable)
	if err != nil {
		t.Fatal(err)
	}

	const n = 200
	ids := s.placeMany(n)
	for _, id := range ids {
		s.waitTerminal(id)
	}
	s.sameAsLog(views, ids)

	// Damage: 10 items deleted, 10 with a wrong status, one orphan.
	key := func(id string) map[string]dtypes.AttributeValue {
		return map[string]dtypes.AttributeValue{"order_id": &dtypes.AttributeValueMemberS{Value: id}}
	}
	for _, id := range ids[:10] {
		if _, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(names.OrdersTable), Key: key(id)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids[10:20] {
		if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(names.OrdersTable), Key: key(id),
			UpdateExpression:          aws.String("SET #s = :s"),
			ExpressionAttributeNames:  map[string]string{"#s": "status"},
			ExpressionAttributeValues: map[string]dtypes.AttributeValue{":s": &dtypes.AttributeValueMemberS{Value: "Pending"}}}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	orphan := projections.View{OrderID: domain.NewULIDSource(nil)(now), CustomerName: "Nobody", ProductName: "tea", Quantity: 1,
		Status: order.StatusCompleted, Version: 4, CreatedAt: now, UpdatedAt: now}
	if err := views.Put(ctx, 0, orphan); err != nil {
		t.Fatal(err)
	}

	res := rebuildCLI(t, "--segments", "4")
	if res.Orders != n || res.Repaired != 20 || res.Unchanged != n-20 || res.OrphanCount != 1 || len(res.Orphans) != 1 || res.Orphans[0] != orphan.OrderID || res.Pruned != 0 {
		t.Fatalf("rebuild in place: %+v; want %d orders, 20 repaired, the orphan %s reported", res, n, orphan.OrderID)
	}
	s.sameAsLog(views, ids)
	if _, err := views.Get(ctx, orphan.OrderID); err != nil {
		t.Fatalf("the orphan without --prune: %v", err)
	}
	t.Logf("rebuild in place: %d orders, %d events in %v, %.0f write units for %d views written",
		res.Orders, res.Events, res.Elapsed, res.WriteUnits, res.Repaired)
	if res = rebuildCLI(t, "--prune"); res.Repaired != 0 || res.Pruned != 1 {
		t.Fatalf("rebuild --prune: %+v; want nothing repaired and the orphan deleted", res)
	}
	if _, err := views.Get(ctx, orphan.OrderID); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("the orphan after --prune: %v", err)
	}

	// Blue/green: a new table, filled, then the server restarted on it.
	blue := names.OrdersTable + "-blue"
	t.Cleanup(func() {
		_, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(blue)})
	})
	if res = rebuildCLI(t, "--into", blue); res.Table != blue || res.Orders != n || res.Repaired != n || res.OrphanCount != 0 {
		t.Fatalf("rebuild --into %s: %+v", blue, res)
	}
	blueViews, err := dynamoviews.New(db, blue)
	if err != nil {
		t.Fatal(err)
	}
	s.sameAsLog(blueViews, ids)
	if err := s.stop(os.Interrupt); err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Setenv(resources.OrdersTableEnv, blue)
	s = start(t, t.TempDir(), "--backend", "aws", "--services-url", simulate(t))
	if !strings.Contains(s.Logs.String(), "read table "+blue) {
		t.Fatalf("the restarted server does not say it reads %s:\n%s", blue, s.Logs.String())
	}
	listed := 0
	for _, err := range s.api.ListAll(ctx, projections.ListQuery{Limit: 100}) {
		if err != nil {
			t.Fatal(err)
		}
		listed++
	}
	if listed != n {
		t.Fatalf("GET /orders/ on %s lists %d orders, want %d", blue, listed, n)
	}
	fresh := s.place("Grace", "tea", 1)
	s.waitTerminal(fresh.OrderID)
	ids = append(ids, fresh.OrderID)
	s.sameAsLog(blueViews, ids) // the projector writes to the new table
	if _, err := views.Get(ctx, fresh.OrderID); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("an order placed after the switch is in the old table too: %v", err)
	}

	// Killed halfway: every item of the new table deleted, a slow rebuild
	// (bounded write units) killed with SIGKILL once a segment is done,
	// then run again.
	for _, id := range ids {
		if _, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(blue), Key: key(id)}); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(ledgertest.Binary(t), "projections", "rebuild", "--backend", "aws", "--segments", "4", "--max-write-units-per-second", "30")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	segmentDone := false
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var line struct {
			Msg   string `json:"msg"`
			Phase string `json:"phase"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "rebuild segment done" && line.Phase == "events" {
			segmentDone = true
			break
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if !segmentDone {
		t.Fatal("the rebuild ended before a segment was done")
	}
	res = rebuildCLI(t)
	if !res.Resumed || res.Segments != 4 || res.SegmentsSkipped < 1 || res.Orders >= uint64(len(ids)) {
		t.Fatalf("rebuild after kill -9: %+v; want the run of 4 segments resumed, at least one skipped, fewer than %d orders scanned", res, len(ids))
	}
	t.Logf("after kill -9: resumed, %d of %d segments skipped, %d of %d orders scanned again", res.SegmentsSkipped, res.Segments, res.Orders, len(ids))
	s.sameAsLog(blueViews, ids)
}
