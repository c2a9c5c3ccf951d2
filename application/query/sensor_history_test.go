package query_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/application/query"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// seedHistory stores press-01 readings over 10 minutes: temperature every minute (values
// 0..9) and vibration every two minutes (values 100, 102, ...), stored out of time order,
// plus a reading of another equipment.
func seedHistory(t *testing.T, f *fixture) {
	for _, i := range []int{5, 0, 9, 3, 1, 7, 2, 8, 4, 6} {
		ts := t0.Add(time.Duration(i) * time.Minute)
		f.reading(t, "press-01", sensor.Temperature, float64(i), ts, ts, false)
		if i%2 == 0 {
			f.reading(t, "press-01", sensor.Vibration, 100+float64(i), ts.Add(time.Second), ts.Add(time.Second), false)
		}
	}
	f.reading(t, "lathe-02", sensor.Temperature, -1, t0, t0, false)
}

func TestSensorHistoryRaw(t *testing.T) {
	f := newFixture()
	seedHistory(t, f)
	h := query.NewSensorHistoryHandler(f.store, f.store)
	tests := []struct {
		name       string
		q          ports.HistoryQuery
		wantValues []float64
	}{
		{"one_type_whole_range", ports.HistoryQuery{SensorType: sensor.Temperature, From: t0, To: t0.Add(time.Hour), Limit: 1000},
			[]float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"every_type_sorted_by_time", ports.HistoryQuery{From: t0, To: t0.Add(3 * time.Minute), Limit: 1000},
			[]float64{0, 100, 1, 2, 102}},
		{"to_is_exclusive", ports.HistoryQuery{SensorType: sensor.Temperature, From: t0.Add(2 * time.Minute), To: t0.Add(4 * time.Minute), Limit: 1000},
			[]float64{2, 3}},
		{"limit_keeps_latest", ports.HistoryQuery{SensorType: sensor.Temperature, From: t0, To: t0.Add(time.Hour), Limit: 3},
			[]float64{7, 8, 9}},
		{"empty_range", ports.HistoryQuery{From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour), Limit: 1000}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.EquipmentID = "press-01"
			res, err := h.Handle(context.Background(), query.SensorHistory{Query: tt.q, Aggregation: query.AggregationRaw})
			if err != nil {
				t.Fatal(err)
			}
			if res.Averages != nil {
				t.Errorf("raw answer carries averages: %+v", res.Averages)
			}
			var got []float64
			for i, p := range res.Points {
				got = append(got, p.Value)
				if p.EquipmentID != "press-01" {
					t.Errorf("point of %s", p.EquipmentID)
				}
				if i > 0 && p.Timestamp.Before(res.Points[i-1].Timestamp) {
					t.Errorf("points not sorted by time at %d", i)
				}
			}
			if !equalFloats(got, tt.wantValues) {
				t.Errorf("values = %v, want %v", got, tt.wantValues)
			}
		})
	}
}

func equalFloats(a, b []float64) bool {
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

func TestSensorHistoryAverages(t *testing.T) {
	f := newFixture()
	seedHistory(t, f)
	h := query.NewSensorHistoryHandler(f.store, f.store)
	res, err := h.Handle(context.Background(), query.SensorHistory{
		Query:       ports.HistoryQuery{EquipmentID: "press-01", From: t0, To: t0.Add(time.Hour), Limit: 1000},
		Aggregation: query.AggregationAvg, Interval: 5 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Points != nil {
		t.Errorf("avg answer carries raw points: %+v", res.Points)
	}
	want := []ports.AveragePoint{
		{SensorType: sensor.Temperature, Bucket: t0, Avg: 2, Min: 0, Max: 4, Count: 5},
		{SensorType: sensor.Vibration, Bucket: t0, Avg: 102, Min: 100, Max: 104, Count: 3},
		{SensorType: sensor.Temperature, Bucket: t0.Add(5 * time.Minute), Avg: 7, Min: 5, Max: 9, Count: 5},
		{SensorType: sensor.Vibration, Bucket: t0.Add(5 * time.Minute), Avg: 107, Min: 106, Max: 108, Count: 2},
	}
	if len(res.Averages) != len(want) {
		t.Fatalf("averages = %+v, want %+v", res.Averages, want)
	}
	for i, w := range want {
		g := res.Averages[i]
		if g.SensorType != w.SensorType || !g.Bucket.Equal(w.Bucket) || g.Avg != w.Avg || g.Min != w.Min || g.Max != w.Max || g.Count != w.Count {
			t.Errorf("averages[%d] = %+v, want %+v", i, g, w)
		}
	}
}

func TestSensorHistoryErrors(t *testing.T) {
	f := newFixture()
	h := query.NewSensorHistoryHandler(f.store, f.store)
	for _, agg := range []query.Aggregation{query.AggregationRaw, query.AggregationAvg} {
		_, err := h.Handle(context.Background(), query.SensorHistory{
			Query:       ports.HistoryQuery{EquipmentID: "ghost", From: t0, To: t0.Add(time.Hour), Limit: 10},
			Aggregation: agg, Interval: time.Minute,
		})
		if !errors.Is(err, ports.ErrNotFound) {
			t.Errorf("%s history of unknown equipment: %v, want ErrNotFound", agg, err)
		}
	}
	f.reading(t, "press-01", sensor.Temperature, 1, t0, t0, false)
	f.store.SetErr(errStorageDown)
	_, err := h.Handle(context.Background(), query.SensorHistory{
		Query: ports.HistoryQuery{EquipmentID: "press-01", From: t0, To: t0.Add(time.Hour), Limit: 10}})
	if !errors.Is(err, ports.ErrUnavailable) {
		t.Errorf("store down: %v, want ErrUnavailable", err)
	}
}
