package outbound

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/production-line-monitor/plm/application/notify"
)

// Metrics counts what becomes of claimed deliveries: plm_deliveries_total{outcome}, the
// outcome being one of notify.Outcomes.
type Metrics struct {
	total *prometheus.CounterVec
}

// NewMetrics registers the counter with reg (or takes the one registered before, so that
// two dispatchers of one process share it).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plm_deliveries_total",
		Help: "Claimed deliveries of notifications, by outcome: delivered, retried, dead, postponed (breaker open) or dropped (subscription deleted).",
	}, []string{"outcome"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		existing, ok := c, false
		if errors.As(err, &are) {
			existing, ok = are.ExistingCollector.(*prometheus.CounterVec)
		}
		if !ok {
			return nil, fmt.Errorf("register delivery metrics: %w", err)
		}
		c = existing
	}
	for _, o := range notify.Outcomes {
		c.WithLabelValues(string(o)) // present at 0 from the start
	}
	return &Metrics{total: c}, nil
}

// Observe counts n deliveries of outcome o: give it to notify.Dispatcher.WithObserver.
func (m *Metrics) Observe(o notify.Outcome, n int) {
	m.total.WithLabelValues(string(o)).Add(float64(n))
}
