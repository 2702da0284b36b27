package pebblestore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
)

// Benchmarks of the embedded store. Every append is durable (fsynced), so
// the append figures are the disk's as much as the store's. The whole
// workload with its reference figures is `ledger bench store`.
//
//	go test -run '^$' -bench . -benchtime 2000x ./eventstore/pebblestore/

// benchEvent is a typical order event (about 200 bytes stored).
func benchEvent(stream string, i int) eventstore.Event {
	return eventstore.Event{
		EventID:       ids(time.Now()),
		Type:          "PaymentSucceeded",
		SchemaVersion: 2,
		OccurredAt:    time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		Data:          json.RawMessage(fmt.Sprintf(`{"payment_id":"pay_%012d","amount":4999}`, i)),
		Metadata:      eventstore.Metadata{CorrelationID: stream, RequestID: fmt.Sprintf("req-%08d", i)},
	}
}

func benchStore(b *testing.B, opts ...pebblestore.Option) *pebblestore.Store {
	b.Helper()
	s, err := pebblestore.Open(b.TempDir(), opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkAppend: one writer, one event per append, each on a new stream.
func BenchmarkAppend(b *testing.B) { benchAppend(b) }

// BenchmarkAppendFreshLog is BenchmarkAppend into the log files pebble
// creates itself (WithoutPrewrittenWAL): compare the two in one run,
//
//	go test -run '^$' -bench 'Append(FreshLog)?$' -benchtime 3000x -count 9 ./eventstore/pebblestore/
func BenchmarkAppendFreshLog(b *testing.B) { benchAppend(b, pebblestore.WithoutPrewrittenWAL()) }

func benchAppend(b *testing.B, opts ...pebblestore.Option) {
	s := benchStore(b, opts...)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		stream := fmt.Sprintf("order-%09d", i/4)
		if _, err := s.Append(ctx, stream, int64(i%4), benchEvent(stream, i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppend8Writers: eight writers on disjoint streams share fsyncs.
func BenchmarkAppend8Writers(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				if next.Add(1) > int64(b.N) {
					return
				}
				stream := fmt.Sprintf("order-w%d-%09d", w, n/4)
				if _, err := s.Append(ctx, stream, int64(n%4), benchEvent(stream, n)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// filled returns a store holding orders streams of four events each,
// written in large concurrent appends to be quick.
func filled(b *testing.B, orders int) (*pebblestore.Store, []string) {
	b.Helper()
	s := benchStore(b)
	ctx := context.Background()
	streams := make([]string, orders)
	for i := range streams {
		streams[i] = fmt.Sprintf("order-%09d", i)
	}
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < orders; i += 32 {
				evs := []eventstore.Event{benchEvent(streams[i], 0), benchEvent(streams[i], 1), benchEvent(streams[i], 2), benchEvent(streams[i], 3)}
				if _, err := s.Append(ctx, streams[i], 0, evs...); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return s, streams
}

var loadOrders = 20_000

// BenchmarkLoad: Load of a four-event stream; reports events/s.
func BenchmarkLoad(b *testing.B) {
	s, streams := filled(b, loadOrders)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; b.Loop(); i++ {
		evs, err := s.Load(ctx, streams[i%len(streams)], 0)
		if err != nil || len(evs) != 4 {
			b.Fatal(len(evs), err)
		}
	}
	b.ReportMetric(float64(4*b.N)/b.Elapsed().Seconds(), "events/s")
	reportCPU(b, cpu0, 4*b.N)
}

// BenchmarkReplay: the change feed in pages of 1,000; one op is one event.
func BenchmarkReplay(b *testing.B) {
	s, _ := filled(b, 20_000)
	ctx := context.Background()
	head, _ := s.Head(ctx)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	var after uint64
	for n := 0; n < b.N; {
		if after >= head {
			after = 0
		}
		page, err := s.ReadFeed(ctx, after, min(1000, b.N-n))
		if err != nil || len(page) == 0 {
			b.Fatal(len(page), err)
		}
		after = page[len(page)-1].Position
		n += len(page)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	reportCPU(b, cpu0, b.N)
}

// cpuTime is the process's CPU time (user and system). On a busy machine
// the CPU time per event is steadier than the wall-clock rate.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration, events int) {
	b.ReportMetric(float64(cpuTime()-start)/float64(events), "cpu-ns/event")
}

// BenchmarkReplayInto: the change feed in pages of 8,192 read with
// ReadFeedInto into the memory of the page before, as a rebuild reads it;
// one op is one event.
func BenchmarkReplayInto(b *testing.B) {
	s, _ := filled(b, 20_000)
	ctx := context.Background()
	head, _ := s.Head(ctx)
	var (
		page []eventstore.Event
		raw  []byte
		err  error
	)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	var after uint64
	for n := 0; n < b.N; {
		if after >= head {
			after = 0
		}
		page, raw, err = s.ReadFeedInto(ctx, after, min(8192, b.N-n), page, raw)
		if err != nil || len(page) == 0 {
			b.Fatal(len(page), err)
		}
		after = page[len(page)-1].Position
		n += len(page)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	reportCPU(b, cpu0, b.N)
}
