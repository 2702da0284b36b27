package app

import (
	"context"

	"github.com/orderledger/orderledger/internal/telemetry"
	"github.com/orderledger/orderledger/messaging/pebblequeue"
	"github.com/orderledger/orderledger/publisher"
)

// registerGauges adds the runtime's scrape-time gauges: the change feed's
// head and each consumer's position (lag is head minus position), and the
// queues' depths, and the read model rebuild's progress.
func (a *App) registerGauges(m *telemetry.Metrics) {
	m.GaugeSet("rebuild_events", "Progress of the running (or last) read model rebuild: events done and events to do. "+
		"Its rate is rate(ledger_rebuild_events{progress=\"done\"}[1m]).", []string{"progress"},
		func(context.Context) ([]telemetry.Gauge, error) {
			st := a.rebuilds.Status()
			return []telemetry.Gauge{
				{Labels: []string{"done"}, Value: float64(st.Done)},
				{Labels: []string{"total"}, Value: float64(st.Total)},
			}, nil
		})
	m.GaugeSet("rebuild_running", "1 while a read model rebuild runs, else 0.", nil,
		func(context.Context) ([]telemetry.Gauge, error) {
			v := 0.0
			if a.rebuilds.Status().Running {
				v = 1
			}
			return []telemetry.Gauge{{Value: v}}, nil
		})
	m.GaugeSet("feed_head_position", "Position of the last event committed to the change feed.", nil,
		func(ctx context.Context) ([]telemetry.Gauge, error) {
			head, err := a.store.Head(ctx)
			return []telemetry.Gauge{{Value: float64(head)}}, err
		})
	m.GaugeSet("feed_consumer_position", "Last change-feed position each consumer has handled (projector: the read model; publisher: the topics). Lag is ledger_feed_head_position minus this.",
		[]string{"consumer"},
		func(ctx context.Context) ([]telemetry.Gauge, error) {
			pub, err := a.store.Checkpoint(ctx, publisher.DefaultConsumer)
			if err != nil {
				return nil, err
			}
			return []telemetry.Gauge{
				{Labels: []string{"projector"}, Value: float64(a.sub.Position())},
				{Labels: []string{"publisher"}, Value: float64(pub)},
			}, nil
		})
	m.GaugeSet("queue_messages", "Messages in each queue of the embedded broker, by state: visible (receivable now) or in_flight (received and not yet deleted, or delayed for a retry). The order-dlq queue holds the dead letters.",
		[]string{"queue", "state"},
		func(ctx context.Context) ([]telemetry.Gauge, error) { return queueGauges(ctx, a.pipe.Broker()) })
}

func queueGauges(ctx context.Context, br *Broker) ([]telemetry.Gauge, error) {
	var out []telemetry.Gauge
	qs := append([]*pebblequeue.Queue{br.Processing, br.DLQ}, br.Webhooks...)
	if br.Log != nil {
		qs = append(qs, br.Log)
	}
	for _, q := range qs {
		s, err := q.Stats(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out,
			telemetry.Gauge{Labels: []string{q.Name(), "visible"}, Value: float64(s.Visible)},
			telemetry.Gauge{Labels: []string{q.Name(), "in_flight"}, Value: float64(s.InFlight)})
	}
	return out, nil
}
