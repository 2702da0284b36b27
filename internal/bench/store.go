package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
	"github.com/orderledger/orderledger/orders"
)

// StoreOptions configures the event store benchmark.
type StoreOptions struct {
	// Orders is the number of orders per append phase (default 20,000).
	Orders int
	// Writers is the number of concurrent writers of the second append phase
	// (default 8).
	Writers int
	// Dir is where the benchmark's store is created, in a fresh
	// sub-directory removed afterwards (default the OS temporary directory).
	// Put it on the disk to be measured: a tmpfs makes fsync free.
	Dir string
	// Progress, when set, receives a progress line (stderr).
	Progress io.Writer
}

// Store benchmarks the embedded event store, durably (every append fsynced
// before it returns), with the life of an order: four appends of one event
// each (OrderPlaced, PaymentSucceeded, InventoryReserved, OrderCompleted),
// each expecting the version the previous one wrote, as the API and the
// order processor do. It measures, in events per second:
//
//   - append_1w_events_per_s: Orders orders appended by one writer;
//   - append_8w_events_per_s: Orders more orders by Writers writers, each on
//     its own orders;
//   - load_events_per_s: Load of every order (2 x Orders streams), one reader;
//   - replay_events_per_s: the whole change feed read from position 1 in
//     pages of 1,000, one reader;
//
// with the events each commit group carried (append_1w_events_per_group,
// append_8w_events_per_group: one group is one fsync) and their share of
// the disk's bound (append_1w_share_of_disk, append_8w_share_of_disk: the
// rate over writers x disk_fsyncs_per_s), and, first,
// disk_fsyncs_per_s: the disk's own rate of small synced writes,
// for reference, measured again as disk_fsyncs_after_per_s once the appends
// are done.
//
// Events are encoded with the real codec before the clock starts, so the
// figures are the store's.
func Store(ctx context.Context, opts StoreOptions) (Report, error) {
	if opts.Orders <= 0 {
		opts.Orders = 20_000
	}
	if opts.Writers <= 0 {
		opts.Writers = 8
	}
	if opts.Dir == "" {
		opts.Dir = os.TempDir()
	}
	dir, err := os.MkdirTemp(opts.Dir, "bench-store-")
	if err != nil {
		return Report{}, fmt.Errorf("bench: store: %w", err)
	}
	defer os.RemoveAll(dir)
	s, err := pebblestore.Open(dir)
	if err != nil {
		return Report{}, fmt.Errorf("bench: store: %w", err)
	}
	defer s.Close()

	r := Report{
		Title: "event store (embedded, pebble, every append fsynced)",
		Params: map[string]any{
			"orders":           opts.Orders,
			"events_per_order": 4,
			"writers":          opts.Writers,
			"dir":              opts.Dir,
		},
	}
	if err := measureFsync(dir, &r); err != nil {
		return r, err
	}
	w1 := newOrders(opts.Orders)
	g := s.GroupStats()
	if err := appendOrders(ctx, s, w1, 1, NewProgress(opts.Progress, "append, 1 writer", 4*len(w1)), &r,
		"append_1w_events_per_s", "append, 1 writer"); err != nil {
		return r, err
	}
	g = perGroup(&r, "append_1w_events_per_group", g, s.GroupStats())
	w8 := newOrders(opts.Orders)
	if err := appendOrders(ctx, s, w8, opts.Writers, NewProgress(opts.Progress, fmt.Sprintf("append, %d writers", opts.Writers), 4*len(w8)), &r,
		"append_8w_events_per_s", fmt.Sprintf("append, %d writers", opts.Writers)); err != nil {
		return r, err
	}
	perGroup(&r, "append_8w_events_per_group", g, s.GroupStats())
	shareOfDisk(&r, "append_1w_share_of_disk", "append_1w_events_per_s", 1)
	shareOfDisk(&r, "append_8w_share_of_disk", "append_8w_events_per_s", opts.Writers)
	// The disk again, right after the appends: its rate drifts within a
	// run, and the append rates lie between the two probes.
	if err := measureOverwriteFsync(dir, &r, "disk_fsyncs_after_per_s", "disk again, after the appends"); err != nil {
		return r, err
	}
	all := append(w1, w8...)

	p := NewProgress(opts.Progress, "load every order", len(all))
	start := time.Now()
	n := 0
	for i, o := range all {
		evs, err := s.Load(ctx, o.id, 0)
		if err != nil {
			return r, fmt.Errorf("bench: store: load: %w", err)
		}
		if len(evs) != 4 {
			return r, fmt.Errorf("bench: store: order %s has %d events, want 4", o.id, len(evs))
		}
		n += len(evs)
		if i%1000 == 999 {
			p.Add(1000)
		}
	}
	r.Add("load_events_per_s", "load every order", n, time.Since(start))
	p.Done()

	head, err := s.Head(ctx)
	if err != nil {
		return r, fmt.Errorf("bench: store: %w", err)
	}
	p = NewProgress(opts.Progress, "replay the feed", int(head))
	start = time.Now()
	n = 0
	for after := uint64(0); after < head; {
		page, err := s.ReadFeed(ctx, after, 1000)
		if err != nil {
			return r, fmt.Errorf("bench: store: read feed: %w", err)
		}
		if len(page) == 0 {
			return r, fmt.Errorf("bench: store: feed ends at %d, head %d", after, head)
		}
		after = page[len(page)-1].Position
		n += len(page)
		p.Add(len(page))
	}
	r.Add("replay_events_per_s", "replay the whole feed", n, time.Since(start))
	p.Done()
	if n != 8*opts.Orders {
		return r, fmt.Errorf("bench: store: replayed %d events, want %d", n, 8*opts.Orders)
	}
	return r, nil
}

// measureFsync adds the disk's rate of 4 KiB overwrites each followed by an
// fsync (for half a second), the ceiling of one-writer durable appends. The
// disk's speed swings several-fold over minutes, so this figure, measured in
// the same run, is what the append rates should be read against.
func measureFsync(dir string, r *Report) error {
	if err := measureOverwriteFsync(dir, r, "disk_fsyncs_per_s", "disk: 4 KiB write + fsync"); err != nil {
		return err
	}
	// The same rate where each write lands past the last: in a file that
	// grows (its size changes on every sync), in one preallocated with
	// fallocate (pebble preallocates its WAL so, and the first write to
	// an unwritten extent changes the file's metadata too) and in one
	// written in advance and synced with fdatasync (the store's own
	// durable log). A write-ahead log appends; these say what its syncs
	// can cost on this disk.
	for _, probe := range []struct {
		key, label string
		mode       appendMode
	}{
		{"disk_append_fsyncs_per_s", "disk: 4 KiB append + fsync", growing},
		{"disk_prealloc_fsyncs_per_s", "disk: same, preallocated", preallocated},
		{"disk_prewritten_fdatasyncs_per_s", "disk: same, prewritten, fdatasync", prewritten},
	} {
		if err := measureAppendFsync(dir, r, probe.key, probe.label, probe.mode); err != nil {
			return err
		}
	}
	return nil
}

// measureOverwriteFsync adds the rate of 4 KiB writes to one block of a
// file, each followed by an fsync, for half a second.
func measureOverwriteFsync(dir string, r *Report, key, label string) error {
	f, err := os.Create(filepath.Join(dir, "fsync-probe"))
	if err != nil {
		return fmt.Errorf("bench: store: fsync probe: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	page := make([]byte, 4096)
	n := 0
	start := time.Now()
	for time.Since(start) < 500*time.Millisecond {
		if _, err := f.WriteAt(page, 0); err != nil {
			return fmt.Errorf("bench: store: fsync probe: %w", err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("bench: store: fsync probe: %w", err)
		}
		n++
	}
	r.Add(key, label, n, time.Since(start))
	return nil
}

// appendMode is how the file of an append probe is prepared.
type appendMode int

const (
	growing      appendMode = iota // empty: every sync also records a new size
	preallocated                   // fallocate'd, size kept: unwritten extents
	prewritten                     // zeros written and synced first
)

func measureAppendFsync(dir string, r *Report, key, label string, mode appendMode) error {
	const size = 64 << 20
	f, err := os.Create(filepath.Join(dir, "fsync-probe-append"))
	if err != nil {
		return fmt.Errorf("bench: store: fsync probe: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	sync := f.Sync
	switch mode {
	case preallocated:
		if err := preallocate(f, size); err != nil {
			return nil // not on this OS or file system: no figure
		}
	case prewritten:
		if err := f.Truncate(size); err != nil {
			return fmt.Errorf("bench: store: fsync probe: %w", err)
		}
		zeros := make([]byte, 1<<20)
		for off := int64(0); off < size; off += int64(len(zeros)) {
			if _, err := f.WriteAt(zeros, off); err != nil {
				return fmt.Errorf("bench: store: fsync probe: %w", err)
			}
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("bench: store: fsync probe: %w", err)
		}
		sync = func() error { return datasync(f) }
	}
	page := make([]byte, 4096)
	n := 0
	start := time.Now()
	for time.Since(start) < 500*time.Millisecond && n < size/4096 {
		if _, err := f.WriteAt(page, int64(n)*4096); err != nil {
			return fmt.Errorf("bench: store: fsync probe: %w", err)
		}
		if err := sync(); err != nil {
			return fmt.Errorf("bench: store: fsync probe: %w", err)
		}
		n++
	}
	r.Add(key, label, n, time.Since(start))
	return nil
}

// perGroup records, as a parameter of r, the events per commit group (per
// fsync of the store's log) between two snapshots, and returns the later.
func perGroup(r *Report, key string, before, after pebblestore.GroupStats) pebblestore.GroupStats {
	if groups := after.Groups - before.Groups; groups > 0 {
		r.Params[key] = math.Round(100*float64(after.Events-before.Events)/float64(groups)) / 100
	}
	return after
}

// shareOfDisk records, as a parameter of r, the append rate of figure
// over writers times the disk's fsync rate measured first in the same run
// (each writer waits for its own fsync, so that product is its ceiling).
func shareOfDisk(r *Report, key, figure string, writers int) {
	f, ok1 := r.Figure(figure)
	d, ok2 := r.Figure("disk_fsyncs_per_s")
	if ok1 && ok2 && d.PerSecond() > 0 {
		r.Params[key] = math.Round(100*f.PerSecond()/(float64(writers)*d.PerSecond())) / 100
	}
}

// benchOrder is one order's stream ID and its four events.
type benchOrder struct {
	id     string
	events [4]eventstore.Event
}

// newOrders builds n orders' events with the real codec.
func newOrders(n int) []benchOrder {
	codec := orders.NewCodec()
	ids := domain.NewULIDSource(nil)
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	out := make([]benchOrder, n)
	for i := range out {
		id := ids(at)
		meta := eventstore.Metadata{CorrelationID: id, RequestID: fmt.Sprintf("req-%08d", i)}
		domainEvents := []order.Event{
			order.Placed{CustomerName: fmt.Sprintf("Customer %d Example", i), ProductName: "Mechanical keyboard, UK layout", Quantity: 1 + i%5},
			order.PaymentSucceeded{PaymentID: fmt.Sprintf("pay_%012d", i), Amount: int64(4999 * (1 + i%5))},
			order.InventoryReserved{ReservationID: fmt.Sprintf("res_%012d", i)},
			order.Completed{},
		}
		out[i].id = id
		for j, de := range domainEvents {
			e, err := codec.Encode(de, ids(at), at.Add(time.Duration(j)*time.Second), meta)
			if err != nil {
				panic(err) // the codec encodes every order event
			}
			e.StreamID = id
			meta.CausationID = e.EventID
			out[i].events[j] = e
		}
	}
	return out
}

// appendOrders appends every order's four events, one append per event, from
// writers goroutines (order i goes to writer i % writers), and adds the rate.
func appendOrders(ctx context.Context, s eventstore.Store, orders []benchOrder, writers int, p *Progress, r *Report, key, label string) error {
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(orders); i += writers {
				o := &orders[i]
				for v := range o.events {
					if _, err := s.Append(ctx, o.id, int64(v), o.events[v]); err != nil {
						errs <- fmt.Errorf("bench: store: append: %w", err)
						return
					}
				}
				p.Add(4)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	p.Done()
	r.Add(key, label, 4*len(orders), elapsed)
	return nil
}
