// Package rules holds the rules each sensor type is judged by: the detector's window and
// severity bands, absolute hard limits, and when alarms open and clear. A Set is named by a
// version, a hash of its content, which every alarm records.
package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// Limits are the values a sensor type can physically or safely take: a reading outside
// [Min, Max] is a CRITICAL anomaly whatever its z-score. A nil bound is no bound.
type Limits struct {
	Min, Max *float64
}

// Outside reports whether v is beyond a bound.
func (l Limits) Outside(v float64) bool {
	return (l.Min != nil && v < *l.Min) || (l.Max != nil && v > *l.Max)
}

// Rules are the rules of one sensor type.
type Rules struct {
	// Unit is the unit of a type declared beyond the contract's four (empty for those).
	Unit     string `json:",omitempty"`
	Detector anomaly.Config
	Limits   Limits
	Alarm    alarm.Rules
}

// Validate checks the rules of one type.
func (r Rules) Validate() error {
	if err := r.Detector.Validate(); err != nil {
		return err
	}
	if err := r.Alarm.Validate(); err != nil {
		return err
	}
	for _, b := range []*float64{r.Limits.Min, r.Limits.Max} {
		if b != nil && (math.IsNaN(*b) || math.IsInf(*b, 0)) {
			return errors.New("a limit must be a finite number")
		}
	}
	if r.Limits.Min != nil && r.Limits.Max != nil && *r.Limits.Min >= *r.Limits.Max {
		return errors.New("the lower limit must be below the upper one")
	}
	return nil
}

// Set is the rules of every sensor type, and of the machines whose rules differ.
type Set struct {
	byType map[sensor.Type]Rules
	// byMachine holds, for the machines that override some rules, every type's rules on
	// that machine.
	byMachine map[string]map[sensor.Type]Rules
	// fallback judges a type the set does not know (see For).
	fallback Rules
	version  string
}

// ErrInvalid is wrapped by NewSet's errors.
var ErrInvalid = errors.New("invalid rules")

// NewSet validates the rules of each sensor type and names the set. The contract's four types
// must all be given; others are types the set declares, each with a valid name and a unit.
func NewSet(byType map[sensor.Type]Rules) (Set, error) {
	s := Set{byType: make(map[sensor.Type]Rules, len(byType))}
	for _, t := range sensor.Types {
		r, ok := byType[t]
		if !ok {
			return Set{}, fmt.Errorf("%w: no rules for %s", ErrInvalid, t)
		}
		if err := r.Validate(); err != nil {
			return Set{}, fmt.Errorf("%w: %s: %w", ErrInvalid, t, err)
		}
		s.byType[t] = r
	}
	for t, r := range byType {
		if _, ok := s.byType[t]; ok {
			continue
		}
		if !sensor.ValidTypeName(string(t)) {
			return Set{}, fmt.Errorf("%w: %q is not a sensor type name (%s)", ErrInvalid, t, sensor.TypeNameRule)
		}
		if r.Unit == "" || len(r.Unit) > sensor.MaxUnitLen {
			return Set{}, fmt.Errorf("%w: %s: a declared type needs a unit of 1 to %d characters", ErrInvalid, t, sensor.MaxUnitLen)
		}
		if err := r.Validate(); err != nil {
			return Set{}, fmt.Errorf("%w: %s: %w", ErrInvalid, t, err)
		}
		s.byType[t] = r
	}
	s.fallback = s.byType[sensor.Temperature]
	s.fallback.Limits, s.fallback.Unit = Limits{}, ""
	s.version = s.hash()
	return s, nil
}

// WithFallback returns the set judging a type it does not know by r, rather than by the
// rules of temperature without their hard limits.
func (s Set) WithFallback(r Rules) (Set, error) {
	if err := r.Validate(); err != nil {
		return Set{}, fmt.Errorf("%w: fallback: %w", ErrInvalid, err)
	}
	r.Limits, r.Unit = Limits{}, ""
	s.fallback = r
	return s, nil
}

// Uniform is the set that gives every sensor type the same rules.
func Uniform(r Rules) (Set, error) {
	m := make(map[sensor.Type]Rules, len(sensor.Types))
	for _, t := range sensor.Types {
		m[t] = r
	}
	s, err := NewSet(m)
	if err != nil {
		return Set{}, err
	}
	return s.WithFallback(r)
}

// WithMachines returns the set with the rules of some machines overridden: for each
// equipment id, the rules of each type on that machine (a type left out keeps the set's
// rules). Every rule is validated; the version covers them.
func (s Set) WithMachines(machines map[string]map[sensor.Type]Rules) (Set, error) {
	out := Set{byType: s.byType, byMachine: make(map[string]map[sensor.Type]Rules, len(machines)), fallback: s.fallback}
	for id, types := range machines {
		if !sensor.ValidEquipmentID(id) {
			return Set{}, fmt.Errorf("%w: %q is not an equipment id", ErrInvalid, id)
		}
		m := make(map[sensor.Type]Rules, len(s.byType))
		for t, r := range s.byType {
			m[t] = r
		}
		for t, r := range types {
			base, ok := s.byType[t]
			if !ok {
				return Set{}, fmt.Errorf("%w: machine %s: unknown sensor type %q", ErrInvalid, id, t)
			}
			r.Unit = base.Unit // a machine does not rename a type's unit
			if err := r.Validate(); err != nil {
				return Set{}, fmt.Errorf("%w: machine %s: %s: %w", ErrInvalid, id, t, err)
			}
			m[t] = r
		}
		out.byMachine[id] = m
	}
	out.version = out.hash()
	return out, nil
}

// ForSensor returns the rules of type t on equipment: the machine's own when it overrides
// them, else the type's.
func (s Set) ForSensor(equipmentID string, t sensor.Type) Rules {
	if r, ok := s.byMachine[equipmentID][t]; ok {
		return r
	}
	return s.For(t)
}

// Overrides reports whether the set overrides the rules of equipment.
func (s Set) Overrides(equipmentID string) bool {
	_, ok := s.byMachine[equipmentID]
	return ok
}

// Machines lists the machines whose rules the set overrides, by id.
func (s Set) Machines() []string {
	ids := make([]string, 0, len(s.byMachine))
	for id := range s.byMachine {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Knows reports whether t is one of the set's types: the contract's four or a declared one.
func (s Set) Knows(t sensor.Type) bool {
	_, ok := s.byType[t]
	return ok
}

// Types lists the set's types: the contract's four, then the declared ones by name.
func (s Set) Types() []sensor.Type {
	out := append([]sensor.Type(nil), sensor.Types...)
	var extra []string
	for t := range s.byType {
		if _, err := sensor.ParseType(string(t)); err != nil {
			extra = append(extra, string(t))
		}
	}
	sort.Strings(extra)
	for _, t := range extra {
		out = append(out, sensor.Type(t))
	}
	return out
}

// For returns the rules of type t. A type the set does not know, a reading queued by a process
// whose rules file declares it, say, gets the fallback: the defaults without hard limits.
func (s Set) For(t sensor.Type) Rules {
	if r, ok := s.byType[t]; ok {
		return r
	}
	return s.fallback
}

// Version is a short hash of the rules: two sets with the same rules have the same version.
func (s Set) Version() string { return s.version }

// MaxWindow is the largest detector window of any type, on any machine.
func (s Set) MaxWindow() int {
	n := 0
	for _, r := range s.byType {
		n = max(n, r.Detector.WindowSize)
	}
	for _, m := range s.byMachine {
		for _, r := range m {
			n = max(n, r.Detector.WindowSize)
		}
	}
	return n
}

func (s Set) hash() string {
	types := make([]string, 0, len(s.byType))
	for t := range s.byType {
		types = append(types, string(t))
	}
	sort.Strings(types)
	h := sha256.New()
	write := func(prefix string, t string, r Rules) {
		raw, err := json.Marshal(r) // maps and floats marshal deterministically
		if err != nil {
			panic(err) // only numbers, strings and durations: cannot fail
		}
		fmt.Fprintf(h, "%s%s=%s\n", prefix, t, raw)
	}
	for _, t := range types {
		write("", t, s.byType[sensor.Type(t)])
	}
	// A machine whose rules are all the types' changes nothing, and leaves the version alone.
	for _, id := range s.Machines() {
		for _, t := range types {
			if r := s.byMachine[id][sensor.Type(t)]; !reflect.DeepEqual(r, s.byType[sensor.Type(t)]) {
				write("machine "+id+" ", t, r)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Judge applies the hard limits to the detector's verdict on value: outside them the reading
// is a CRITICAL anomaly, judged or not.
func (r Rules) Judge(v anomaly.Verdict, value float64) anomaly.Verdict {
	if r.Limits.Outside(value) {
		v.Anomalous, v.Severity = true, anomaly.SeverityCritical
	}
	return v
}

// Observation is what a sensor's alarm tracker is told of a reading of value, taken at at,
// that the detector judged v (before the hard limits: Observation applies them).
func (r Rules) Observation(v anomaly.Verdict, value float64, at time.Time) alarm.Observation {
	v = r.Judge(v, value)
	return alarm.Observation{At: at, ZScore: v.ZScore, Anomalous: v.Anomalous, Severity: v.Severity,
		Beyond: r.Limits.Outside(value), Finding: v.Finding, Band: r.Detector.Bands.Low,
		WindowSize: v.WindowSize}
}
