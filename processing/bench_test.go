package processing_test

import (
	"context"
	"net"
	"os"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderledger/orderledger/internal/tracing"
	"github.com/orderledger/orderledger/services/sim"
)

// BenchmarkHandle processes one placed order (charge, reserve and
// complete: two appends) per iteration, tracing off and on. On is the
// provider tracing.Setup installs, exporting over OTLP/HTTP to a closed
// port (as BENCHMARKS.md's runs): the difference in allocs/op between the
// two is what the processor's spans and propagation allocate per order,
// the exporter's encoding included. Placing the order is not timed.
func BenchmarkHandle(b *testing.B) {
	ctx := context.Background()
	for _, on := range []bool{false, true} {
		name := "tracing=off"
		if on {
			name = "tracing=on"
		}
		b.Run(name, func(b *testing.B) {
			before := otel.GetTracerProvider()
			b.Cleanup(func() { otel.SetTracerProvider(before) })
			otel.SetTracerProvider(noop.NewTracerProvider()) // off: no SDK, as without OTEL_EXPORTER_OTLP_ENDPOINT
			if on {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				l.Close() // nothing listens there now
				b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+l.Addr().String())
				otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {})) // the failed exports
				shutdown, err := tracing.Setup(ctx, os.Getenv, "bench")
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = shutdown(ctx) })
			}
			p, store, _ := setup(b, sim.Config{})
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				_, msg := placed(b, store, 1)
				b.StartTimer()
				if err := p.Handle(ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
			tracing.ForceFlush(ctx) // what is still batched is encoded in the timed part too
		})
	}
}
