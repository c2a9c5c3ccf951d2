package e2e

import (
	"net/http"
	"testing"
	"time"
)

// On every storage set-up, over HTTP: an equipment put under maintenance is MAINTENANCE; a
// spike within the window is stored and listed as an anomaly, but opens no alarm; once the
// window is ended (DELETE), the status is the rules' again and a spike opens an alarm.
func TestMaintenanceWindowHoldsBackAlarms(t *testing.T) {
	eachStorage(t, func(t *testing.T, newConfig configFunc) {
		s := start(t, newConfig(nil), t0)
		mustStatus(t, s.post(batch(normal("press-01", 40, t0.Add(-40*time.Second)))), 202)

		r := s.do(http.MethodPut, "/equipment/press-01/maintenance",
			map[string]any{"to": ms(t0.Add(time.Hour)), "reason": "bearing change"}, nil)
		mustStatus(t, r, 200)
		if got := r.json(t); got["equipmentId"] != "press-01" || got["from"] != ms(t0) || got["to"] != ms(t0.Add(time.Hour)) ||
			got["reason"] != "bearing change" {
			t.Fatalf("PUT answered %s", r.body)
		}
		status := s.get("/equipment/press-01/status").json(t)
		if status["status"] != "MAINTENANCE" || status["maintenance"] == nil {
			t.Fatalf("status under maintenance: %v", status)
		}

		// The workers reload a window they have cached (with the readings above) after a second.
		s.clock.Advance(2 * time.Second)
		mustStatus(t, s.post(reading("press-01", "temperature", 95, t0.Add(2*time.Second))), 202)
		alerts := s.get("/alerts/history?equipmentId=press-01").json(t)["data"].([]any)
		if len(alerts) != 1 || alerts[0].(map[string]any)["value"] != 95.0 {
			t.Fatalf("alerts %v, want the spike", alerts)
		}
		history := s.get("/equipment/press-01/sensor-history?from=" + ms(t0.Add(-time.Minute)) + "&to=" + ms(t0.Add(time.Minute))).json(t)
		if n := len(history["points"].([]any)); n != 41 {
			t.Errorf("%d readings stored, want 41", n)
		}
		if alarms := s.get("/alarms?equipmentId=press-01").json(t)["data"].([]any); len(alarms) != 0 {
			t.Fatalf("alarms %v opened under maintenance", alarms)
		}
		if st := s.get("/equipment/press-01/status").json(t)["status"]; st != "MAINTENANCE" {
			t.Errorf("status %v after the spike, want MAINTENANCE", st)
		}

		mustStatus(t, s.do(http.MethodDelete, "/equipment/press-01/maintenance", nil, nil), 204)
		status = s.get("/equipment/press-01/status").json(t)
		if status["status"] != "ANOMALY" || status["maintenance"] != nil {
			t.Errorf("status once the window ended: %v, want ANOMALY (the spike's) without a window", status)
		}
		if r := s.do(http.MethodDelete, "/equipment/press-01/maintenance", nil, nil); r.status != 404 || r.errorCode(t) != "not_found" {
			t.Errorf("a second DELETE: %d %s, want 404 not_found", r.status, r.body)
		}

		s.clock.Advance(2 * time.Second)
		mustStatus(t, s.post(reading("press-01", "temperature", 200, t0.Add(4*time.Second))), 202)
		alarms := s.get("/alarms?equipmentId=press-01").json(t)["data"].([]any)
		if len(alarms) != 1 || alarms[0].(map[string]any)["openedAt"] != ms(t0.Add(4*time.Second)) {
			t.Fatalf("alarms %v, want the one the spike after the window opened", alarms)
		}
	})
}
