package alarm_test

import (
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
)

func openAlarm(id string, typ sensor.Type, sensorID string, at time.Duration, sev anomaly.Severity) alarm.Alarm {
	return alarm.Alarm{ID: id, EquipmentID: "pump-1", SensorType: typ, Sensor: sensorID, State: alarm.StateActive,
		Severity: sev, OpenedAt: time.Unix(0, 0).Add(at)}
}

func cleared(a alarm.Alarm, at time.Duration) alarm.Alarm {
	a.State, a.ClearedAt = alarm.StateCleared, time.Unix(0, 0).Add(at)
	return a
}

// Alarms that open while another of the machine's is open join its incident; the incident
// closes with its last alarm, and the next opening starts a new one.
func TestIncidentsGroupTheAlarmsThatOverlap(t *testing.T) {
	m := alarm.NewIncidents(nil)
	flow := openAlarm("a1", sensor.Pressure, "flow", 0, anomaly.SeverityLow)
	inc, isNew := m.Opened(flow)
	if !isNew || inc.ID != "a1" || inc.Open != 1 {
		t.Fatalf("first alarm: %+v, new %v", inc, isNew)
	}
	vib := openAlarm("a2", sensor.Vibration, "accelerometer-1", 20*time.Second, anomaly.SeverityCritical)
	vib2 := openAlarm("a3", sensor.Vibration, "accelerometer-2", 25*time.Second, anomaly.SeverityMedium)
	for _, a := range []alarm.Alarm{vib, vib2} {
		if inc, isNew = m.Opened(a); isNew || inc.ID != "a1" {
			t.Fatalf("%s: %+v, new %v; want it in a1", a.ID, inc, isNew)
		}
	}
	if inc.Open != 3 || len(inc.Sensors) != 3 || inc.Severity != anomaly.SeverityCritical || !inc.OpenedAt.Equal(flow.OpenedAt) {
		t.Fatalf("incident %+v", inc)
	}
	// The first alarm clears: the incident goes on with the others.
	if inc, closed := m.Cleared(cleared(flow, time.Minute)); closed || inc.Open != 2 {
		t.Fatalf("after the first clearing: %+v, closed %v", inc, closed)
	}
	// A fourth opens while two are open: it joins still.
	if inc, isNew = m.Opened(openAlarm("a4", sensor.Temperature, "", 70*time.Second, anomaly.SeverityLow)); isNew || inc.ID != "a1" {
		t.Fatalf("a4: %+v, new %v", inc, isNew)
	}
	m.Cleared(cleared(vib, 80*time.Second))
	m.Cleared(cleared(openAlarm("a4", sensor.Temperature, "", 70*time.Second, anomaly.SeverityLow), 85*time.Second))
	inc, closed := m.Cleared(cleared(vib2, 90*time.Second))
	if !closed || inc.Open != 0 || !inc.ClearedAt.Equal(time.Unix(90, 0)) {
		t.Fatalf("the last clearing: %+v, closed %v", inc, closed)
	}
	if inc, isNew = m.Opened(openAlarm("a5", sensor.Pressure, "flow", 95*time.Second, anomaly.SeverityLow)); !isNew || inc.ID != "a5" {
		t.Fatalf("after the incident closed: %+v, new %v", inc, isNew)
	}
	if _, closed := m.Cleared(cleared(openAlarm("nope", sensor.Pressure, "", 0, anomaly.SeverityLow), time.Hour)); closed {
		t.Error("an unknown alarm closed an incident")
	}
}

// Restored from the machine's open alarms, the incidents go on: an alarm opening joins the
// latest open incident; an alarm stored before incidents is its own.
func TestIncidentsRestoreFromTheOpenAlarms(t *testing.T) {
	a1 := openAlarm("a1", sensor.Pressure, "", 0, anomaly.SeverityLow) // from before incidents
	a2 := openAlarm("a2", sensor.Vibration, "", time.Minute, anomaly.SeverityLow)
	a3 := openAlarm("a3", sensor.Voltage, "", 2*time.Minute, anomaly.SeverityLow)
	a2.IncidentID, a3.IncidentID = "a2", "a2"
	m := alarm.NewIncidents([]alarm.Alarm{a1, a2, a3, cleared(openAlarm("a0", sensor.Voltage, "", 0, anomaly.SeverityLow), time.Second)})
	inc, isNew := m.Opened(openAlarm("a4", sensor.Temperature, "", 3*time.Minute, anomaly.SeverityLow))
	if isNew || inc.ID != "a2" || inc.Open != 3 {
		t.Fatalf("%+v, new %v; want a4 in a2 with three open", inc, isNew)
	}
	if inc, closed := m.Cleared(cleared(a1, 4*time.Minute)); !closed || inc.ID != "a1" {
		t.Fatalf("a1's own incident: %+v, closed %v", inc, closed)
	}
	// A retried opening is placed once.
	if inc, isNew = m.Opened(openAlarm("a4", sensor.Temperature, "", 3*time.Minute, anomaly.SeverityLow)); isNew || inc.Open != 3 {
		t.Fatalf("a retried opening: %+v, new %v", inc, isNew)
	}
}
