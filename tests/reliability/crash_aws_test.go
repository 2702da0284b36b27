package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore/dynamostore"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/orders"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/dynamoviews"
)

// The real binary on the AWS backend (`serve --backend aws` over moto, which
// scripts/moto.sh serves one request at a time), under a steady load of
// placements and cancels, killed with SIGKILL at random moments and
// restarted, three times. Afterwards: every order that got a 201 is in the
// events table and reaches a terminal status, settled, with exactly one
// terminal event; the read table holds, for every order, exactly the view
// folded from its events (a rebuild's result); and the dead-letter queue
// holds nothing but, at most, messages for orders that were never
// acknowledged and have no events (the emulator's defect, see below).
//
// It sets the process environment (the binary reads AWS_ENDPOINT_URL and
// LEDGER_ENV), so it does not run in parallel with other tests.
func TestCrashUnderLoadAWS(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	names, clients := awstest.Bootstrap(t)
	t.Setenv("AWS_ENDPOINT_URL", endpoint)
	t.Setenv("LEDGER_ENV", names.Env)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	flags := []string{"--backend", "aws", "--retry-backoff", "20ms", "--workers", "2",
		"--sim-payment-decline-rate", "0.1", "--sim-seed", fmt.Sprint(seed%1000 + 1)}
	const clientsN, cycles = 3, 3
	l := &load{accepted: map[string]string{}}
	for c := range cycles {
		p := serve(t, t.TempDir(), flags...)
		pc := newClient(t, p.URL)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i := range clientsN {
			wg.Add(1)
			crng := rand.New(rand.NewPCG(seed, uint64(c*clientsN+i+1)))
			go func() {
				defer wg.Done()
				l.run(ctx, pc, i, crng)
			}()
		}
		time.Sleep(time.Duration(1000+rng.IntN(2000)) * time.Millisecond)
		err := p.Signal(syscall.SIGKILL)
		cancel()
		wg.Wait()
		if err == nil || !strings.Contains(err.Error(), "signal: killed") {
			t.Fatalf("cycle %d: the server did not die of SIGKILL: %v", c, err)
		}
		l.mu.Lock()
		t.Logf("cycle %d: %d orders accepted so far, %d answers lost to kills", c, len(l.accepted), len(l.unknown))
		l.mu.Unlock()
	}
	for _, b := range l.bad {
		t.Errorf("a client got: %s", b)
	}
	if len(l.accepted) == 0 {
		t.Fatal("no order was accepted")
	}

	// The last start: retry the placements whose answer was lost, then let
	// everything finish.
	p := serve(t, t.TempDir(), flags...)
	c := newClient(t, p.URL)
	ctx := context.Background()
	for _, key := range l.unknown {
		o, err := c.Place(ctx, placeRequest(key, 1), api.WithIdempotencyKey(key))
		switch statusOf(err, http.StatusCreated) {
		case http.StatusCreated:
			l.accepted[orderIDOf(t, o)] = key
		case http.StatusUnprocessableEntity: // stored before the kill with another quantity
		default:
			t.Fatalf("retrying placement %s: %v", key, err)
		}
	}

	store, err := dynamostore.New(clients.DynamoDB, names.EventsTable, dynamostore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	views, err := dynamoviews.New(clients.DynamoDB, names.OrdersTable)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := orders.New(orders.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	codec := orders.NewCodec()
	settledOrders := map[string]bool{}
	waitFor(t, "every accepted order to settle and its read item to catch up", func() (bool, string) {
		for id := range l.accepted {
			if settledOrders[id] {
				continue
			}
			st, err := svc.Load(ctx, id)
			if err != nil {
				return false, fmt.Sprintf("load %s: %v", id, err)
			}
			if !st.Order.Exists() {
				return false, fmt.Sprintf("order %s got a 201 but is not in the events table", id)
			}
			if !st.Order.Settled() {
				return false, fmt.Sprintf("order %s is %s, next step %q", id, st.Order.Status, st.Order.NextStep())
			}
			want, err := projections.Fold(codec, st.Events)
			if err != nil {
				t.Fatal(err)
			}
			got, err := views.Get(ctx, id)
			if err != nil || got.Version != want.Version {
				return false, fmt.Sprintf("read item of %s at version %d, events at %d (%v)", id, got.Version, want.Version, err)
			}
			settledOrders[id] = true
		}
		return true, ""
	})
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}

	for id := range l.accepted {
		st, err := svc.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		terminals := 0
		for _, e := range st.Events {
			if order.IsTerminal(e.Type) {
				terminals++
			}
		}
		if terminals != 1 {
			t.Errorf("order %s has %d terminal events: %v", id, terminals, typesOf(st.Events))
		}
		want, err := projections.Fold(codec, st.Events)
		if err != nil {
			t.Fatal(err)
		}
		got, err := views.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !sameView(got, want) {
			t.Errorf("order %s: the read table holds %+v, its events fold to %+v", id, got, want)
		}
	}
	dlq, err := clients.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(names.DeadLetterQueue)})
	if err != nil {
		t.Fatal(err)
	}
	// A dead letter is unexpected unless it names an order that was never
	// acknowledged and has no events: moto's stream was seen to carry a
	// record of a transaction it cancelled (a placement retried with its
	// Idempotency-Key after a kill lost the answer; see the shared emulator
	// notes, "stale stream iterators"), which the processor rightly finds
	// poison. Real DynamoDB streams carry only committed writes.
	for range 10 {
		out, err := clients.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: dlq.QueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			var ev struct {
				StreamID string `json:"stream_id"`
			}
			_ = json.Unmarshal([]byte(aws.ToString(m.Body)), &ev)
			st, err := svc.Load(ctx, ev.StreamID)
			_, acked := l.accepted[ev.StreamID]
			if ev.StreamID == "" || err != nil || st.Order.Exists() || acked {
				t.Errorf("the dead-letter queue holds %s (order %q: exists %v, acknowledged %v, %v)", aws.ToString(m.Body), ev.StreamID, st.Order.Exists(), acked, err)
				continue
			}
			t.Logf("dead letter for order %s, which was never acknowledged and has no events: the emulator's stream record of a cancelled transaction", ev.StreamID)
		}
	}
	attrs, err := clients.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages}})
	if err != nil {
		t.Fatal(err)
	}
	if v := attrs.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)]; v != "0" {
		t.Errorf("the dead-letter queue still holds %s visible messages after the check", v)
	}
	t.Logf("%d orders accepted over %d kills, all settled and projected", len(l.accepted), cycles)
}

// sameView compares two views field by field, times to the millisecond
// (what the read table keeps).
func sameView(a, b projections.View) bool {
	a.CreatedAt, b.CreatedAt = a.CreatedAt.Truncate(time.Millisecond), b.CreatedAt.Truncate(time.Millisecond)
	a.UpdatedAt, b.UpdatedAt = a.UpdatedAt.Truncate(time.Millisecond), b.UpdatedAt.Truncate(time.Millisecond)
	return a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) &&
		a.OrderID == b.OrderID && a.Status == b.Status && a.Version == b.Version &&
		a.CustomerName == b.CustomerName && a.ProductName == b.ProductName && a.Quantity == b.Quantity &&
		a.PaymentID == b.PaymentID && a.Amount == b.Amount && a.ReservationID == b.ReservationID &&
		a.FailureReason == b.FailureReason
}
