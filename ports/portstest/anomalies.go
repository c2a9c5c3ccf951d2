package portstest

import (
	"slices"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// AnomalyRepository is the contract of ports.AnomalyRepository.
func AnomalyRepository(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Run("Find", func(t *testing.T) { find(t, newStores(t)) })
	t.Run("CountBySeverity", func(t *testing.T) { countBySeverity(t, newStores(t)) })
	t.Run("CountDetectedSince", func(t *testing.T) { countDetectedSince(t, newStores(t)) })
}

// anomalyFixture stores six anomalies:
//
//	a-1 press-01 temperature LOW      at 1m
//	a-2 press-01 vibration   MEDIUM   at 2m
//	a-3 press-02 temperature CRITICAL at 2m (same time as a-2, stored before it)
//	a-4 press-01 temperature CRITICAL at 3m
//	a-5 press-02 pressure    LOW      at 4m
//	a-6 press-01 temperature MEDIUM   at 5m
//
// each detected a second after its reading's timestamp, and returns them by id.
func anomalyFixture(t *testing.T, s Stores) map[string]anomaly.Anomaly {
	t.Helper()
	type spec struct {
		id  string
		eq  string
		typ sensor.Type
		sev anomaly.Severity
		at  time.Duration
	}
	batches := [][]spec{
		{
			{"a-3", press2, sensor.Temperature, anomaly.SeverityCritical, 2 * time.Minute},
			{"a-6", press1, sensor.Temperature, anomaly.SeverityMedium, 5 * time.Minute},
		},
		{
			{"a-1", press1, sensor.Temperature, anomaly.SeverityLow, time.Minute},
			{"a-2", press1, sensor.Vibration, anomaly.SeverityMedium, 2 * time.Minute},
			{"a-4", press1, sensor.Temperature, anomaly.SeverityCritical, 3 * time.Minute},
			{"a-5", press2, sensor.Pressure, anomaly.SeverityLow, 4 * time.Minute},
		},
	}
	out := make(map[string]anomaly.Anomaly)
	for _, specs := range batches {
		var rs []ports.StoredReading
		var as []anomaly.Anomaly
		// A normal reading beside each anomalous one: not every reading is an anomaly.
		for _, sp := range specs {
			r := flagged(reading(sp.eq, "r-"+sp.id, sp.typ, 50, at(sp.at)))
			a := anomalyOf(sp.id, r, sp.sev)
			rs = append(rs, r, reading(sp.eq, "n-"+sp.id, sp.typ, 10, at(sp.at+time.Second)))
			as = append(as, a)
			out[a.ID] = a
		}
		write(t, s, batchOf(rs, as...))
	}
	return out
}

func find(t *testing.T, s Stores) {
	all := anomalyFixture(t, s)
	tests := []struct {
		name      string
		q         ports.AnomalyQuery
		want      []string
		wantTotal int64
	}{
		{name: "latest_first_ties_by_id_descending", q: ports.AnomalyQuery{Limit: 50},
			want: []string{"a-6", "a-5", "a-4", "a-3", "a-2", "a-1"}, wantTotal: 6},
		{name: "ascending_ties_by_id_ascending", q: ports.AnomalyQuery{Limit: 50, Ascending: true},
			want: []string{"a-1", "a-2", "a-3", "a-4", "a-5", "a-6"}, wantTotal: 6},
		{name: "equipment", q: ports.AnomalyQuery{EquipmentID: press2, Limit: 50},
			want: []string{"a-5", "a-3"}, wantTotal: 2},
		{name: "unknown_equipment", q: ports.AnomalyQuery{EquipmentID: "lathe-01", Limit: 50},
			want: nil, wantTotal: 0},
		{name: "sensor_type", q: ports.AnomalyQuery{SensorType: sensor.Temperature, Limit: 50},
			want: []string{"a-6", "a-4", "a-3", "a-1"}, wantTotal: 4},
		{name: "one_severity", q: ports.AnomalyQuery{Severities: []anomaly.Severity{anomaly.SeverityLow}, Limit: 50},
			want: []string{"a-5", "a-1"}, wantTotal: 2},
		{name: "severities_list", q: ports.AnomalyQuery{Severities: []anomaly.Severity{anomaly.SeverityMedium, anomaly.SeverityCritical}, Limit: 50},
			want: []string{"a-6", "a-4", "a-3", "a-2"}, wantTotal: 4},
		{name: "from_included_open_to", q: ports.AnomalyQuery{From: at(2 * time.Minute), Limit: 50},
			want: []string{"a-6", "a-5", "a-4", "a-3", "a-2"}, wantTotal: 5},
		{name: "from_just_after_excludes", q: ports.AnomalyQuery{From: at(2*time.Minute + time.Microsecond), Limit: 50},
			want: []string{"a-6", "a-5", "a-4"}, wantTotal: 3},
		{name: "to_excluded_open_from", q: ports.AnomalyQuery{To: at(2 * time.Minute), Limit: 50},
			want: []string{"a-1"}, wantTotal: 1},
		{name: "to_just_after_includes", q: ports.AnomalyQuery{To: at(2*time.Minute + time.Microsecond), Limit: 50},
			want: []string{"a-3", "a-2", "a-1"}, wantTotal: 3},
		{name: "from_and_to", q: ports.AnomalyQuery{From: at(2 * time.Minute), To: at(4 * time.Minute), Limit: 50},
			want: []string{"a-4", "a-3", "a-2"}, wantTotal: 3},
		{name: "every_filter", q: ports.AnomalyQuery{EquipmentID: press1, SensorType: sensor.Temperature,
			Severities: []anomaly.Severity{anomaly.SeverityCritical, anomaly.SeverityMedium}, From: at(2 * time.Minute),
			To: at(time.Hour), Limit: 50},
			want: []string{"a-6", "a-4"}, wantTotal: 2},
		{name: "first_page", q: ports.AnomalyQuery{Limit: 2},
			want: []string{"a-6", "a-5"}, wantTotal: 6},
		{name: "middle_page", q: ports.AnomalyQuery{Offset: 2, Limit: 2},
			want: []string{"a-4", "a-3"}, wantTotal: 6},
		{name: "middle_page_ascending", q: ports.AnomalyQuery{Offset: 2, Limit: 2, Ascending: true},
			want: []string{"a-3", "a-4"}, wantTotal: 6},
		{name: "last_page_partial", q: ports.AnomalyQuery{Offset: 4, Limit: 4},
			want: []string{"a-2", "a-1"}, wantTotal: 6},
		{name: "offset_at_end", q: ports.AnomalyQuery{Offset: 6, Limit: 2},
			want: nil, wantTotal: 6},
		{name: "offset_past_end", q: ports.AnomalyQuery{Offset: 10, Limit: 2},
			want: nil, wantTotal: 6},
		{name: "page_of_filtered", q: ports.AnomalyQuery{EquipmentID: press1, Offset: 1, Limit: 2},
			want: []string{"a-4", "a-2"}, wantTotal: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, total, err := s.Anomalies.Find(t.Context(), tt.q)
			must(t, err)
			equal(t, tt.want, ids(got))
			equal(t, tt.wantTotal, total)
			for _, g := range got {
				equal(t, all[g.ID], g)
			}
		})
	}
}

func countBySeverity(t *testing.T, s Stores) {
	anomalyFixture(t, s)
	low, medium, critical := anomaly.SeverityLow, anomaly.SeverityMedium, anomaly.SeverityCritical
	tests := []struct {
		name     string
		eq       string
		from, to time.Time
		want     map[anomaly.Severity]int64
	}{
		{name: "every_equipment", from: at(0), to: at(time.Hour),
			want: map[anomaly.Severity]int64{low: 2, medium: 2, critical: 2}},
		{name: "one_equipment", eq: press1, from: at(0), to: at(time.Hour),
			want: map[anomaly.Severity]int64{low: 1, medium: 2, critical: 1}},
		{name: "from_included_to_excluded", from: at(2 * time.Minute), to: at(4 * time.Minute),
			want: map[anomaly.Severity]int64{medium: 1, critical: 2}},
		{name: "just_inside_both_ends", from: at(time.Minute), to: at(5*time.Minute + time.Microsecond),
			want: map[anomaly.Severity]int64{low: 2, medium: 2, critical: 2}},
		{name: "just_outside_both_ends", from: at(time.Minute + time.Microsecond), to: at(5 * time.Minute),
			want: map[anomaly.Severity]int64{low: 1, medium: 1, critical: 2}},
		{name: "unknown_equipment", eq: "lathe-01", from: at(0), to: at(time.Hour), want: nil},
		{name: "nothing_in_range", from: at(time.Hour), to: at(2 * time.Hour), want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Anomalies.CountBySeverity(t.Context(), ports.SensorScope{EquipmentID: tt.eq}, tt.from, tt.to)
			must(t, err)
			// A severity without anomalies may be missing or zero.
			for _, sev := range anomaly.Severities {
				equal(t, tt.want[sev], got[sev], "%s", sev)
			}
			for sev := range got {
				if !slices.Contains(anomaly.Severities, sev) {
					t.Errorf("unknown severity %q counted", sev)
				}
			}
		})
	}
}

func countDetectedSince(t *testing.T, s Stores) {
	all := anomalyFixture(t, s)
	a4 := all["a-4"].DetectedAt
	tests := []struct {
		name  string
		eq    string
		since time.Time
		want  int64
	}{
		{name: "detected_at_since_counts", eq: press1, since: a4, want: 2},
		{name: "detected_just_before_since_does_not", eq: press1, since: a4.Add(time.Microsecond), want: 1},
		{name: "since_before_every_anomaly", eq: press1, since: at(0), want: 4},
		{name: "since_after_every_anomaly", eq: press1, since: at(time.Hour), want: 0},
		{name: "other_equipment", eq: press2, since: at(0), want: 2},
		{name: "unknown_equipment", eq: "lathe-01", since: at(0), want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Anomalies.CountDetectedSince(t.Context(), ports.SensorScope{EquipmentID: tt.eq}, tt.since)
			must(t, err)
			equal(t, tt.want, got)
		})
	}
}
