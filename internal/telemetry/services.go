package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderledger/orderledger/services"
)

// serviceMetrics time the payment and inventory calls.
type serviceMetrics struct {
	duration *prometheus.HistogramVec
}

func newServiceMetrics(reg prometheus.Registerer) *serviceMetrics {
	s := &serviceMetrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "service", Name: "call_duration_seconds",
		Help: "Time of a payment or inventory call, by service, operation and result: ok, rejected (a business " +
			"refusal: a declined card, no stock; final) or error (transient: the saga retries it).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18), // 0.1ms .. ~13s
	}, []string{"service", "operation", "result"})}
	reg.MustRegister(s.duration)
	return s
}

func (s *serviceMetrics) observe(service, op string, start time.Time, err error) {
	result := "ok"
	if _, rejected := services.IsRejected(err); rejected {
		result = "rejected"
	} else if err != nil {
		result = "error"
	}
	s.duration.WithLabelValues(service, op, result).Observe(time.Since(start).Seconds())
}

// Payment returns p with its calls timed and their errors counted.
func (m *Metrics) Payment(p services.Payment) services.Payment { return payment{p, m.services} }

// Inventory returns inv with its calls timed and their errors counted.
func (m *Metrics) Inventory(inv services.Inventory) services.Inventory {
	return inventory{inv, m.services}
}

type payment struct {
	p services.Payment
	m *serviceMetrics
}

func (p payment) Charge(ctx context.Context, req services.ChargeRequest) (services.Charge, error) {
	start := time.Now()
	c, err := p.p.Charge(ctx, req)
	p.m.observe("payment", "charge", start, err)
	return c, err
}

func (p payment) Refund(ctx context.Context, req services.RefundRequest) (services.Refund, error) {
	start := time.Now()
	r, err := p.p.Refund(ctx, req)
	p.m.observe("payment", "refund", start, err)
	return r, err
}

func (p payment) Void(ctx context.Context, req services.VoidRequest) (services.Void, error) {
	start := time.Now()
	v, err := p.p.Void(ctx, req)
	p.m.observe("payment", "void", start, err)
	return v, err
}

type inventory struct {
	inv services.Inventory
	m   *serviceMetrics
}

func (i inventory) Reserve(ctx context.Context, req services.ReserveRequest) (services.Reservation, error) {
	start := time.Now()
	r, err := i.inv.Reserve(ctx, req)
	i.m.observe("inventory", "reserve", start, err)
	return r, err
}
