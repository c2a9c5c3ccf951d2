// Package event names what the service tells the world as it happens: alarm transitions,
// equipment status changes and (for those who ask) anomalous readings. Events feed the live
// stream (GET /stream) and the outbound notifications (subscriptions).
package event

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
)

// Type is the kind of an event. Its value is the wire form.
type Type string

// The event types.
const (
	AlarmOpened       Type = "alarm.opened"
	AlarmEscalated    Type = "alarm.escalated"
	AlarmAcknowledged Type = "alarm.acknowledged"
	AlarmCleared      Type = "alarm.cleared"
	StatusChanged     Type = "equipment.status_changed"
	// IncidentOpened and IncidentCleared are a machine's incident (its alarms that opened
	// close together) starting and ending: one of each an incident, however many sensors
	// it takes in.
	IncidentOpened  Type = "incident.opened"
	IncidentCleared Type = "incident.cleared"
	// AnomalyDetected is one anomalous reading: high volume, so the stream sends it only to
	// those who ask for it, and it is never notified.
	AnomalyDetected Type = "anomaly"
)

// Types lists every type, in the order the documentation gives them.
var Types = []Type{AlarmOpened, AlarmEscalated, AlarmAcknowledged, AlarmCleared, StatusChanged, IncidentOpened,
	IncidentCleared, AnomalyDetected}

// Transitions are the types that state transitions make: those a subscription may ask for,
// and those the stream sends when no type is asked for.
var Transitions = []Type{AlarmOpened, AlarmEscalated, AlarmAcknowledged, AlarmCleared, StatusChanged,
	IncidentOpened, IncidentCleared}

// Transition reports whether t is a state transition (everything but an anomalous reading).
func (t Type) Transition() bool {
	for _, x := range Transitions {
		if x == t {
			return true
		}
	}
	return false
}

// ParseType reads one type as the API writes it.
func ParseType(s string) (Type, error) {
	for _, t := range Types {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown event type %q", s)
}

// Event is one thing that happened. Exactly one of Alarm, Status, Incident and Anomaly is
// set, as its Type says.
type Event struct {
	// ID is unique to the event: a receiver that gets it twice (a retried delivery) can
	// tell.
	ID          string
	Type        Type
	At          time.Time // when it happened
	EquipmentID string

	Alarm    *alarm.Alarm     // the alarm after the transition (alarm.* types)
	Status   *StatusChange    // equipment.status_changed
	Anomaly  *anomaly.Anomaly // anomaly
	Incident *alarm.Incident  // incident.* types
}

// StatusChange is an equipment's status moving from Previous ("" when none was announced
// before) to Status, for Reason.
type StatusChange struct {
	EquipmentID string
	Previous    equipment.Status
	Status      equipment.Status
	Reason      string
}

// ForAlarm is the event of an alarm transition, or false for a change that is not one (an
// alarm that only grew, or an opening held back).
func ForAlarm(id string, ev alarm.Event, a alarm.Alarm, at time.Time) (Event, bool) {
	var t Type
	switch ev {
	case alarm.Opened:
		t = AlarmOpened
	case alarm.Escalated:
		t = AlarmEscalated
	case alarm.Cleared:
		t = AlarmCleared
	default:
		return Event{}, false
	}
	return Event{ID: id, Type: t, At: at, EquipmentID: a.EquipmentID, Alarm: &a}, true
}

// Acknowledged is the event of an alarm's acknowledgement; a is the alarm acknowledged.
func Acknowledged(id string, a alarm.Alarm) Event {
	return Event{ID: id, Type: AlarmAcknowledged, At: a.AckAt, EquipmentID: a.EquipmentID, Alarm: &a}
}

// ForIncident is the event of an incident opening or clearing (t is IncidentOpened or
// IncidentCleared).
func ForIncident(id string, t Type, inc alarm.Incident, at time.Time) Event {
	return Event{ID: id, Type: t, At: at, EquipmentID: inc.EquipmentID, Incident: &inc}
}

// ForStatus is the event of a status change.
func ForStatus(id string, c StatusChange, at time.Time) Event {
	return Event{ID: id, Type: StatusChanged, At: at, EquipmentID: c.EquipmentID, Status: &c}
}

// ForAnomaly is the event of an anomalous reading.
func ForAnomaly(id string, a anomaly.Anomaly) Event {
	return Event{ID: id, Type: AnomalyDetected, At: a.DetectedAt, EquipmentID: a.EquipmentID, Anomaly: &a}
}

// Cursor is a position in the event stream: events are ordered by it. Its text form is
// "<ms>-<seq>" (as Redis writes stream ids), which SSE clients send back as Last-Event-ID.
type Cursor struct {
	Ms, Seq uint64
}

// String writes the cursor in its text form.
func (c Cursor) String() string {
	return strconv.FormatUint(c.Ms, 10) + "-" + strconv.FormatUint(c.Seq, 10)
}

// Less orders cursors.
func (c Cursor) Less(d Cursor) bool { return c.Ms < d.Ms || (c.Ms == d.Ms && c.Seq < d.Seq) }

// IsZero reports whether c is the start of the stream.
func (c Cursor) IsZero() bool { return c == Cursor{} }

// ParseCursor reads a cursor's text form.
func ParseCursor(s string) (Cursor, error) {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok {
		return Cursor{}, fmt.Errorf("event id %q is not of the form <ms>-<seq>", s)
	}
	m, err1 := strconv.ParseUint(ms, 10, 64)
	q, err2 := strconv.ParseUint(seq, 10, 64)
	if err1 != nil || err2 != nil {
		return Cursor{}, fmt.Errorf("event id %q is not of the form <ms>-<seq>", s)
	}
	return Cursor{Ms: m, Seq: q}, nil
}
