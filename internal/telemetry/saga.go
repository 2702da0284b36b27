package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/processing"
)

// sagaMetrics is the processing.Observer of a Metrics.
type sagaMetrics struct {
	receives  prometheus.Histogram
	decisions *prometheus.CounterVec
	owed      *prometheus.CounterVec
}

func newSagaMetrics(reg *prometheus.Registry) *sagaMetrics {
	m := &sagaMetrics{
		receives: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "processing", Name: "message_receive_count",
			Help:    "Receive count of each processing-queue message handed to the saga: 1 is a first delivery, more are redeliveries; a message is dead-lettered after the last.",
			Buckets: prometheus.LinearBuckets(1, 1, messaging.MaxReceiveCount),
		}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "saga", Name: "decisions_total",
			Help: "Decisions of the saga, by step (payment, inventory, refund, void, complete, fail) and result: ok (the outcome recorded), failed_try (a failed try recorded, tried again), rejected (the order had moved; decided again).",
		}, []string{"step", "result"}),
		owed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "saga", Name: "money_owed_total",
			Help: "Refunds and voids that failed on a message's last delivery: the message is dead-lettered and money is owed until an operator redrives it. Refunds made are ledger_events_appended_total{type=\"PaymentRefunded\"}.",
		}, []string{"step"}),
	}
	reg.MustRegister(m.receives, m.decisions, m.owed)
	// Zero series for every step and result, so that rate() and alerts see
	// them before the first one happens.
	for _, st := range []order.Step{order.StepCharge, order.StepReserve, order.StepRefund, order.StepVoid, order.StepComplete, order.StepFail} {
		for _, r := range []string{"ok", "failed_try", "rejected"} {
			m.decisions.WithLabelValues(string(st), r)
		}
		if st == order.StepRefund || st == order.StepVoid {
			m.owed.WithLabelValues(string(st))
		}
	}
	return m
}

func (m *sagaMetrics) Delivered(receiveCount int) { m.receives.Observe(float64(receiveCount)) }

func (m *sagaMetrics) Decided(step order.Step, result string) {
	m.decisions.WithLabelValues(string(step), result).Inc()
}

func (m *sagaMetrics) MoneyOwed(step order.Step) { m.owed.WithLabelValues(string(step)).Inc() }

// Saga returns the observer that counts the saga's deliveries, decisions
// and money owed (processing.Config.Observer).
func (m *Metrics) Saga() processing.Observer { return m.saga }
