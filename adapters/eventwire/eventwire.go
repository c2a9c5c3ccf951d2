// Package eventwire writes events in their wire form: the JSON that the live stream sends as
// an event's data and that a subscription's endpoint receives as a delivery's body.
//
//	{"id": "…", "type": "alarm.opened", "at": "2026-01-02T03:04:05.678Z",
//	 "equipmentId": "press-01", "data": {…}}
//
// data is the alarm after the transition (alarm.*), the status change
// (equipment.status_changed: equipmentId, previous, status, reason) or the anomaly (anomaly).
package eventwire

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/event"
)

// Envelope is an event on the wire.
type Envelope struct {
	ID          string          `json:"id"`
	Type        event.Type      `json:"type"`
	At          string          `json:"at"`
	EquipmentID string          `json:"equipmentId"`
	Data        json.RawMessage `json:"data"`
}

// Alarm is an alarm on the wire, as GET /alarms/:id writes it (without its readings).
type Alarm struct {
	ID           string           `json:"id"`
	EquipmentID  string           `json:"equipmentId"`
	SensorType   string           `json:"sensorType"`
	SensorID     string           `json:"sensorId,omitempty"` // the sensor's id, when it has one
	State        string           `json:"state"`
	Severity     string           `json:"severity"`
	OpenedAt     string           `json:"openedAt"`
	FirstAt      string           `json:"firstAnomalyAt"`
	LastAt       string           `json:"lastAnomalyAt"`
	AnomalyCount int              `json:"anomalyCount"`
	PeakZScore   float64          `json:"peakZScore"`
	ClearedAt    *string          `json:"clearedAt"`
	Flapping     bool             `json:"flapping"`
	RulesVersion string           `json:"rulesVersion"`
	Acknowledged *Acknowledgement `json:"acknowledged"`
	// Cause is the check that opened it; Evidence that check's finding on the opening
	// reading.
	Cause    string   `json:"cause"`
	Evidence Evidence `json:"evidence"`
	// IncidentID names the machine's incident the alarm belongs to.
	IncidentID string `json:"incidentId"`
}

// Evidence is why an alarm opened: the statistic of the check, the limit it reached, and
// how many readings the statistic spans.
type Evidence struct {
	Statistic float64 `json:"statistic"`
	Limit     float64 `json:"limit"`
	Window    int     `json:"window"`
}

// Incident is a machine's incident on the wire: its alarms that opened close together.
type Incident struct {
	ID          string   `json:"id"`
	EquipmentID string   `json:"equipmentId"`
	OpenedAt    string   `json:"openedAt"`
	ClearedAt   *string  `json:"clearedAt"`
	Severity    string   `json:"severity"`
	Sensors     []Sensor `json:"sensors"`
	OpenAlarms  int      `json:"openAlarms"`
}

// Sensor names a sensor of an incident: its type, and its id when it has one.
type Sensor struct {
	SensorType string `json:"sensorType"`
	SensorID   string `json:"sensorId,omitempty"`
}

// NewIncident is inc on the wire.
func NewIncident(inc alarm.Incident) Incident {
	w := Incident{ID: inc.ID, EquipmentID: inc.EquipmentID, OpenedAt: Time(inc.OpenedAt), Severity: string(inc.Severity),
		Sensors: make([]Sensor, len(inc.Sensors)), OpenAlarms: inc.Open}
	for i, k := range inc.Sensors {
		w.Sensors[i] = Sensor{SensorType: string(k.Type), SensorID: k.Sensor}
	}
	if !inc.ClearedAt.IsZero() {
		s := Time(inc.ClearedAt)
		w.ClearedAt = &s
	}
	return w
}

// Acknowledgement is who acknowledged an alarm, when and why.
type Acknowledgement struct {
	By      string `json:"by"`
	Comment string `json:"comment"`
	At      string `json:"at"`
}

// Status is an equipment status change on the wire; Previous is null when no status was
// announced before.
type Status struct {
	EquipmentID string  `json:"equipmentId"`
	Previous    *string `json:"previous"`
	Status      string  `json:"status"`
	Reason      string  `json:"reason"`
}

// Anomaly is an anomalous reading on the wire, as GET /alerts/history writes it.
type Anomaly struct {
	ID          string  `json:"id"`
	ReadingID   string  `json:"readingId"`
	EquipmentID string  `json:"equipmentId"`
	SensorType  string  `json:"sensorType"`
	SensorID    string  `json:"sensorId,omitempty"`
	Value       float64 `json:"value"`
	ZScore      float64 `json:"zScore"`
	Mean        float64 `json:"mean"`
	StdDev      float64 `json:"stdDev"`
	WindowSize  int     `json:"windowSize"`
	Severity    string  `json:"severity"`
	Timestamp   string  `json:"timestamp"`
	DetectedAt  string  `json:"detectedAt"`
}

// TimeLayout is how the API writes every time: RFC 3339 in UTC, with milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Time writes t as the API does (TimeLayout).
func Time(t time.Time) string { return t.UTC().Format(TimeLayout) }

// NewAlarm is a on the wire.
func NewAlarm(a alarm.Alarm) Alarm {
	w := Alarm{ID: a.ID, EquipmentID: a.EquipmentID, SensorType: string(a.SensorType), SensorID: a.Sensor, State: string(a.State),
		Severity: string(a.Severity), OpenedAt: Time(a.OpenedAt), FirstAt: Time(a.FirstAt), LastAt: Time(a.LastAt),
		AnomalyCount: a.Count, PeakZScore: a.PeakZ, Flapping: a.Flapping, RulesVersion: a.RulesVersion,
		Cause: a.Cause.String(), Evidence: Evidence{Statistic: a.Evidence.Statistic, Limit: a.Evidence.Limit, Window: a.Evidence.Window},
		IncidentID: a.IncidentID}
	if w.IncidentID == "" { // an alarm from before incidents is its own
		w.IncidentID = a.ID
	}
	if !a.ClearedAt.IsZero() {
		s := Time(a.ClearedAt)
		w.ClearedAt = &s
	}
	if !a.AckAt.IsZero() {
		w.Acknowledged = &Acknowledgement{By: a.AckBy, Comment: a.AckComment, At: Time(a.AckAt)}
	}
	return w
}

// NewAnomaly is a on the wire.
func NewAnomaly(a anomaly.Anomaly) Anomaly {
	return Anomaly{ID: a.ID, ReadingID: a.ReadingID, EquipmentID: a.EquipmentID, SensorType: string(a.SensorType),
		SensorID: a.SensorID, Value: a.Value, ZScore: a.ZScore, Mean: a.Mean, StdDev: a.StdDev, WindowSize: a.WindowSize, Severity: string(a.Severity), Timestamp: Time(a.Timestamp),
		DetectedAt: Time(a.DetectedAt)}
}

// Encode writes e in its wire form.
func Encode(e event.Event) ([]byte, error) {
	var data any
	switch {
	case e.Alarm != nil:
		data = NewAlarm(*e.Alarm)
	case e.Status != nil:
		s := Status{EquipmentID: e.Status.EquipmentID, Status: string(e.Status.Status), Reason: e.Status.Reason}
		if e.Status.Previous != "" {
			p := string(e.Status.Previous)
			s.Previous = &p
		}
		data = s
	case e.Anomaly != nil:
		data = NewAnomaly(*e.Anomaly)
	case e.Incident != nil:
		data = NewIncident(*e.Incident)
	default:
		return nil, fmt.Errorf("event %s (%s) carries nothing", e.ID, e.Type)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	return json.Marshal(Envelope{ID: e.ID, Type: e.Type, At: Time(e.At), EquipmentID: e.EquipmentID, Data: raw})
}
