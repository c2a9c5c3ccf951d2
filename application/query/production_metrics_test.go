package query_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/application/query"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// seedProduction stores, over [t0, t0+3h):
//   - press-01: 10 readings in hour 0, 5 in hour 2, and anomalies LOW at 0:30 and CRITICAL
//     at 2:10 (each anomaly is also a reading); online from 0:00 to 1:30 (with the tail).
//   - lathe-02: 4 readings in hour 1, one MEDIUM anomaly at 1:20; online 0:45 to 1:00.
//   - drill-03: registered by hand, never seen.
//
// plus readings and an anomaly outside the range, which must not count.
func seedProduction(t *testing.T, f *fixture) {
	minute := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	for i := range 10 {
		f.reading(t, "press-01", sensor.Temperature, 70, minute(i), minute(i), false)
	}
	for i := range 5 {
		f.reading(t, "press-01", sensor.Vibration, 1, minute(120+i), minute(120+i), false)
	}
	for i := range 4 {
		f.reading(t, "lathe-02", sensor.Voltage, 400, minute(60+i), minute(60+i), false)
	}
	f.anomaly(t, "press-01", sensor.Temperature, anomaly.SeverityLow, minute(30), minute(30))
	f.anomaly(t, "press-01", sensor.Vibration, anomaly.SeverityCritical, minute(130), minute(130))
	f.anomaly(t, "lathe-02", sensor.Voltage, anomaly.SeverityMedium, minute(80), minute(80))
	// Outside [t0, t0+3h).
	f.reading(t, "press-01", sensor.Temperature, 70, minute(-1), minute(-1), false)
	f.reading(t, "press-01", sensor.Temperature, 70, minute(180), minute(180), false)
	f.anomaly(t, "press-01", sensor.Temperature, anomaly.SeverityCritical, minute(-5), minute(-5))

	off := equipment.DefaultRules.OfflineAfter
	f.session(t, "press-01", minute(-10), minute(90).Add(-off))
	f.session(t, "lathe-02", minute(45), minute(60).Add(-off))
	if _, err := f.store.UpsertMetadata(context.Background(), "drill-03", equipment.Metadata{Name: "Drill"}, t0); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) metricsHandler() *query.ProductionMetricsHandler {
	return query.NewProductionMetricsHandler(f.store, f.store, f.store, f.clock, equipment.DefaultRules)
}

func TestProductionMetrics(t *testing.T) {
	type bucketCount struct {
		offset time.Duration
		count  int64
	}
	tests := []struct {
		name        string
		q           query.ProductionMetrics
		now         time.Time
		wantTotal   int64
		wantSeries  []bucketCount
		wantBySev   map[anomaly.Severity]int64
		wantRate    float64
		wantUptimes map[string]float64
	}{
		{
			name: "all_equipment_hourly",
			q:    query.ProductionMetrics{From: t0, To: t0.Add(3 * time.Hour), Bucket: time.Hour},
			now:  t0.Add(4 * time.Hour),
			// hour 0: 10 + LOW anomaly's reading; hour 1: 4 + MEDIUM's; hour 2: 5 + CRITICAL's.
			wantTotal:   22,
			wantSeries:  []bucketCount{{0, 11}, {time.Hour, 5}, {2 * time.Hour, 6}},
			wantBySev:   map[anomaly.Severity]int64{anomaly.SeverityLow: 1, anomaly.SeverityMedium: 1, anomaly.SeverityCritical: 1},
			wantRate:    3.0 / 22,
			wantUptimes: map[string]float64{"drill-03": 0, "lathe-02": 100 * 15.0 / 180, "press-01": 100 * 90.0 / 180},
		},
		{
			name:        "all_equipment_daily",
			q:           query.ProductionMetrics{From: t0, To: t0.Add(3 * time.Hour), Bucket: 24 * time.Hour},
			now:         t0.Add(4 * time.Hour),
			wantTotal:   22,
			wantSeries:  []bucketCount{{-8 * time.Hour, 22}}, // days start at midnight UTC; t0 is 08:00
			wantBySev:   map[anomaly.Severity]int64{anomaly.SeverityLow: 1, anomaly.SeverityMedium: 1, anomaly.SeverityCritical: 1},
			wantRate:    3.0 / 22,
			wantUptimes: map[string]float64{"drill-03": 0, "lathe-02": 100 * 15.0 / 180, "press-01": 100 * 90.0 / 180},
		},
		{
			name:        "one_equipment_zero_severities_kept",
			q:           query.ProductionMetrics{From: t0, To: t0.Add(2 * time.Hour), Bucket: time.Hour, EquipmentID: "lathe-02"},
			now:         t0.Add(4 * time.Hour),
			wantTotal:   5,
			wantSeries:  []bucketCount{{time.Hour, 5}},
			wantBySev:   map[anomaly.Severity]int64{anomaly.SeverityLow: 0, anomaly.SeverityMedium: 1, anomaly.SeverityCritical: 0},
			wantRate:    1.0 / 5,
			wantUptimes: map[string]float64{"lathe-02": 100 * 15.0 / 120},
		},
		{
			name:        "range_reaching_past_now",
			q:           query.ProductionMetrics{From: t0, To: t0.Add(3 * time.Hour), Bucket: time.Hour, EquipmentID: "press-01"},
			now:         t0.Add(2 * time.Hour),
			wantTotal:   17,
			wantSeries:  []bucketCount{{0, 11}, {2 * time.Hour, 6}},
			wantBySev:   map[anomaly.Severity]int64{anomaly.SeverityLow: 1, anomaly.SeverityMedium: 0, anomaly.SeverityCritical: 1},
			wantRate:    2.0 / 17,
			wantUptimes: map[string]float64{"press-01": 100 * 90.0 / 120},
		},
		{
			name:        "nothing_in_range",
			q:           query.ProductionMetrics{From: t0.Add(-48 * time.Hour), To: t0.Add(-24 * time.Hour), Bucket: time.Hour, EquipmentID: "drill-03"},
			now:         t0.Add(4 * time.Hour),
			wantTotal:   0,
			wantSeries:  nil,
			wantBySev:   map[anomaly.Severity]int64{anomaly.SeverityLow: 0, anomaly.SeverityMedium: 0, anomaly.SeverityCritical: 0},
			wantRate:    0,
			wantUptimes: map[string]float64{"drill-03": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			seedProduction(t, f)
			f.clock.Set(tt.now)
			rep, err := f.metricsHandler().Handle(context.Background(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if rep.EventsTotal != tt.wantTotal {
				t.Errorf("EventsTotal = %d, want %d", rep.EventsTotal, tt.wantTotal)
			}
			if len(rep.EventsSeries) != len(tt.wantSeries) {
				t.Fatalf("EventsSeries = %+v, want %+v", rep.EventsSeries, tt.wantSeries)
			}
			for i, w := range tt.wantSeries {
				g := rep.EventsSeries[i]
				if !g.Bucket.Equal(t0.Add(w.offset)) || g.Count != w.count {
					t.Errorf("EventsSeries[%d] = %v %d, want %v %d", i, g.Bucket, g.Count, t0.Add(w.offset), w.count)
				}
			}
			if len(rep.BySeverity) != len(anomaly.Severities) {
				t.Errorf("BySeverity = %v, want every severity listed", rep.BySeverity)
			}
			var sum int64
			for _, s := range anomaly.Severities {
				got, ok := rep.BySeverity[s]
				if !ok || got != tt.wantBySev[s] {
					t.Errorf("BySeverity[%s] = %d (present %v), want %d", s, got, ok, tt.wantBySev[s])
				}
				sum += got
			}
			if rep.Anomalies != sum {
				t.Errorf("Anomalies = %d, want the sum by severity %d", rep.Anomalies, sum)
			}
			if math.Abs(rep.AnomalyRate-tt.wantRate) > 1e-12 {
				t.Errorf("AnomalyRate = %v, want %v", rep.AnomalyRate, tt.wantRate)
			}
			if len(rep.Uptime) != len(tt.wantUptimes) {
				t.Fatalf("Uptime = %+v, want %v", rep.Uptime, tt.wantUptimes)
			}
			for i, u := range rep.Uptime {
				want, ok := tt.wantUptimes[u.EquipmentID]
				if !ok || math.Abs(u.UptimePercent-want) > 1e-9 {
					t.Errorf("uptime of %s = %v, want %v", u.EquipmentID, u.UptimePercent, want)
				}
				if i > 0 && rep.Uptime[i-1].EquipmentID >= u.EquipmentID {
					t.Errorf("Uptime not sorted by equipment id: %+v", rep.Uptime)
				}
			}
		})
	}
}

// TestProductionMetricsSessionTailBeforeRange: a session that ended shortly before the range
// still counts its offline tail inside it.
func TestProductionMetricsSessionTailBeforeRange(t *testing.T) {
	f := newFixture()
	f.reading(t, "press-01", sensor.Temperature, 70, t0, t0, false)
	f.session(t, "press-01", t0.Add(-time.Hour), t0.Add(-20*time.Second))
	f.clock.Set(t0.Add(2 * time.Hour))
	rep, err := f.metricsHandler().Handle(context.Background(),
		query.ProductionMetrics{From: t0, To: t0.Add(100 * time.Second), Bucket: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Uptime) != 1 || math.Abs(rep.Uptime[0].UptimePercent-10) > 1e-9 {
		t.Errorf("Uptime = %+v, want press-01 at 10%% (10 s of tail in 100 s)", rep.Uptime)
	}
}

func TestProductionMetricsErrors(t *testing.T) {
	f := newFixture()
	seedProduction(t, f)
	h := f.metricsHandler()
	q := query.ProductionMetrics{From: t0, To: t0.Add(time.Hour), Bucket: time.Hour, EquipmentID: "ghost"}
	if _, err := h.Handle(context.Background(), q); !errors.Is(err, ports.ErrNotFound) {
		t.Errorf("unknown equipment: %v, want ErrNotFound", err)
	}
	f.store.SetErr(errStorageDown)
	q.EquipmentID = ""
	if _, err := h.Handle(context.Background(), q); !errors.Is(err, ports.ErrUnavailable) {
		t.Errorf("store down: %v, want ErrUnavailable", err)
	}
}
