package http_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const msLayout = "2006-01-02T15:04:05.000Z"

// A window set by PUT makes the equipment MAINTENANCE (shown with the window on every
// equipment answer); a spike within it is stored and listed as an anomaly but opens no
// alarm; DELETE ends it, and then a spike opens an alarm.
func TestMaintenance_window_quiets_alarms_until_it_ends(t *testing.T) {
	h := newHarness(t)
	readings := make([]string, 0, 40)
	for i := range 40 {
		readings = append(readings, reading("press-01", "temperature", 70+float64(i%2), t0.Add(-time.Duration(40-i)*time.Second)))
	}
	h.ingest(batch(readings...))

	r := h.put("/equipment/press-01/maintenance", `{"to": "2026-11-27T10:15:00+01:00", "reason": " die change "}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	window := map[string]any{"from": t0.Format(msLayout), "to": "2026-11-27T09:15:00.000Z", "reason": "die change"}
	assert.Equal(t, map[string]any{"equipmentId": "press-01", "from": window["from"], "to": window["to"], "reason": "die change"}, r.json(t))

	// A window ending now: refused, "to" must be in the future.
	e := h.put("/equipment/press-01/maintenance", `{"from": "2026-11-27T07:00:00Z", "to": "2026-11-27T08:15:00Z"}`).apiError(t, http.StatusBadRequest, "validation_failed")
	assert.Equal(t, "must be in the future", e.message(t, "to"))

	r = h.put("/equipment/press-01/maintenance", `{"from": "2026-11-27T08:15:00Z", "to": "2026-11-27T10:15:00Z", "reason": "die change"}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	window["to"] = "2026-11-27T10:15:00.000Z"
	status := h.get("/equipment/press-01/status").json(t)
	assert.Equal(t, "MAINTENANCE", status["status"])
	assert.Equal(t, window, status["maintenance"])
	one := h.get("/equipment/press-01").json(t)
	assert.Equal(t, "MAINTENANCE", one["status"])
	assert.Equal(t, window, one["maintenance"])
	list := h.get("/equipment").json(t)["data"].([]any)
	require.Len(t, list, 1)
	assert.Equal(t, window, list[0].(map[string]any)["maintenance"])

	// The worker's cache of windows (loaded with the first batch) expires after a second.
	h.clock.Advance(2 * time.Second)
	h.ingest(reading("press-01", "temperature", 100, t0.Add(2*time.Second)))
	alerts := h.get("/alerts/history?equipmentId=press-01").json(t)["data"].([]any)
	require.Len(t, alerts, 1, "the spike is an anomaly as usual")
	assert.Equal(t, float64(100), alerts[0].(map[string]any)["value"])
	assert.Empty(t, h.get("/alarms").json(t)["data"], "no alarm opens in the window")
	assert.Equal(t, "MAINTENANCE", h.get("/equipment/press-01/status").json(t)["status"], "over ANOMALY")

	r = h.send(request(http.MethodDelete, "/equipment/press-01/maintenance", ""))
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	assert.Empty(t, r.body)
	status = h.get("/equipment/press-01/status").json(t)
	assert.Equal(t, "ANOMALY", status["status"], "the anomaly of 0 s ago shows again")
	assert.NotContains(t, status, "maintenance")
	assert.NotContains(t, h.get("/equipment/press-01").json(t), "maintenance")
	e = h.send(request(http.MethodDelete, "/equipment/press-01/maintenance", "")).apiError(t, http.StatusNotFound, "not_found")
	assert.Contains(t, e.Error.Message, "no maintenance window")

	h.clock.Advance(2 * time.Second)
	h.ingest(reading("press-01", "temperature", 200, t0.Add(4*time.Second)))
	alarms := h.get("/alarms").json(t)["data"].([]any)
	require.Len(t, alarms, 1, "after the window, a spike opens an alarm")
	assert.Equal(t, "ACTIVE", alarms[0].(map[string]any)["state"])
	assert.Equal(t, t0.Add(4*time.Second).Format(msLayout), alarms[0].(map[string]any)["openedAt"])
}

// A window ahead is shown but changes no status; DELETE removes it.
func TestMaintenance_window_ahead(t *testing.T) {
	h := newHarness(t)
	h.put("/equipment/press-01", `{"name": "Press 1"}`)
	r := h.put("/equipment/press-01/maintenance", `{"from": "2026-11-28T06:00:00Z", "to": "2026-12-28T06:00:00Z"}`)
	require.Equal(t, http.StatusOK, r.status, "exactly 30 days: %s", r.body)
	status := h.get("/equipment/press-01/status").json(t)
	assert.Equal(t, "OFFLINE", status["status"], "never seen")
	assert.Equal(t, map[string]any{"from": "2026-11-28T06:00:00.000Z", "to": "2026-12-28T06:00:00.000Z", "reason": ""}, status["maintenance"])

	require.Equal(t, http.StatusNoContent, h.send(request(http.MethodDelete, "/equipment/press-01/maintenance", "")).status)
	assert.NotContains(t, h.get("/equipment/press-01/status").json(t), "maintenance")
	h.send(request(http.MethodDelete, "/equipment/press-01/maintenance", "")).apiError(t, http.StatusNotFound, "not_found")
}

func TestMaintenance_refuses_bad_requests(t *testing.T) {
	h := newHarness(t)
	h.put("/equipment/press-01", `{}`)
	for _, tt := range []struct {
		name, body string
		fields     []string
		message    string // of the first field, when set
	}{
		{"empty_object", `{}`, []string{"to"}, "is required: when the window ends"},
		{"to_null", `{"to": null}`, []string{"to"}, ""},
		{"to_not_a_time", `{"to": "tomorrow"}`, []string{"to"}, "must be an RFC 3339 time with an offset, e.g. 2026-11-27T08:15:00Z"},
		{"to_without_offset", `{"to": "2026-11-27T10:00:00"}`, []string{"to"}, ""},
		{"from_without_offset", `{"from": "2026-11-27T09:00:00", "to": "2026-11-27T10:00:00Z"}`, []string{"from"}, ""},
		{"to_before_from", `{"from": "2026-11-27T09:00:00Z", "to": "2026-11-27T08:59:00Z"}`, []string{"to"}, "must be after from"},
		{"to_equal_to_from", `{"from": "2026-11-27T09:00:00Z", "to": "2026-11-27T09:00:00Z"}`, []string{"to"}, "must be after from"},
		{"to_in_the_past", `{"from": "2026-11-27T07:00:00Z", "to": "2026-11-27T08:00:00Z"}`, []string{"to"}, "must be in the future"},
		{"over_30_days", `{"to": "2026-12-27T08:15:00.001Z"}`, []string{"to"}, "must be at most 30 days after from"},
		{"reason_too_long_and_from_bad", `{"from": "x", "to": "2026-11-27T10:00:00Z", "reason": "` + strings.Repeat("é", 501) + `"}`,
			[]string{"from", "reason"}, ""},
		{"reason_with_nul", `{"to": "2026-11-27T10:00:00Z", "reason": "a\u0000b"}`, []string{"reason"}, "must not contain a NUL character"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := h.put("/equipment/press-01/maintenance", tt.body).apiError(t, http.StatusBadRequest, "validation_failed")
			assert.Equal(t, tt.fields, e.fields())
			if tt.message != "" {
				assert.Equal(t, tt.message, e.message(t, tt.fields[0]))
			}
		})
	}
	e := h.put("/equipment/press-01/maintenance", `{"to": 5, "reason": ["x"], "from": "2026-11-27T09:00:00Z"}`).
		apiError(t, http.StatusBadRequest, "malformed_json")
	assert.Equal(t, []string{"to", "reason"}, e.fields())
	h.put("/equipment/press-01/maintenance", `["to"]`).apiError(t, http.StatusBadRequest, "malformed_json")
	h.put("/equipment/press-01/maintenance", `{"to": "2026-11-27T10:00:00Z"`).apiError(t, http.StatusBadRequest, "malformed_json")
	h.send(func() *http.Request {
		r := request(http.MethodPut, "/equipment/press-01/maintenance", `{"to": "2026-11-27T10:00:00Z"}`)
		r.Header.Set("Content-Type", "text/plain")
		return r
	}()).apiError(t, http.StatusUnsupportedMediaType, "unsupported_media_type")
	e = h.put("/equipment/-press/maintenance", `{"to": "2026-11-27T10:00:00Z"}`).apiError(t, http.StatusBadRequest, "validation_failed")
	assert.Equal(t, []string{"id"}, e.fields())
	h.send(request(http.MethodDelete, "/equipment/-press/maintenance", "")).apiError(t, http.StatusBadRequest, "validation_failed")

	// Unknown equipment: it must be registered first.
	h.put("/equipment/press-99/maintenance", `{"to": "2026-11-27T10:00:00Z"}`).apiError(t, http.StatusNotFound, "not_found")
	e = h.send(request(http.MethodDelete, "/equipment/press-99/maintenance", "")).apiError(t, http.StatusNotFound, "not_found")
	assert.Equal(t, "no such resource", e.Error.Message)
	assert.NotContains(t, h.get("/equipment/press-01").json(t), "maintenance", "nothing refused was stored")
}

// Only a key with full access sets or ends a window.
func TestMaintenance_needs_the_admin_scope(t *testing.T) {
	h := newHarness(t)
	h.put("/equipment/press-01", `{}`)
	for _, key := range []string{readKey, ingestKey} {
		r := request(http.MethodPut, "/equipment/press-01/maintenance", `{"to": "2026-11-27T10:00:00Z"}`)
		r.Header.Set("X-API-Key", key)
		h.send(r).apiError(t, http.StatusForbidden, "forbidden")
		r = request(http.MethodDelete, "/equipment/press-01/maintenance", "")
		r.Header.Set("X-API-Key", key)
		h.send(r).apiError(t, http.StatusForbidden, "forbidden")
	}
	assert.NotContains(t, h.get("/equipment/press-01").json(t), "maintenance")
}
