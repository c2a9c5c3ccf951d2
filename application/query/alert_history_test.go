package query_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/application/query"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// seedAlerts stores n anomalies of press-01, one a minute from t0, severities cycling
// LOW, MEDIUM, CRITICAL, and returns their ids oldest first.
func seedAlerts(t *testing.T, f *fixture, n int) []string {
	var ids []string
	for i := range n {
		ts := t0.Add(time.Duration(i) * time.Minute)
		a := f.anomaly(t, "press-01", sensor.Temperature, anomaly.Severities[i%3], ts, ts.Add(200*time.Millisecond))
		ids = append(ids, a.ID)
	}
	return ids
}

func TestAlertHistoryPaging(t *testing.T) {
	f := newFixture()
	ids := seedAlerts(t, f, 7)
	f.anomaly(t, "lathe-02", sensor.Voltage, anomaly.SeverityLow, t0, t0) // filtered out below
	h := query.NewAlertHistoryHandler(f.store)
	tests := []struct {
		name           string
		page, size     int
		asc            bool
		wantIDs        []string
		wantTotalPages int64
	}{
		{"first_page_newest_first", 1, 3, false, []string{ids[6], ids[5], ids[4]}, 3},
		{"second_page", 2, 3, false, []string{ids[3], ids[2], ids[1]}, 3},
		{"last_page_partial", 3, 3, false, []string{ids[0]}, 3},
		{"page_past_the_end_is_empty", 4, 3, false, nil, 3},
		{"far_past_the_end", 100, 3, false, nil, 3},
		{"ascending", 1, 3, true, []string{ids[0], ids[1], ids[2]}, 3},
		{"ascending_last_page", 3, 3, true, []string{ids[6]}, 3},
		{"page_size_divides_total", 1, 7, false, []string{ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}, 1},
		{"page_size_one_more_than_total", 1, 8, false, []string{ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}, 1},
		{"page_size_one_less_than_total_rounds_up", 2, 6, false, []string{ids[0]}, 2},
		{"page_size_one", 7, 1, false, []string{ids[0]}, 7},
		{"page_zero_means_first", 0, 3, false, []string{ids[6], ids[5], ids[4]}, 3},
		{"page_size_zero_means_default", 1, 0, false, []string{ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := h.Handle(context.Background(), query.AlertHistory{
				Filter: ports.AnomalyQuery{EquipmentID: "press-01", Ascending: tt.asc},
				Page:   tt.page, PageSize: tt.size,
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range p.Alerts {
				got = append(got, a.ID)
			}
			if !equalStrings(got, tt.wantIDs) {
				t.Errorf("ids = %v, want %v", got, tt.wantIDs)
			}
			if p.Total != 7 || p.TotalPages != tt.wantTotalPages {
				t.Errorf("total %d, pages %d; want 7, %d", p.Total, p.TotalPages, tt.wantTotalPages)
			}
			wantPage, wantSize := max(tt.page, 1), tt.size
			if wantSize == 0 {
				wantSize = query.DefaultPageSize
			}
			if p.Page != wantPage || p.PageSize != wantSize {
				t.Errorf("page %d size %d, want %d %d", p.Page, p.PageSize, wantPage, wantSize)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAlertHistoryNothingStored(t *testing.T) {
	f := newFixture()
	p, err := query.NewAlertHistoryHandler(f.store).Handle(context.Background(), query.AlertHistory{Page: 1, PageSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Alerts) != 0 || p.Total != 0 || p.TotalPages != 0 {
		t.Errorf("page = %+v, want empty with 0 pages", p)
	}
}

func TestAlertHistoryFilters(t *testing.T) {
	f := newFixture()
	ids := seedAlerts(t, f, 6) // LOW MEDIUM CRITICAL LOW MEDIUM CRITICAL
	other := f.anomaly(t, "lathe-02", sensor.Voltage, anomaly.SeverityCritical, t0.Add(30*time.Second), t0.Add(31*time.Second))
	h := query.NewAlertHistoryHandler(f.store)
	tests := []struct {
		name    string
		filter  ports.AnomalyQuery
		wantIDs []string
	}{
		{"everything", ports.AnomalyQuery{Ascending: true}, []string{ids[0], other.ID, ids[1], ids[2], ids[3], ids[4], ids[5]}},
		{"one_equipment", ports.AnomalyQuery{EquipmentID: "lathe-02"}, []string{other.ID}},
		{"one_sensor_type", ports.AnomalyQuery{SensorType: sensor.Temperature, Severities: []anomaly.Severity{anomaly.SeverityCritical}},
			[]string{ids[5], ids[2]}},
		{"severities", ports.AnomalyQuery{EquipmentID: "press-01", Severities: []anomaly.Severity{anomaly.SeverityLow, anomaly.SeverityMedium}},
			[]string{ids[4], ids[3], ids[1], ids[0]}},
		{"time_range_from_inclusive_to_exclusive", ports.AnomalyQuery{EquipmentID: "press-01", From: t0.Add(time.Minute), To: t0.Add(3 * time.Minute)},
			[]string{ids[2], ids[1]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := h.Handle(context.Background(), query.AlertHistory{Filter: tt.filter, Page: 1, PageSize: 50})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range p.Alerts {
				got = append(got, a.ID)
			}
			if !equalStrings(got, tt.wantIDs) || p.Total != int64(len(tt.wantIDs)) {
				t.Errorf("ids = %v (total %d), want %v", got, p.Total, tt.wantIDs)
			}
		})
	}
}

func TestAlertHistoryKeepsEvidence(t *testing.T) {
	f := newFixture()
	a := f.anomaly(t, "press-01", sensor.Temperature, anomaly.SeverityMedium, t0, t0.Add(210*time.Millisecond))
	p, err := query.NewAlertHistoryHandler(f.store).Handle(context.Background(), query.AlertHistory{Page: 1, PageSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Alerts) != 1 || p.Alerts[0] != a {
		t.Errorf("alerts = %+v, want %+v", p.Alerts, a)
	}
}

func TestAlertHistoryStoreError(t *testing.T) {
	f := newFixture()
	f.store.SetErr(errStorageDown)
	_, err := query.NewAlertHistoryHandler(f.store).Handle(context.Background(), query.AlertHistory{Page: 1, PageSize: 50})
	if !errors.Is(err, ports.ErrUnavailable) {
		t.Errorf("store down: %v, want ErrUnavailable", err)
	}
}
