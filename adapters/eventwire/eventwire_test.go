package eventwire_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/eventwire"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/domain/sensor"
)

var at = time.Date(2026, 11, 27, 8, 0, 0, 123_456_789, time.FixedZone("CET", 3600))

func decode(t *testing.T, e event.Event) map[string]any {
	t.Helper()
	b, err := eventwire.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["id"] != e.ID || m["type"] != string(e.Type) || m["at"] != eventwire.Time(e.At) || m["equipmentId"] != e.EquipmentID {
		t.Fatalf("envelope %v", m)
	}
	return m["data"].(map[string]any)
}

func TestEncodeAlarm(t *testing.T) {
	a := alarm.Alarm{ID: "al-1", EquipmentID: "press-01", SensorType: sensor.Temperature, State: alarm.StateAcknowledged,
		Severity: anomaly.SeverityCritical, OpenedAt: at, FirstAt: at, LastAt: at.Add(time.Second), Count: 2, PeakZ: 12.5,
		AckBy: "jo", AckComment: "on it", AckAt: at.Add(time.Minute), RulesVersion: "v1"}
	acked := event.Acknowledged("ev-1", a)
	if !acked.At.Equal(a.AckAt) {
		t.Fatalf("an acknowledgement happens when it is made, not at %v", acked.At)
	}
	d := decode(t, acked)
	ack := d["acknowledged"].(map[string]any)
	if d["id"] != "al-1" || d["state"] != "ACKNOWLEDGED" || d["severity"] != "CRITICAL" || d["anomalyCount"] != 2.0 ||
		d["lastAnomalyAt"] != "2026-11-27T07:00:01.123Z" || d["clearedAt"] != nil || ack["by"] != "jo" ||
		ack["at"] != "2026-11-27T07:01:00.123Z" {
		t.Fatalf("alarm %v", d)
	}
	a.ClearedAt, a.AckAt = at.Add(time.Hour), time.Time{}
	ev, ok := event.ForAlarm("ev-2", alarm.Cleared, a, at)
	if !ok {
		t.Fatal("a clearing is an event")
	}
	if d := decode(t, ev); d["clearedAt"] != "2026-11-27T08:00:00.123Z" || d["acknowledged"] != nil {
		t.Fatalf("cleared alarm %v", d)
	}
	if _, ok := event.ForAlarm("ev-3", alarm.Grew, a, at); ok {
		t.Fatal("an alarm that only grew is not an event")
	}
}

func TestEncodeStatusChange(t *testing.T) {
	c := event.StatusChange{EquipmentID: "press-01", Status: equipment.StatusOnline, Reason: "readings arriving"}
	if eventwire.Time(at) != "2026-11-27T07:00:00.123Z" {
		t.Fatalf("times are written %s", eventwire.Time(at))
	}
	if d := decode(t, event.ForStatus("ev-1", c, at)); d["previous"] != nil || d["status"] != "ONLINE" || d["reason"] != "readings arriving" {
		t.Fatalf("first status %v", d)
	}
	c.Previous, c.Status = equipment.StatusOnline, equipment.StatusOffline
	if d := decode(t, event.ForStatus("ev-2", c, at)); d["previous"] != "ONLINE" || d["status"] != "OFFLINE" {
		t.Fatalf("status change %v", d)
	}
}

func TestEncodeAnomaly(t *testing.T) {
	a := anomaly.Anomaly{ID: "an-1", ReadingID: "r-1", EquipmentID: "press-01", SensorType: sensor.Vibration, Value: 9.5,
		ZScore: 4.2, Mean: 2, StdDev: 1.5, WindowSize: 100, Severity: anomaly.SeverityMedium, Timestamp: at, DetectedAt: at}
	d := decode(t, event.ForAnomaly("ev-1", a))
	if d["readingId"] != "r-1" || d["sensorType"] != "vibration" || d["zScore"] != 4.2 || d["severity"] != "MEDIUM" ||
		d["timestamp"] != "2026-11-27T07:00:00.123Z" {
		t.Fatalf("anomaly %v", d)
	}
}

func TestEncodeRefusesAnEmptyEvent(t *testing.T) {
	if _, err := eventwire.Encode(event.Event{ID: "ev-1", Type: event.AlarmOpened}); err == nil {
		t.Fatal("an event without its alarm was encoded")
	}
}
