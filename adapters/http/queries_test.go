package http_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const history = "/equipment/press-01/sensor-history"

// seedHistory stores readings of press-01 at t0-2h (temperature 50), t0-30m (temperature 60,
// pressure 3), t0-20m (temperature 62) and t0-10s (temperature 64).
func seedHistory(h *harness) {
	h.t.Helper()
	h.ingest(batch(
		reading("press-01", "temperature", 50, t0.Add(-2*time.Hour)),
		reading("press-01", "temperature", 60, t0.Add(-30*time.Minute)),
		reading("press-01", "pressure", 3, t0.Add(-30*time.Minute)),
		reading("press-01", "temperature", 62, t0.Add(-20*time.Minute)),
		reading("press-01", "temperature", 64, t0.Add(-10*time.Second)),
	))
}

func TestSensorHistory_defaults_to_raw_points_of_the_last_hour(t *testing.T) {
	h := newHarness(t)
	seedHistory(h)

	r := h.get(history)

	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	assert.JSONEq(t, `{"equipmentId": "press-01", "aggregation": "raw", "points": [
		{"sensorType": "temperature", "timestamp": "2026-11-27T07:45:00.000Z", "value": 60, "anomalous": false},
		{"sensorType": "pressure", "timestamp": "2026-11-27T07:45:00.000Z", "value": 3, "anomalous": false},
		{"sensorType": "temperature", "timestamp": "2026-11-27T07:55:00.000Z", "value": 62, "anomalous": false},
		{"sensorType": "temperature", "timestamp": "2026-11-27T08:14:50.000Z", "value": 64, "anomalous": false}
	]}`, string(r.body))
}

func TestSensorHistory_filters_and_limits(t *testing.T) {
	h := newHarness(t)
	seedHistory(h)

	r := h.get(history + "?sensorType=temperature&from=2026-11-27T05:00:00Z&to=2026-11-27T08:00:00Z&limit=2")

	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	points := r.json(t)["points"].([]any)
	require.Len(t, points, 2, "the latest two")
	assert.Equal(t, float64(60), points[0].(map[string]any)["value"])
	assert.Equal(t, float64(62), points[1].(map[string]any)["value"])
}

func TestSensorHistory_one_sided_ranges(t *testing.T) {
	h := newHarness(t)
	seedHistory(h)

	onlyFrom := h.get(history + "?from=" + url.QueryEscape("2026-11-27T08:00:00+00:00")).json(t)["points"].([]any)
	require.Len(t, onlyFrom, 1, "from 08:00 up to now")
	assert.Equal(t, float64(64), onlyFrom[0].(map[string]any)["value"])

	onlyTo := h.get(history + "?to=2026-11-27T06:30:00Z").json(t)["points"].([]any)
	require.Len(t, onlyTo, 1, "the hour before 06:30")
	assert.Equal(t, float64(50), onlyTo[0].(map[string]any)["value"])
}

func TestSensorHistory_unescaped_plus_of_an_offset_is_read(t *testing.T) {
	h := newHarness(t)
	seedHistory(h)

	r := h.get(history + "?from=2026-11-27T09:00:00+01:00")

	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	assert.Len(t, r.json(t)["points"], 1)
}

func TestSensorHistory_averages(t *testing.T) {
	h := newHarness(t)
	seedHistory(h)

	r := h.get(history + "?aggregation=avg&interval=30m&sensorType=temperature")

	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	assert.JSONEq(t, `{"equipmentId": "press-01", "aggregation": "avg", "interval": "30m", "points": [
		{"sensorType": "temperature", "bucket": "2026-11-27T07:30:00.000Z", "avg": 61, "min": 60, "max": 62, "count": 2},
		{"sensorType": "temperature", "bucket": "2026-11-27T08:00:00.000Z", "avg": 64, "min": 64, "max": 64, "count": 1}
	]}`, string(r.body))

	def := h.get(history + "?aggregation=avg").json(t)
	assert.Equal(t, "1m", def["interval"])
	assert.Len(t, def["points"], 4)
}

func TestSensorHistory_invalid_queries(t *testing.T) {
	cases := []struct {
		name, query string
		fields      []string
	}{
		{name: "unknown_parameter", query: "sensor=temperature", fields: []string{"sensor"}},
		{name: "unknown_sensor_type", query: "sensorType=humidity", fields: []string{"sensorType"}},
		{name: "empty_sensor_type", query: "sensorType=", fields: []string{"sensorType"}},
		{name: "bad_from", query: "from=yesterday", fields: []string{"from"}},
		{name: "to_without_offset", query: "to=2026-11-27T08:00:00", fields: []string{"to"}},
		{name: "from_after_to", query: "from=2026-11-27T08:00:00Z&to=2026-11-27T07:00:00Z", fields: []string{"from"}},
		{name: "from_equals_to", query: "from=2026-11-27T08:00:00Z&to=2026-11-27T08:00:00Z", fields: []string{"from"}},
		{name: "from_in_the_future", query: "from=2026-11-27T09:00:00Z", fields: []string{"from"}},
		{name: "unknown_aggregation", query: "aggregation=median", fields: []string{"aggregation"}},
		{name: "interval_without_avg", query: "interval=5m", fields: []string{"interval"}},
		{name: "interval_with_raw", query: "aggregation=raw&interval=5m", fields: []string{"interval"}},
		{name: "interval_below_1s", query: "aggregation=avg&interval=500ms", fields: []string{"interval"}},
		{name: "interval_unparsable", query: "aggregation=avg&interval=5", fields: []string{"interval"}},
		{name: "limit_zero", query: "limit=0", fields: []string{"limit"}},
		{name: "limit_over_10000", query: "limit=10001", fields: []string{"limit"}},
		{name: "limit_not_a_number", query: "limit=ten", fields: []string{"limit"}},
		{name: "repeated", query: "limit=1&limit=2", fields: []string{"limit"}},
		{name: "all_at_once", query: "bogus=1&sensorType=x&from=x&aggregation=x&limit=-1",
			fields: []string{"bogus", "sensorType", "from", "aggregation", "limit"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.put("/equipment/press-01", `{}`)
			e := h.get(history+"?"+tc.query).apiError(t, http.StatusBadRequest, "invalid_query")
			assert.ElementsMatch(t, tc.fields, e.fields())
		})
	}
}

func TestSensorHistory_boundaries_are_valid(t *testing.T) {
	h := newHarness(t)
	h.put("/equipment/press-01", `{}`)
	for _, q := range []string{"limit=1", "limit=10000", "aggregation=avg&interval=1s", "aggregation=raw"} {
		r := h.get(history + "?" + q)
		assert.Equal(t, http.StatusOK, r.status, "%s: %s", q, r.body)
	}
}

const alerts = "/alerts/history"

func TestAlertHistory_lists_anomalies_with_pagination(t *testing.T) {
	h := newHarness(t)
	ingestWithSpike(h, "press-01", 100)

	r := h.get(alerts)

	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	body := r.json(t)
	assert.Equal(t, map[string]any{"page": float64(1), "pageSize": float64(50), "total": float64(1), "totalPages": float64(1)}, body["pagination"])
	data := body["data"].([]any)
	require.Len(t, data, 1)
	a := data[0].(map[string]any)
	for _, k := range []string{"id", "equipmentId", "sensorType", "value", "zScore", "mean", "stdDev", "windowSize", "severity", "timestamp", "detectedAt"} {
		assert.Contains(t, a, k)
	}
	assert.Len(t, a, 11)
	assert.Equal(t, "press-01", a["equipmentId"])
	assert.Equal(t, "CRITICAL", a["severity"])
	assert.Equal(t, float64(100), a["value"])
	assert.Equal(t, float64(40), a["windowSize"])
	assert.Equal(t, "2026-11-27T08:15:00.000Z", a["timestamp"])
	assert.Equal(t, "2026-11-27T08:15:00.000Z", a["detectedAt"])
}

func TestAlertHistory_filters_pages_and_sorts(t *testing.T) {
	h := newHarness(t)
	ingestWithSpike(h, "press-01", 100)
	ingestWithSpike(h, "lathe-02", 100)

	body := h.get(alerts + "?equipmentId=lathe-02&sensorType=temperature&severity=LOW,CRITICAL").json(t)
	require.Len(t, body["data"], 1)
	assert.Equal(t, "lathe-02", body["data"].([]any)[0].(map[string]any)["equipmentId"])

	none := h.get(alerts + "?severity=MEDIUM").json(t)
	assert.Equal(t, []any{}, none["data"])

	page2 := h.get(alerts + "?pageSize=1&page=2&sort=asc").json(t)
	assert.Equal(t, map[string]any{"page": float64(2), "pageSize": float64(1), "total": float64(2), "totalPages": float64(2)}, page2["pagination"])
	require.Len(t, page2["data"], 1)

	past := h.get(alerts + "?page=3&pageSize=1").json(t)
	assert.Equal(t, []any{}, past["data"])

	outOfRange := h.get(alerts + "?to=2026-11-27T08:00:00Z").json(t)
	assert.Equal(t, []any{}, outOfRange["data"])
	inRange := h.get(alerts + "?from=2026-11-27T08:15:00Z").json(t)
	assert.Len(t, inRange["data"], 2)
}

func TestAlertHistory_invalid_queries(t *testing.T) {
	cases := []struct {
		name, query string
		fields      []string
	}{
		{name: "page_size_zero", query: "pageSize=0", fields: []string{"pageSize"}},
		{name: "page_size_501", query: "pageSize=501", fields: []string{"pageSize"}},
		{name: "page_zero", query: "page=0", fields: []string{"page"}},
		{name: "page_too_large", query: "page=1000001", fields: []string{"page"}},
		{name: "unknown_severity", query: "severity=HIGH", fields: []string{"severity"}},
		{name: "lower_case_severity", query: "severity=low", fields: []string{"severity"}},
		{name: "empty_severity_item", query: "severity=LOW,", fields: []string{"severity"}},
		{name: "empty_severity", query: "severity=", fields: []string{"severity"}},
		{name: "bad_equipment_id", query: "equipmentId=-x", fields: []string{"equipmentId"}},
		{name: "bad_sort", query: "sort=up", fields: []string{"sort"}},
		{name: "from_after_to", query: "from=2026-11-27T08:00:00Z&to=2026-11-27T07:00:00Z", fields: []string{"from"}},
		{name: "unknown_parameter", query: "limit=5", fields: []string{"limit"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			e := h.get(alerts+"?"+tc.query).apiError(t, http.StatusBadRequest, "invalid_query")
			assert.Equal(t, tc.fields, e.fields())
		})
	}
}

func TestAlertHistory_boundaries_are_valid(t *testing.T) {
	h := newHarness(t)
	for _, q := range []string{"pageSize=1", "pageSize=500", "page=1000000", "severity=LOW,MEDIUM,CRITICAL", "sort=desc"} {
		r := h.get(alerts + "?" + q)
		assert.Equal(t, http.StatusOK, r.status, "%s: %s", q, r.body)
	}
}

const production = "/metrics/production"

func TestProductionMetrics_defaults_to_24_hourly_zero_filled_buckets(t *testing.T) {
	h := newHarness(t)
	ingestWithSpike(h, "press-01", 100)
	h.ingest(reading("lathe-02", "voltage", 230, t0.Add(-3*time.Hour)))

	r := h.get(production)

	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	body := r.json(t)
	assert.Equal(t, "2026-11-26T08:15:00.000Z", body["from"])
	assert.Equal(t, "2026-11-27T08:15:00.000Z", body["to"])
	assert.Equal(t, "hour", body["bucket"])
	events := body["eventsProcessed"].(map[string]any)
	assert.Equal(t, float64(41), events["total"])
	series := events["series"].([]any)
	require.Len(t, series, 25, "08:00 yesterday to 08:00 today")
	assert.Equal(t, map[string]any{"bucket": "2026-11-26T08:00:00.000Z", "count": float64(0)}, series[0])
	assert.Equal(t, map[string]any{"bucket": "2026-11-27T05:00:00.000Z", "count": float64(1)}, series[21])
	assert.Equal(t, map[string]any{"bucket": "2026-11-27T07:00:00.000Z", "count": float64(0)}, series[23])
	assert.Equal(t, map[string]any{"bucket": "2026-11-27T08:00:00.000Z", "count": float64(40)}, series[24],
		"the spike at t0 is outside [from, to)")
	assert.Equal(t, map[string]any{"total": float64(0), "bySeverity": map[string]any{"LOW": float64(0), "MEDIUM": float64(0), "CRITICAL": float64(0)}}, body["anomalies"])
	assert.Equal(t, float64(0), body["anomalyRate"])
	uptime := body["uptime"].([]any)
	require.Len(t, uptime, 2)
	assert.Equal(t, "lathe-02", uptime[0].(map[string]any)["equipmentId"])
}

func TestProductionMetrics_daily_buckets_for_one_equipment(t *testing.T) {
	h := newHarness(t)
	ingestWithSpike(h, "press-01", 100)
	h.ingest(reading("lathe-02", "voltage", 230, t0))

	r := h.get(production + "?bucket=day&equipmentId=press-01&from=2026-11-25T12:00:00Z&to=2026-11-28T00:00:00Z")

	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	assert.JSONEq(t, `{"total": 41, "series": [
		{"bucket": "2026-11-25T00:00:00.000Z", "count": 0},
		{"bucket": "2026-11-26T00:00:00.000Z", "count": 0},
		{"bucket": "2026-11-27T00:00:00.000Z", "count": 41}
	]}`, mustJSON(t, r.json(t)["eventsProcessed"]))
	body := r.json(t)
	assert.Equal(t, map[string]any{"total": float64(1), "bySeverity": map[string]any{"LOW": float64(0), "MEDIUM": float64(0), "CRITICAL": float64(1)}}, body["anomalies"])
	assert.InDelta(t, 1.0/41, body["anomalyRate"], 1e-9)
	uptime := body["uptime"].([]any)
	require.Len(t, uptime, 1)
	assert.Equal(t, "press-01", uptime[0].(map[string]any)["equipmentId"])
}

func TestProductionMetrics_invalid_queries(t *testing.T) {
	cases := []struct {
		name, query, message string
		fields               []string
	}{
		{name: "unknown_bucket", query: "bucket=week", fields: []string{"bucket"}},
		{name: "too_many_hours", query: "from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", fields: []string{"bucket"},
			message: "the range holds 52608 hour buckets, more than 10000: ask for bucket=day or a shorter range"},
		{name: "too_many_days", query: "bucket=day&from=1990-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", fields: []string{"bucket"},
			message: "the range holds 13149 day buckets, more than 10000: ask for a shorter range"},
		{name: "from_after_to", query: "from=2026-11-27T08:00:00Z&to=2026-11-26T08:00:00Z", fields: []string{"from"}},
		{name: "bad_equipment_id", query: "equipmentId=a%20b", fields: []string{"equipmentId"}},
		{name: "unknown_parameter", query: "interval=1h", fields: []string{"interval"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			e := h.get(production+"?"+tc.query).apiError(t, http.StatusBadRequest, "invalid_query")
			assert.Equal(t, tc.fields, e.fields())
			if tc.message != "" {
				assert.Equal(t, tc.message, e.message(t, "bucket"))
			}
		})
	}
}

func TestProductionMetrics_10000_buckets_are_allowed(t *testing.T) {
	h := newHarness(t)
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := h.get(production + "?from=" + from.Format(time.RFC3339) + "&to=" + from.Add(10000*time.Hour).Format(time.RFC3339))
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	assert.Len(t, r.json(t)["eventsProcessed"].(map[string]any)["series"], 10000)
}
