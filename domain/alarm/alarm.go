// Package alarm turns the verdicts on a sensor's readings into alarms: one episode per
// incident rather than one line per anomalous reading. An alarm opens on anomalous readings
// (optionally only when k of the last m are), gathers the anomalous readings that follow,
// escalates its severity, and clears once the readings have stayed calm for a while. A
// sensor whose alarms keep opening and clearing is flapping, and its new openings are held
// back until it settles.
package alarm

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// State is where an alarm is in its life.
type State string

// The states. ACTIVE → ACKNOWLEDGED (by someone) → CLEARED (by the readings); an alarm may
// also clear without being acknowledged.
const (
	StateActive       State = "ACTIVE"
	StateAcknowledged State = "ACKNOWLEDGED"
	StateCleared      State = "CLEARED"
)

// ParseState reads a state as the API writes it.
func ParseState(s string) (State, error) {
	switch st := State(s); st {
	case StateActive, StateAcknowledged, StateCleared:
		return st, nil
	}
	return "", fmt.Errorf("unknown alarm state %q", s)
}

// Open reports whether an alarm in this state is still open (not cleared).
func (s State) Open() bool { return s == StateActive || s == StateAcknowledged }

// Rules set when alarms open and clear.
type Rules struct {
	// DebounceK of the last DebounceM readings must be anomalous for an alarm to open
	// (1 of 1: every anomalous reading may open one)...
	DebounceK, DebounceM int
	// DebounceZ is the |z| from which an anomalous reading counts toward the debounce
	// (0: every anomalous reading counts).
	DebounceZ float64
	// ...unless the reading's |z| is at least OpenAtZ, which opens one at once (0: never).
	OpenAtZ float64
	// ClearBelow is the |z| under which a reading counts as calm (hysteresis: between it and
	// the anomaly threshold an open alarm neither grows nor clears).
	ClearBelow float64
	// ClearAfter calm readings in a row clear an open alarm.
	ClearAfter int
	// ClearAfterTime, when positive, also clears an alarm once no reading at or above
	// ClearBelow has come for that long (checked as readings arrive).
	ClearAfterTime time.Duration
	// A sensor whose alarms opened FlapCount times within FlapWindow is flapping: further
	// openings are held back (and the latest alarm marked) until fewer than FlapCount
	// openings fall within the window. Breaches of hard limits are not held back.
	FlapCount  int
	FlapWindow time.Duration
}

// DefaultRules: open when 3 of the last 5 readings are anomalous, or at once on a reading
// 10 deviations out; clear after 10 readings in a row below |z| 2; flapping beyond 5
// openings within 30 minutes. On heavy-tailed noise (Student-t, 5 degrees of freedom) this
// opens about one alarm for every 150 anomalous readings.
var DefaultRules = Rules{DebounceK: 3, DebounceM: 5, DebounceZ: 5, OpenAtZ: 20, ClearBelow: 2, ClearAfter: 10,
	FlapCount: 5, FlapWindow: 30 * time.Minute}

// ErrBadRules is wrapped by Rules.Validate.
var ErrBadRules = errors.New("bad alarm rules")

// Validate checks the rules.
func (r Rules) Validate() error {
	switch {
	case r.DebounceM < 1 || r.DebounceM > 64 || r.DebounceK < 1 || r.DebounceK > r.DebounceM:
		return fmt.Errorf("%w: debounce needs 1 <= k <= m <= 64", ErrBadRules)
	case !(r.ClearBelow > 0) || math.IsInf(r.ClearBelow, 0):
		return fmt.Errorf("%w: the clear threshold must be a positive number", ErrBadRules)
	case r.ClearAfter < 1:
		return fmt.Errorf("%w: clearing needs at least 1 calm reading", ErrBadRules)
	case r.ClearAfterTime < 0:
		return fmt.Errorf("%w: the clear time must not be negative", ErrBadRules)
	case r.DebounceZ < 0 || math.IsNaN(r.DebounceZ) || math.IsInf(r.DebounceZ, 0):
		return fmt.Errorf("%w: the debounce |z| must be a number, 0 for the anomaly band", ErrBadRules)
	case r.OpenAtZ < 0 || math.IsNaN(r.OpenAtZ) || math.IsInf(r.OpenAtZ, 0):
		return fmt.Errorf("%w: the |z| that opens at once must be a number, 0 for none", ErrBadRules)
	case r.FlapCount < 2 || r.FlapWindow <= 0:
		return fmt.Errorf("%w: flapping needs a count of at least 2 and a positive window", ErrBadRules)
	}
	return nil
}

// Alarm is one episode of a sensor's anomalies.
type Alarm struct {
	ID          string
	EquipmentID string
	SensorType  sensor.Type
	Sensor      string // the sensor's id within its equipment; empty: the sensor is its type
	State       State
	Severity    anomaly.Severity // the highest of its readings: it only escalates
	OpenedAt    time.Time        // when the reading that opened it was taken
	FirstAt     time.Time        // the first anomalous reading (the one that opened it)
	LastAt      time.Time        // the latest anomalous reading
	Count       int              // anomalous readings in the episode
	PeakZ       float64          // the largest |z| of the episode
	ClearedAt   time.Time        // zero while open
	AckBy       string
	AckComment  string
	AckAt       time.Time // zero until acknowledged
	Flapping    bool
	// RulesVersion names the rules it was opened under (a hash of them).
	RulesVersion string
	// Cause is the check that opened it: the z-score (anomalous readings), or a check
	// beyond it; Evidence is that check's finding on the opening reading (for the z-score,
	// the reading's |z| against the band that makes a reading anomalous).
	Cause    anomaly.Check
	Evidence anomaly.Finding
	// IncidentID names the incident of its machine it belongs to (see Incident).
	IncidentID string
	// Calm is how many calm readings in a row came last; CalmSince when the last reading at
	// or above the clear threshold came. They are kept with the alarm so that a restart
	// does not restart the count.
	Calm      int
	CalmSince time.Time
}

// Key is the sensor the alarm is about.
func (a Alarm) Key() sensor.Key {
	return sensor.Key{EquipmentID: a.EquipmentID, Type: a.SensorType, Sensor: a.Sensor}
}

// Event is what an observation did to the sensor's alarms.
type Event int

// The events. Zero is nothing.
const (
	Nothing Event = iota
	Opened
	Escalated // still open, with a higher severity
	Grew      // still open, one more anomalous reading (or calmer, or less calm)
	Cleared
	HeldBack // an opening held back because the sensor is flapping
)

// Observation is one judged reading of the tracked sensor.
type Observation struct {
	At        time.Time // when the reading was taken
	ZScore    float64   // 0 when it was not judged
	Anomalous bool
	Severity  anomaly.Severity
	// Beyond says the value is outside its type's hard limits: it opens an alarm at once,
	// whatever the debounce, and is never held back for flapping.
	Beyond bool
	// Quiet holds back openings (the equipment is under maintenance); an alarm already
	// open still grows and clears.
	Quiet bool
	// Finding is a check beyond the z-score that fired on the reading: it opens an alarm
	// (debounce does not apply: each check has its own window), and keeps an open one from
	// clearing.
	Finding anomaly.Finding
	// Band is the |z| from which a reading is anomalous, for the evidence of an alarm the
	// z-score opened.
	Band float64
	// WindowSize is how many readings the reading was compared with.
	WindowSize int
}

// Tracker follows the alarms of one sensor. It is not safe for concurrent use.
type Tracker struct {
	rules   Rules
	version string
	key     sensor.Key
	recent  uint64 // the last DebounceM verdicts, one bit each, newest lowest
	seen    int    // verdicts in recent, up to DebounceM
	open    *Alarm // the open alarm, if any
	last    *Alarm // the latest alarm, open or cleared, if any
	// openings are when the alarms of the last FlapWindow opened (held-back attempts are
	// not counted, so a hold lasts at most FlapWindow).
	openings []time.Time
}

// NewTracker starts tracking key under rules (which must be valid), named version.
func NewTracker(key sensor.Key, rules Rules, version string) *Tracker {
	return &Tracker{rules: rules, version: version, key: key}
}

// Restore sets what the tracker knew before a restart: the latest alarm (open or not, or
// nil), the anomalous flags of the latest readings (oldest first), and when the alarms of
// the flapping window opened.
func (t *Tracker) Restore(latest *Alarm, flags []bool, openings []time.Time) {
	if latest != nil {
		a := *latest
		t.last = &a
		if a.State.Open() {
			t.open = t.last
		}
	}
	for _, f := range flags {
		t.push(f)
	}
	t.openings = append(t.openings[:0], openings...)
}

// Open returns the open alarm, if any.
func (t *Tracker) Open() (Alarm, bool) {
	if t.open == nil {
		return Alarm{}, false
	}
	return *t.open, true
}

func (t *Tracker) push(anomalous bool) {
	t.recent <<= 1
	if anomalous {
		t.recent |= 1
	}
	t.recent &= 1<<t.rules.DebounceM - 1
	t.seen = min(t.seen+1, t.rules.DebounceM)
}

func (t *Tracker) debounced() bool {
	n := 0
	for r := t.recent; r != 0; r &= r - 1 {
		n++
	}
	return n >= t.rules.DebounceK
}

// Observe folds one reading in. It returns what happened, and the alarm as it now stands
// when the event changed one (to be stored).
func (t *Tracker) Observe(o Observation, newID func() string) (Event, Alarm) {
	z := math.Abs(o.ZScore)
	t.push(o.Anomalous && (z >= t.rules.DebounceZ || o.Beyond))
	if a := t.open; a != nil {
		switch {
		case o.Anomalous:
			a.Count++
			a.LastAt = o.At
			a.PeakZ = math.Max(a.PeakZ, z)
			a.Calm, a.CalmSince = 0, o.At
			if o.Severity.Rank() > a.Severity.Rank() {
				a.Severity = o.Severity
				return Escalated, *a
			}
			return Grew, *a
		case z >= t.rules.ClearBelow || o.Finding.Fired():
			a.Calm, a.CalmSince = 0, o.At
			return Grew, *a
		}
		a.Calm++
		if a.CalmSince.IsZero() {
			a.CalmSince = o.At
		}
		if a.Calm >= t.rules.ClearAfter ||
			(t.rules.ClearAfterTime > 0 && o.At.Sub(a.CalmSince) >= t.rules.ClearAfterTime) {
			a.State, a.ClearedAt = StateCleared, o.At
			t.open = nil
			return Cleared, *a
		}
		return Grew, *a
	}
	at := o.Beyond || (t.rules.OpenAtZ > 0 && z >= t.rules.OpenAtZ)
	byZ := o.Anomalous && (at || t.debounced())
	if o.Quiet || (!byZ && !o.Finding.Fired()) {
		return Nothing, Alarm{}
	}
	cutoff := o.At.Add(-t.rules.FlapWindow)
	kept := t.openings[:0]
	for _, at := range t.openings {
		if at.After(cutoff) {
			kept = append(kept, at)
		}
	}
	t.openings = kept
	if len(t.openings) >= t.rules.FlapCount && !o.Beyond { // a breach of a hard limit is never held back
		if t.last != nil && !t.last.Flapping {
			t.last.Flapping = true
			return HeldBack, *t.last
		}
		return HeldBack, Alarm{}
	}
	t.openings = append(t.openings, o.At)
	sev, cause := o.Severity, o.Finding
	if byZ {
		cause = anomaly.Finding{Check: anomaly.CheckZScore, Statistic: z, Limit: o.Band, Window: o.WindowSize}
	} else if !o.Anomalous {
		sev = anomaly.SeverityLow
	}
	a := &Alarm{ID: newID(), EquipmentID: t.key.EquipmentID, SensorType: t.key.Type, Sensor: t.key.Sensor, State: StateActive,
		Severity: sev, OpenedAt: o.At, FirstAt: o.At, LastAt: o.At, Count: 1, PeakZ: z,
		RulesVersion: t.version, CalmSince: o.At, Cause: cause.Check, Evidence: cause}
	t.open, t.last = a, a
	return Opened, *a
}

// JoinIncident records the incident the open alarm belongs to, so that every later version
// of it carries it.
func (t *Tracker) JoinIncident(id string) {
	if t.open != nil {
		t.open.IncidentID = id
	}
}

// Latest keeps the last version of each alarm of a list of writes (in the order they were
// made), the cleared ones first: written in that order, an alarm that cleared leaves its
// sensor free before the next one of the sensor opens.
func Latest(writes []Alarm) []Alarm {
	last := make(map[string]int, len(writes))
	for i, a := range writes {
		last[a.ID] = i
	}
	out := make([]Alarm, 0, len(last))
	for _, cleared := range []bool{true, false} {
		for i, a := range writes {
			if last[a.ID] == i && (a.State == StateCleared) == cleared {
				out = append(out, a)
			}
		}
	}
	return out
}
