package http_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEquipment_put_creates_then_replaces_metadata(t *testing.T) {
	h := newHarness(t)

	r := h.put("/equipment/press-01", `{"name": "Press 1", "line": "A", "location": "Hall 2"}`)

	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	assert.JSONEq(t, `{"id": "press-01", "name": "Press 1", "line": "A", "location": "Hall 2",
		"status": "OFFLINE", "lastSeenAt": null, "createdAt": "2026-11-27T08:15:00.000Z"}`, string(r.body))

	h.clock.Advance(time.Minute)
	r = h.put("/equipment/press-01", `{"name": "Press One", "line": null}`)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	assert.JSONEq(t, `{"id": "press-01", "name": "Press One", "line": "", "location": "",
		"status": "OFFLINE", "lastSeenAt": null, "createdAt": "2026-11-27T08:15:00.000Z"}`, string(r.body))

	got := h.get("/equipment/press-01")
	require.Equal(t, http.StatusOK, got.status)
	assert.JSONEq(t, string(r.body), string(got.body))
}

func TestEquipment_list_and_get_show_status_and_last_seen(t *testing.T) {
	h := newHarness(t)
	h.put("/equipment/lathe-02", `{"name": "Lathe"}`)
	h.clock.Advance(1500 * time.Millisecond)
	h.ingest(`{"equipmentId": "press-01", "sensorType": "temperature", "value": 70}`)

	r := h.get("/equipment")

	require.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"data": [
		{"id": "lathe-02", "name": "Lathe", "line": "", "location": "", "status": "OFFLINE",
		 "lastSeenAt": null, "createdAt": "2026-11-27T08:15:00.000Z"},
		{"id": "press-01", "name": "", "line": "", "location": "", "status": "ONLINE",
		 "lastSeenAt": "2026-11-27T08:15:01.500Z", "createdAt": "2026-11-27T08:15:01.500Z"}
	]}`, string(r.body))
}

func TestEquipment_list_is_empty_array(t *testing.T) {
	h := newHarness(t)
	r := h.get("/equipment")
	require.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"data": []}`, string(r.body))
}

func TestEquipment_unknown_is_404(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{
		"/equipment/ghost", "/equipment/ghost/status", "/equipment/ghost/sensor-history",
		"/metrics/production?equipmentId=ghost",
	} {
		t.Run(path, func(t *testing.T) {
			h.get(path).apiError(t, http.StatusNotFound, "not_found")
		})
	}
}

func TestEquipment_invalid_id_in_path_is_400(t *testing.T) {
	h := newHarness(t)
	long := strings.Repeat("a", 65)
	for _, r := range []response{
		h.get("/equipment/" + long),
		h.get("/equipment/-press/status"),
		h.get("/equipment/press%2001/sensor-history"),
		h.put("/equipment/"+long, `{}`),
	} {
		e := r.apiError(t, http.StatusBadRequest, "validation_failed")
		assert.Equal(t, []string{"id"}, e.fields())
	}
}

func TestEquipment_put_body_rules(t *testing.T) {
	cases := []struct {
		name, body, code string
		fields           []string
	}{
		{name: "name_too_long", body: `{"name": "` + strings.Repeat("é", 129) + `"}`, code: "validation_failed", fields: []string{"name"}},
		{name: "all_too_long", body: `{"name": "` + strings.Repeat("n", 129) + `", "line": "` + strings.Repeat("l", 129) + `", "location": "` + strings.Repeat("x", 129) + `"}`,
			code: "validation_failed", fields: []string{"line", "location", "name"}},
		{name: "wrong_types", body: `{"name": 1, "line": ["A"]}`, code: "malformed_json", fields: []string{"name", "line"}},
		{name: "not_an_object", body: `["press"]`, code: "malformed_json"},
		{name: "not_json", body: `{"name": `, code: "malformed_json", fields: []string{"body"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			e := h.put("/equipment/press-01", tc.body).apiError(t, http.StatusBadRequest, tc.code)
			if tc.fields != nil {
				assert.Equal(t, tc.fields, e.fields())
			}
			h.get("/equipment/press-01").apiError(t, http.StatusNotFound, "not_found")
		})
	}
}

func TestEquipment_put_accepts_128_characters(t *testing.T) {
	h := newHarness(t)
	r := h.put("/equipment/press-01", `{"name": "`+strings.Repeat("é", 128)+`"}`)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
}

func TestEquipment_put_needs_json(t *testing.T) {
	h := newHarness(t)
	req := request(http.MethodPut, "/equipment/press-01", `{"name": "Press"}`)
	req.Header.Set("Content-Type", "text/plain")
	h.send(req).apiError(t, http.StatusUnsupportedMediaType, "unsupported_media_type")
}

func TestEquipmentStatus_after_readings(t *testing.T) {
	h := newHarness(t)
	h.ingest(batch(
		reading("press-01", "temperature", 70, t0.Add(-2*time.Second)),
		reading("press-01", "temperature", 71, t0.Add(-time.Second)),
		reading("press-01", "pressure", 3.2, t0.Add(-time.Second)),
	))
	h.clock.Advance(2400 * time.Millisecond)

	r := h.get("/equipment/press-01/status")

	require.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"equipmentId": "press-01", "status": "ONLINE",
		"lastSeenAt": "2026-11-27T08:15:00.000Z", "secondsSinceLastSeen": 2.4,
		"latestReadings": [
			{"sensorType": "temperature", "value": 71, "unit": "celsius", "timestamp": "2026-11-27T08:14:59.000Z", "anomalous": false},
			{"sensorType": "pressure", "value": 3.2, "unit": "celsius", "timestamp": "2026-11-27T08:14:59.000Z", "anomalous": false}
		],
		"recentAnomalies": 0}`, string(r.body))
}

func TestEquipmentStatus_never_seen_has_nulls(t *testing.T) {
	h := newHarness(t)
	h.put("/equipment/press-01", `{}`)

	r := h.get("/equipment/press-01/status")

	require.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"equipmentId": "press-01", "status": "OFFLINE", "lastSeenAt": null,
		"secondsSinceLastSeen": null, "latestReadings": [], "recentAnomalies": 0}`, string(r.body))
}

func TestEquipmentStatus_shows_anomaly(t *testing.T) {
	h := newHarness(t)
	ingestWithSpike(h, "press-01", 100)

	st := h.get("/equipment/press-01/status").json(t)

	assert.Equal(t, "ANOMALY", st["status"])
	assert.Equal(t, float64(1), st["recentAnomalies"])
	latest := st["latestReadings"].([]any)[0].(map[string]any)
	assert.Equal(t, true, latest["anomalous"])
}

// ingestWithSpike sends 40 steady temperature readings, one a second ending one minute
// before t0, then one reading of spike at t0: enough history for the detector to flag it.
func ingestWithSpike(h *harness, equipmentID string, spike float64) {
	h.t.Helper()
	readings := make([]string, 0, 41)
	for i := range 40 {
		readings = append(readings, reading(equipmentID, "temperature", 70+float64(i%2), t0.Add(-time.Minute-time.Duration(40-i)*time.Second)))
	}
	readings = append(readings, reading(equipmentID, "temperature", spike, t0))
	h.ingest(batch(readings...))
}
