package postgres_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/production-line-monitor/plm/adapters/postgres"
)

func TestIntegrationPoolCollector(t *testing.T) {
	db := open(t, sharedURL(t))
	if err := db.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(postgres.NewPoolCollector(db))
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 7 {
		t.Fatalf("%d samples, %v; want 4 connection states and 3 counters", n, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "plm_db_pool_connections":
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "max" && m.GetGauge().GetValue() < 1 {
					t.Errorf("pool size %v", m.GetGauge().GetValue())
				}
			}
		case "plm_db_pool_acquires_total":
			if v := mf.GetMetric()[0].GetCounter().GetValue(); v < 1 {
				t.Errorf("%v acquisitions after a ping, want at least 1", v)
			}
		}
	}
}
