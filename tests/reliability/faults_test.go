package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orderledger/orderledger/api"
	"github.com/orderledger/orderledger/app"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/processing"
	"github.com/orderledger/orderledger/publisher"
	"github.com/orderledger/orderledger/services"
	"github.com/orderledger/orderledger/services/sim"
)

// placeN places n orders and returns their IDs.
func placeN(t *testing.T, c *api.Client, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = place(t, c, fmt.Sprintf("customer-%d", i))
	}
	return ids
}

// waitTerminal waits until every order in ids has a terminal event and
// returns the log's report.
func waitTerminal(t *testing.T, s *stack, ids []string) {
	t.Helper()
	waitFor(t, "every order to finish", func() (bool, string) {
		for _, id := range ids {
			evs, err := s.store.Load(context.Background(), id, 1)
			if _, done := settled(s.codec, evs); err != nil || !done {
				return false, fmt.Sprintf("order %s: %d events, err %v", id, len(evs), err)
			}
		}
		return true, ""
	})
}

// waitIdle waits until nothing waits in any queue of the pipeline and
// checks that the dead-letter queue is empty.
func waitIdle(t *testing.T, s *stack) {
	t.Helper()
	waitFor(t, "the pipeline to go idle", func() (bool, string) {
		h, err := s.pipe.Health(context.Background())
		return err == nil && h.Idle(), fmt.Sprintf("%+v %v", h, err)
	})
	h, err := s.pipe.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h.DeadLetters != 0 {
		t.Errorf("%d messages in the dead-letter queue", h.DeadLetters)
	}
}

// failedEvent returns the decoded Failed event of id's stream, its terminal
// event (a void or a refund may follow it).
func failedEvent(t *testing.T, s *stack, id string) (order.Failed, bool) {
	t.Helper()
	evs, err := s.store.Load(context.Background(), id, 1)
	if err != nil || len(evs) == 0 {
		t.Fatalf("load %s: %v", id, err)
	}
	i := slices.IndexFunc(evs, func(e eventstore.Event) bool { return order.IsTerminal(e.Type) })
	if i < 0 || evs[i].Type != order.TypeFailed {
		return order.Failed{}, false
	}
	last := evs[i]
	var f order.Failed
	if err := json.Unmarshal(last.Data, &f); err != nil {
		t.Fatal(err)
	}
	return f, true
}

// A payment outage that outlasts three tries (every charge call fails
// transiently) fails every order at the charge step after exactly 3
// attempts; the service is back for the void that follows (a charge may have
// landed unseen), so every order settles with nothing held and nothing
// dead-lettered.
func TestPaymentOutageFailsAfterThreeAttempts(t *testing.T) {
	t.Parallel()
	simulator, err := sim.New(sim.Config{PaymentFailFirst: processing.MaxAttempts})
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, t.TempDir(), stackConfig{Pipeline: true, Payment: simulator, Inventory: simulator})
	const n = 12
	ids := placeN(t, s.api, n)
	waitTerminal(t, s, ids)
	waitIdle(t, s)
	for _, id := range ids {
		f, ok := failedEvent(t, s, id)
		if !ok {
			t.Errorf("order %s did not fail", id)
			continue
		}
		if f.Step != string(order.StepCharge) || f.Attempts != processing.MaxAttempts {
			t.Errorf("order %s failed at %q after %d attempts; want charge after %d", id, f.Step, f.Attempts, processing.MaxAttempts)
		}
	}
	st := simulator.Stats()
	if st.Errors != n*processing.MaxAttempts || st.Charges != 0 || st.Reservations != 0 || st.Voids != n {
		t.Errorf("simulator saw %+v; want %d errors, %d voids, no charge, no reservation", st, n*processing.MaxAttempts, n)
	}
	rep := checkLog(t, s.store, s.codec)
	s.waitProjected(t)
	checkViews(t, s.views, s.codec, rep)
}

// outage is a payment service that is down until the first order comes
// back for a second attempt: that attempt and everything after succeed.
type outage struct {
	services.Payment
	mu       sync.Mutex
	down     bool
	attempts map[string]int
	failed   int
}

func (o *outage) Charge(ctx context.Context, req services.ChargeRequest) (services.Charge, error) {
	o.mu.Lock()
	o.attempts[req.OrderID]++
	if o.attempts[req.OrderID] >= 2 {
		o.down = false // the outage ends mid-run
	}
	down := o.down
	if down {
		o.failed++
	}
	o.mu.Unlock()
	if down {
		return services.Charge{}, errors.New("payment service unavailable")
	}
	return o.Payment.Charge(ctx, req)
}

// An outage that ends mid-run: attempts made during it fail, later attempts
// succeed, and every order completes; also the last allowed attempt
// succeeding (the first two fail) completes the order.
func TestPaymentOutageEndsMidRun(t *testing.T) {
	t.Parallel()
	t.Run("ends on the first retry", func(t *testing.T) {
		t.Parallel()
		simulator, err := sim.New(sim.Config{})
		if err != nil {
			t.Fatal(err)
		}
		pay := &outage{Payment: simulator, down: true, attempts: map[string]int{}}
		// One worker, so orders queue up behind the outage.
		s := newStack(t, t.TempDir(), stackConfig{Pipeline: true, Payment: pay, Inventory: simulator, Workers: 1})
		ids := placeN(t, s.api, 10)
		waitTerminal(t, s, ids)
		waitIdle(t, s)
		for _, id := range ids {
			if f, failed := failedEvent(t, s, id); failed {
				t.Errorf("order %s failed: %+v", id, f)
			}
		}
		pay.mu.Lock()
		defer pay.mu.Unlock()
		if pay.failed == 0 {
			t.Error("no charge failed: the outage was not exercised")
		}
		for id, n := range pay.attempts {
			if n > 2 {
				t.Errorf("order %s was charged %d times; the outage ended at the first retry", id, n)
			}
		}
		t.Logf("%d charges failed during the outage", pay.failed)
		checkLog(t, s.store, s.codec)
	})
	t.Run("third attempt succeeds", func(t *testing.T) {
		t.Parallel()
		simulator, err := sim.New(sim.Config{PaymentFailFirst: processing.MaxAttempts - 1})
		if err != nil {
			t.Fatal(err)
		}
		s := newStack(t, t.TempDir(), stackConfig{Pipeline: true, Payment: simulator, Inventory: simulator})
		ids := placeN(t, s.api, 6)
		waitTerminal(t, s, ids)
		waitIdle(t, s)
		rep := checkLog(t, s.store, s.codec)
		for _, id := range ids {
			if e := rep.terminal[id]; e.Type != order.TypeCompleted {
				t.Errorf("order %s ended %s, want completed on its last attempt", id, e.Type)
			}
		}
		if st := simulator.Stats(); st.Errors != 6*(processing.MaxAttempts-1) || st.Charges != 6 {
			t.Errorf("simulator saw %+v; want %d errors and 6 charges", st, 6*(processing.MaxAttempts-1))
		}
	})
}

// A webhook receiver that is down while orders finish still gets every
// notification once it is back (at least once, de-duplicated by event ID).
func TestWebhookReceiverDownThenUp(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	rc.down.Store(true)
	s := newStack(t, t.TempDir(), stackConfig{Pipeline: true, Webhooks: []string{rc.srv.URL}})
	const n = 10
	ids := placeN(t, s.api, n)
	waitTerminal(t, s, ids)
	// Every notification has been tried and refused at least once.
	waitFor(t, "the receiver to refuse every notification", func() (bool, string) {
		return rc.refused.Load() >= n, fmt.Sprintf("%d refused", rc.refused.Load())
	})
	rep := checkLog(t, s.store, s.codec)
	if m := rc.missing(rep.terminal); len(m) != n {
		t.Fatalf("%d notifications missing while the receiver was down, want all %d", len(m), n)
	}
	rc.down.Store(false)
	waitFor(t, "every notification after the receiver recovered", func() (bool, string) {
		m := rc.missing(rep.terminal)
		return len(m) == 0, fmt.Sprintf("%d missing", len(m))
	})
	waitIdle(t, s)
	rc.checkNotified(t, rep)
	t.Logf("%d deliveries refused while down", rc.refused.Load())
}

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory, or skips the
// test when mounting is not permitted here.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs here (needs root and mount permission): %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func remount(t *testing.T, dir, mode string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+mode, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s %s: %v: %s", dir, mode, err, out)
	}
}

// fill writes a file that leaves about free bytes on dir's filesystem.
func fill(t *testing.T, dir string, free int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			t.Fatal(err)
		}
		avail := int64(st.Bavail) * int64(st.Bsize)
		if avail <= free {
			return path
		}
		n := min(int64(len(buf)), avail-free)
		if _, err := f.Write(buf[:n]); err != nil {
			return path // already full
		}
	}
}

// placeUntilRefused places orders until the API refuses one, returning the
// IDs accepted and the refusal. Any answer but 201 or 503 fails the test.
func placeUntilRefused(t *testing.T, c *api.Client, limit int) ([]string, error) {
	t.Helper()
	var ids []string
	for i := range limit {
		o, err := c.Place(context.Background(), placeRequest(fmt.Sprintf("filler-%d-%s", i, strings.Repeat("x", 150)), 1))
		switch statusOf(err, http.StatusCreated) {
		case http.StatusCreated:
			ids = append(ids, orderIDOf(t, o))
		case http.StatusServiceUnavailable:
			if !isProblem(err) {
				t.Errorf("503 without a problem body: %v", err)
			}
			return ids, err
		default:
			t.Fatalf("POST /orders on a failing disk: %v; want 201 or 503", err)
		}
	}
	t.Fatalf("the API accepted %d orders on a nearly full disk without refusing one", limit)
	return nil, nil
}

// reopenAndVerify opens the data directory again and checks that every
// accepted order is stored and the log and read model are consistent.
func reopenAndVerify(t *testing.T, dir string, accepted []string) {
	t.Helper()
	s := newStack(t, dir, stackConfig{})
	rep := checkLog(t, s.store, s.codec)
	for _, id := range accepted {
		if len(rep.streams[id]) == 0 {
			t.Errorf("accepted order %s is missing after reopening", id)
		}
	}
	s.waitProjected(t)
	checkViews(t, s.views, s.codec, rep)
	// And it takes writes again.
	place(t, s.api, "after recovery")
}

// A full disk: appends fail with a clean 503 (never a 500 or a hang), and
// after space is freed the data reopens intact with every accepted order.
func TestFullDiskAnswers503AndCorruptsNothing(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, "24m")
	dir := filepath.Join(mnt, "data")
	s := newStack(t, dir, stackConfig{})
	before := placeN(t, s.api, 20)
	filler := fill(t, mnt, 32<<10)
	accepted, refusal := placeUntilRefused(t, s.api, 5000)
	t.Logf("accepted %d more orders, then: %s", len(accepted), truncate(refusal.Error(), 200))
	// Reads still work while writes fail.
	if _, err := s.api.Get(context.Background(), before[0], api.GetQuery{}); err != nil {
		t.Errorf("GET an order on a full disk: %v", err)
	}
	s.stop()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	reopenAndVerify(t, dir, append(before, accepted...))
}

// bindReadOnly mounts src read-only on a fresh directory, or skips the test
// when mounting is not permitted here.
func bindReadOnly(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if out, err := exec.Command("mount", "--bind", src, dst).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot bind-mount here (needs root and mount permission): %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dst).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s", dst, err, out)
		}
	})
	remount(t, dst, "ro,bind")
	return dst
}

// checkOneLineFailure checks that a ledger run failed with a non-zero exit
// and exactly one line of message on stderr (JSON log records aside) that
// names the failing directory's problem.
func checkOneLineFailure(t *testing.T, code int, stderr, want string) {
	t.Helper()
	lines := messageLines(stderr)
	if code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "ledger serve: ") || !strings.Contains(lines[0], want) {
		t.Errorf("exit %d with stderr %q; want a non-zero exit and one line \"ledger serve: ...%s...\"", code, stderr, want)
	}
}

// A read-only data directory: the binary exits non-zero with a one-line
// message, for a directory holding data and for a new one, and the data
// reopens intact once writable.
func TestReadOnlyDataDirExitsCleanly(t *testing.T) {
	t.Parallel()
	src := filepath.Join(t.TempDir(), "data")
	s := newStack(t, src, stackConfig{})
	ids := placeN(t, s.api, 10)
	s.stop()
	ro := bindReadOnly(t, filepath.Dir(src))

	code, _, stderr := runLedger(t, "serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(ro, "data"))
	checkOneLineFailure(t, code, stderr, "read-only file system")
	code, _, stderr = runLedger(t, "serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(ro, "new"))
	checkOneLineFailure(t, code, stderr, "read-only file system")

	reopenAndVerify(t, src, ids)
}

// A data directory on a full disk: the binary exits non-zero with a
// one-line message instead of serving, and leaves nothing half-written that
// stops a later start once space is freed.
func TestFullDiskAtStartExitsCleanly(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, "8m")
	filler := fill(t, mnt, 0)
	dir := filepath.Join(mnt, "data")
	code, _, stderr := runLedger(t, "serve", "--addr", "127.0.0.1:0", "--data", dir)
	checkOneLineFailure(t, code, stderr, "no space left on device")
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	reopenAndVerify(t, dir, nil)
}

// A process killed during an order's last processing attempt, after the
// charge was recorded: the order must still finish (complete, or fail with a
// refund), not be stranded half-done (charged, not terminal) with its
// message in the dead-letter queue. The embedded broker uncounts a receive
// cut off by a crash (messaging/pebblequeue releaseInFlight), so the handler
// gets the attempt that finishes the order.
func TestCrashDuringLastAttemptStrandsNoOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s := newStack(t, dir, stackConfig{})
	id := place(t, s.api, "last attempt")
	placedEnv, err := s.store.Load(ctx, id, 1)
	if err != nil || len(placedEnv) != 1 {
		t.Fatalf("load: %v", err)
	}
	// Attempt 3 charged and recorded the payment; then the process died.
	now := time.Now().UTC()
	paid, err := s.codec.Encode(order.PaymentSucceeded{PaymentID: "pay-1", Amount: 1000}, domain.NewULIDSource(nil)(now), now, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.Append(ctx, id, 1, paid); err != nil {
		t.Fatal(err)
	}
	head := s.head(t)
	if err := s.store.SaveCheckpoint(ctx, publisher.DefaultConsumer, head); err != nil { // already published
		t.Fatal(err)
	}
	s.stop()

	br, err := app.OpenBroker(filepath.Join(dir, "queue"), 10*time.Millisecond, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(placedEnv[0])
	if _, err := br.Processing.Send(ctx, body, publisher.Attributes(placedEnv[0])); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= processing.MaxAttempts; attempt++ {
		msgs, err := br.Processing.Receive(ctx, 1, time.Second)
		if err != nil || len(msgs) != 1 || msgs[0].ReceiveCount != attempt {
			t.Fatalf("receive %d: %v %+v", attempt, err, msgs)
		}
		if attempt < processing.MaxAttempts { // a transient failure: retry at once
			if err := br.Processing.ChangeVisibility(ctx, msgs[0].ReceiptHandle, 0); err != nil {
				t.Fatal(err)
			}
		} // the last one is in flight when the process dies
	}
	br.Close()

	simulator, err := sim.New(sim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s = newStack(t, dir, stackConfig{Pipeline: true, Payment: simulator, Inventory: simulator})
	ok, state := poll(func() (bool, string) {
		h, err := s.pipe.Health(ctx)
		if err == nil && h.DeadLetters > 0 {
			return true, "dead-lettered"
		}
		evs, err := s.store.Load(ctx, id, 1)
		if end, done := settled(s.codec, evs); err == nil && done {
			return true, end.Type
		}
		return false, fmt.Sprintf("%d events", len(evs))
	})
	if !ok || state == "dead-lettered" {
		evs, _ := s.store.Load(ctx, id, 1)
		t.Fatalf("after a crash during its last attempt the order is stranded at %s (%s)", evs[len(evs)-1].Type, state)
	}
}
