package alarm

import (
	"time"

	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// Incident is the alarms of one machine that opened close together: an alarm that opens on
// a machine while another of its alarms is open joins that alarm's incident; one that opens
// when none is open starts a new one, named by its own id. The incident closes when the last
// of its alarms clears. Each alarm keeps its own lifecycle; the incident is what is
// announced once (one notification, one line for an operator).
type Incident struct {
	ID          string
	EquipmentID string
	OpenedAt    time.Time        // when its first alarm opened
	ClearedAt   time.Time        // when its last alarm cleared; zero while open
	Severity    anomaly.Severity // the highest of its alarms when they opened
	// Sensors are the sensors its alarms opened on, in the order they joined, each once.
	Sensors []sensor.Key
	// Open counts its alarms still open.
	Open int
}

// Incidents follows the incidents of one machine. It is not safe for concurrent use.
type Incidents struct {
	open  map[string]*Incident // by id, the incidents with an alarm open
	alarm map[string]string    // open alarm id → its incident
	last  *Incident            // the latest incident opened, while open
}

// NewIncidents starts following a machine's incidents from its open alarms (as stored: each
// with its incident, or none for an alarm from before incidents, which then is its own).
func NewIncidents(open []Alarm) *Incidents {
	m := &Incidents{open: map[string]*Incident{}, alarm: map[string]string{}}
	for _, a := range open {
		if !a.State.Open() {
			continue
		}
		id := a.IncidentID
		if id == "" {
			id = a.ID
		}
		inc, ok := m.open[id]
		if !ok {
			inc = &Incident{ID: id, EquipmentID: a.EquipmentID, OpenedAt: a.OpenedAt}
			m.open[id] = inc
		}
		inc.join(a)
		m.alarm[a.ID] = id
		if m.last == nil || inc.OpenedAt.After(m.last.OpenedAt) {
			m.last = inc
		}
	}
	return m
}

func (inc *Incident) join(a Alarm) {
	inc.Open++
	if a.Severity.Rank() > inc.Severity.Rank() {
		inc.Severity = a.Severity
	}
	if a.OpenedAt.Before(inc.OpenedAt) {
		inc.OpenedAt = a.OpenedAt
	}
	k := a.Key()
	for _, s := range inc.Sensors {
		if s == k {
			return
		}
	}
	inc.Sensors = append(inc.Sensors, k)
}

// Opened places an alarm that has just opened in its incident, which it returns (a copy),
// with whether the alarm started it. The alarm's IncidentID is the incident's id.
func (m *Incidents) Opened(a Alarm) (Incident, bool) {
	if id, ok := m.alarm[a.ID]; ok { // already placed (a retried batch)
		return m.copyOf(m.open[id]), false
	}
	inc, isNew := m.last, false
	if inc == nil || inc.Open == 0 {
		inc = &Incident{ID: a.ID, EquipmentID: a.EquipmentID, OpenedAt: a.OpenedAt}
		m.open[inc.ID], m.last, isNew = inc, inc, true
	}
	inc.join(a)
	m.alarm[a.ID] = inc.ID
	return m.copyOf(inc), isNew
}

// Cleared records the clearing of an alarm it placed, and returns its incident (a copy)
// with whether that was the incident's last open alarm; false for an alarm it does not know.
func (m *Incidents) Cleared(a Alarm) (Incident, bool) {
	id, ok := m.alarm[a.ID]
	if !ok {
		return Incident{}, false
	}
	delete(m.alarm, a.ID)
	inc := m.open[id]
	inc.Open--
	if inc.Open > 0 {
		return m.copyOf(inc), false
	}
	inc.ClearedAt = a.ClearedAt
	delete(m.open, id)
	if m.last == inc {
		m.last = nil
	}
	return m.copyOf(inc), true
}

func (m *Incidents) copyOf(inc *Incident) Incident {
	c := *inc
	c.Sensors = append([]sensor.Key(nil), inc.Sensors...)
	return c
}
