package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// On every storage set-up, over HTTP: a spike opens one alarm, the equipment is ANOMALY while
// it is open, an operator acknowledges it (once), and calm readings clear it.
func TestAlarmOpensIsAcknowledgedAndClears(t *testing.T) {
	eachStorage(t, func(t *testing.T, newConfig configFunc) {
		s := start(t, newConfig(nil), t0)
		mustStatus(t, s.post(batch(normal("press-01", 40, t0.Add(-40*time.Second)))), 202)
		mustStatus(t, s.post(reading("press-01", "temperature", 95, t0)), 202)

		list := s.get("/alarms?state=ACTIVE")
		mustStatus(t, list, 200)
		data := list.json(t)["data"].([]any)
		if len(data) != 1 {
			t.Fatalf("want 1 active alarm, got %s", list.body)
		}
		a := data[0].(map[string]any)
		if a["equipmentId"] != "press-01" || a["severity"] != "CRITICAL" || a["openedAt"] != ms(t0) || a["anomalyCount"] != 1.0 {
			t.Fatalf("alarm %v", a)
		}
		id := a["id"].(string)
		detail := s.get("/alarms/" + id).json(t)
		if n := len(detail["anomalies"].([]any)); n != 1 {
			t.Errorf("alarm with %d anomalous readings, want 1: %v", n, detail)
		}

		s.clock.Advance(10 * time.Second)
		ack := s.do(http.MethodPost, "/alarms/"+id+"/ack", map[string]any{"by": "jo", "comment": "on it"}, nil)
		mustStatus(t, ack, 200)
		if got := ack.json(t); got["state"] != "ACKNOWLEDGED" || got["acknowledged"].(map[string]any)["by"] != "jo" {
			t.Fatalf("acknowledged alarm %v", got)
		}
		again := s.do(http.MethodPost, "/alarms/"+id+"/ack", map[string]any{"by": "kim"}, nil)
		mustStatus(t, again, 409)
		if again.errorCode(t) != "conflict" {
			t.Errorf("code %q", again.errorCode(t))
		}

		// Calm readings every 20 s: past the anomaly window the alarm keeps the equipment
		// ANOMALY; the tenth clears it, acknowledgement kept.
		for i := 1; i <= 10; i++ {
			if i == 10 {
				if st := s.get("/equipment/press-01/status").json(t)["status"]; st != "ANOMALY" {
					t.Errorf("status %v with the alarm open, want ANOMALY", st)
				}
			}
			s.clock.Advance(20 * time.Second)
			mustStatus(t, s.post(reading("press-01", "temperature", 70, t0.Add(time.Duration(i)*20*time.Second))), 202)
		}
		cleared := s.get("/alarms/" + id).json(t)
		if cleared["state"] != "CLEARED" || cleared["clearedAt"] != ms(t0.Add(200*time.Second)) || cleared["acknowledged"] == nil {
			t.Errorf("after 10 calm readings: %v", cleared)
		}
		if st := s.get("/equipment/press-01/status").json(t)["status"]; st != "ONLINE" {
			t.Errorf("status %v once the alarm cleared, want ONLINE", st)
		}
		metrics := string(s.get("/metrics").body)
		for _, line := range []string{`plm_alarm_events_total{event="opened",severity="CRITICAL"} 1`,
			`plm_alarm_events_total{event="cleared",severity="CRITICAL"} 1`} {
			if !strings.Contains(metrics, line) {
				t.Errorf("/metrics lacks %s", line)
			}
		}
	})
}

// A sensor type's hard limit, from PLM_RULES_FILE: one reading beyond it is a CRITICAL
// anomaly and opens an alarm at once, before the window holds enough readings for any
// z-score; the alarm records the version of the rules it opened under.
func TestHardLimitFromTheRulesFileOpensAnAlarm(t *testing.T) {
	rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rulesFile, []byte("types:\n  temperature:\n    limits: {min: -20, max: 120}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eachStorage(t, func(t *testing.T, newConfig configFunc) {
		s := start(t, newConfig(map[string]string{"PLM_RULES_FILE": rulesFile}), t0)
		mustStatus(t, s.post(reading("oven-01", "temperature", 80, t0.Add(-time.Second))), 202)
		mustStatus(t, s.post(reading("oven-01", "temperature", 135, t0)), 202)
		mustStatus(t, s.post(reading("oven-01", "pressure", 135, t0)), 202) // no limit for pressure

		alerts := s.get("/alerts/history?equipmentId=oven-01").json(t)["data"].([]any)
		if len(alerts) != 1 || alerts[0].(map[string]any)["severity"] != "CRITICAL" || alerts[0].(map[string]any)["value"] != 135.0 {
			t.Fatalf("alerts %v, want the 135 °C reading, CRITICAL", alerts)
		}
		alarms := s.get("/alarms?equipmentId=oven-01").json(t)["data"].([]any)
		if len(alarms) != 1 {
			t.Fatalf("alarms %v, want one", alarms)
		}
		a := alarms[0].(map[string]any)
		if a["sensorType"] != "temperature" || a["severity"] != "CRITICAL" || a["state"] != "ACTIVE" || a["rulesVersion"] == "" {
			t.Errorf("alarm %v", a)
		}
	})
}

// The service refuses to start on a rules file it cannot use, naming the file and the field,
// and starts (logging the rules' version) on a good one.
func TestServiceChecksTheRulesFileAtStart(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("types:\n  temperature:\n    windowSize: 20\n    minSamples: 50\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runOnce(t, []string{"PLM_DATA_DIR=" + dir, "PLM_API_KEYS=" + apiKey, "PLM_ADDR=" + freeAddr(t),
		"PLM_RULES_FILE=" + bad}, "run")
	if code != 1 || !strings.Contains(stderr, "bad.yaml") || !strings.Contains(stderr, "types.temperature.minSamples") {
		t.Fatalf("exit %d, stderr:\n%s\nwant 1 and the file and field named", code, stderr)
	}
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("types:\n  temperature:\n    limits: {max: 150}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := runPLM(t, "PLM_DATA_DIR="+dir, "PLM_RULES_FILE="+good)
	if !strings.Contains(p.stderr.String(), "rules_version=") {
		t.Errorf("the start does not log the rules' version:\n%s", p.stderr)
	}
	p.terminate(t)
}
