package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// On every storage set-up: a pump with two vibration sensors told apart by sensorId and a
// flow meter of a type the rules file declares. A spike on one bearing opens an alarm on that
// bearing only; every query filters by sensorId and shows it; an undeclared type is refused.
func TestSeveralSensorsOfATypeAndDeclaredTypes(t *testing.T) {
	rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rulesFile, []byte("types:\n  flow:\n    unit: m3/h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eachStorage(t, func(t *testing.T, newConfig configFunc) {
		s := start(t, newConfig(map[string]string{"PLM_RULES_FILE": rulesFile}), t0)
		named := func(rs []map[string]any, typ, sensorID string, offset float64) []map[string]any {
			for _, r := range rs {
				r["sensorType"], r["sensorId"], r["value"] = typ, sensorID, r["value"].(float64)+offset
				r["unit"] = ""
			}
			return rs
		}
		start := t0.Add(-40 * time.Second)
		var rs []map[string]any
		rs = append(rs, named(normal("pump-01", 40, start), "vibration", "bearing-de", -68)...)
		rs = append(rs, named(normal("pump-01", 40, start), "vibration", "bearing-nde", -60)...)
		rs = append(rs, named(normal("pump-01", 40, start), "flow", "flow-1", -28)...)
		mustStatus(t, s.post(batch(rs)), 202)
		// 40 on the non-drive end is far above its ~10; on the drive end, whose mean is ~2,
		// a reading of 2 is calm.
		spike := named([]map[string]any{reading("pump-01", "vibration", 40, t0)}, "vibration", "bearing-nde", 0)
		calm := named([]map[string]any{reading("pump-01", "vibration", 2, t0)}, "vibration", "bearing-de", 0)
		mustStatus(t, s.post(batch(append(spike, calm...))), 202)

		alarms := s.get("/alarms?equipmentId=pump-01").json(t)["data"].([]any)
		if len(alarms) != 1 {
			t.Fatalf("alarms %v, want one, on bearing-nde", alarms)
		}
		if a := alarms[0].(map[string]any); a["sensorType"] != "vibration" || a["sensorId"] != "bearing-nde" {
			t.Errorf("alarm %v, want on vibration bearing-nde", a)
		}
		if n := len(s.get("/alarms?sensorId=bearing-de").json(t)["data"].([]any)); n != 0 {
			t.Errorf("%d alarms on bearing-de, want none", n)
		}
		alerts := s.get("/alerts/history?sensorId=bearing-nde").json(t)["data"].([]any)
		if len(alerts) != 1 || alerts[0].(map[string]any)["sensorId"] != "bearing-nde" {
			t.Errorf("alerts of bearing-nde %v, want the spike", alerts)
		}
		hist := s.get("/equipment/pump-01/sensor-history?sensorType=flow&from=" + ms(start)).json(t)["points"].([]any)
		if len(hist) != 40 || hist[0].(map[string]any)["sensorId"] != "flow-1" {
			t.Errorf("flow history: %d points, first %v; want 40 of flow-1", len(hist), hist[0])
		}
		st := s.get("/equipment/pump-01/status").json(t)
		latest := st["latestReadings"].([]any)
		if len(latest) != 3 {
			t.Fatalf("latest readings %v, want one per sensor", latest)
		}
		for i, want := range []string{"bearing-de", "bearing-nde", "flow-1"} {
			if got := latest[i].(map[string]any)["sensorId"]; got != want {
				t.Errorf("latestReadings[%d].sensorId = %v, want %s", i, got, want)
			}
		}
		if st := s.get("/equipment/pump-01/status?sensorId=bearing-de").json(t); len(st["latestReadings"].([]any)) != 1 || st["recentAnomalies"] != 0.0 {
			t.Errorf("status of bearing-de: %v", st)
		}
		m := s.get("/metrics/production?equipmentId=pump-01&sensorId=bearing-nde&from=" + ms(start) + "&to=" + ms(t0.Add(time.Second))).json(t)
		if m["eventsProcessed"].(map[string]any)["total"] != 41.0 || m["anomalies"].(map[string]any)["total"] != 1.0 {
			t.Errorf("metrics of bearing-nde: %v", m)
		}
		e := s.post(map[string]any{"equipmentId": "pump-01", "sensorType": "current", "value": 1})
		mustStatus(t, e, 400)
	})
}
