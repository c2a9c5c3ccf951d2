package postgres

import (
	"github.com/prometheus/client_golang/prometheus"
)

// PoolCollector exposes the connection pool's statistics to Prometheus, read at scrape time.
type PoolCollector struct {
	db                                          *DB
	conns, acquires, emptyAcquires, acquireWait *prometheus.Desc
}

var _ prometheus.Collector = (*PoolCollector)(nil)

// NewPoolCollector collects the statistics of db's pool.
func NewPoolCollector(db *DB) *PoolCollector {
	return &PoolCollector{
		db: db,
		conns: prometheus.NewDesc("plm_db_pool_connections",
			"PostgreSQL pool connections, by state: acquired, idle, constructing, and max (the pool's size).",
			[]string{"state"}, nil),
		acquires: prometheus.NewDesc("plm_db_pool_acquires_total",
			"Connections acquired from the PostgreSQL pool.", nil, nil),
		emptyAcquires: prometheus.NewDesc("plm_db_pool_empty_acquires_total",
			"Acquisitions that found no idle connection and waited for one or for a new one.", nil, nil),
		acquireWait: prometheus.NewDesc("plm_db_pool_acquire_wait_seconds_total",
			"Time spent waiting to acquire connections from the PostgreSQL pool.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.conns
	ch <- c.acquires
	ch <- c.emptyAcquires
	ch <- c.acquireWait
}

// Collect implements prometheus.Collector.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.db.pool.Stat()
	for state, n := range map[string]int32{
		"acquired": s.AcquiredConns(), "idle": s.IdleConns(), "constructing": s.ConstructingConns(), "max": s.MaxConns(),
	} {
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(c.acquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.emptyAcquires, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.acquireWait, prometheus.CounterValue, s.AcquireDuration().Seconds())
}
