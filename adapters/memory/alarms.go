package memory

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// Alarms is the store's ports.AlarmRepository (the store's batch writes keep its alarms).
type Alarms struct{ s *Store }

var _ ports.AlarmRepository = (*Alarms)(nil)

// Alarms returns the store's alarm repository.
func (s *Store) Alarms() *Alarms { return &Alarms{s: s} }

// checkAlarms refuses a batch that would leave two open alarms on one sensor. Called with
// the lock held.
func (s *Store) checkAlarms(batch []alarm.Alarm) error {
	open := make(map[sensor.Key]string)
	for _, a := range s.alarms {
		if a.State.Open() {
			open[a.Key()] = a.ID
		}
	}
	for _, a := range batch {
		k := a.Key()
		if id, ok := open[k]; ok && id != a.ID && a.State.Open() {
			return fmt.Errorf("write alarm %s: %s/%s has alarm %s open: %w", a.ID, k.EquipmentID, k.ID(), id, ports.ErrConflict)
		}
		if a.State.Open() {
			open[k] = a.ID
		} else if open[k] == a.ID {
			delete(open, k)
		}
	}
	return nil
}

// writeAlarms inserts or updates the alarms: an update keeps the stored acknowledgement, and
// changes the state only to CLEARED. Called with the lock held.
func (s *Store) writeAlarms(batch []alarm.Alarm) error {
	for _, a := range batch {
		i := slices.IndexFunc(s.alarms, func(x alarm.Alarm) bool { return x.ID == a.ID })
		if i < 0 {
			s.alarms = append(s.alarms, a)
			continue
		}
		cur := s.alarms[i]
		if a.State != alarm.StateCleared {
			a.State = cur.State
		}
		a.AckBy, a.AckComment, a.AckAt = cur.AckBy, cur.AckComment, cur.AckAt
		s.alarms[i] = a
	}
	return nil
}

// Latest implements ports.AlarmRepository.
func (r *Alarms) Latest(_ context.Context, k sensor.Key, since time.Time) (*alarm.Alarm, []time.Time, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.Err != nil {
		return nil, nil, r.s.Err
	}
	var latest *alarm.Alarm
	var openings []time.Time
	for i, a := range r.s.alarms {
		if a.Key() != k {
			continue
		}
		if latest == nil || !a.OpenedAt.Before(latest.OpenedAt) {
			latest = &r.s.alarms[i]
		}
		if !a.OpenedAt.Before(since) {
			openings = append(openings, a.OpenedAt)
		}
	}
	slices.SortFunc(openings, func(a, b time.Time) int { return a.Compare(b) })
	if latest == nil {
		return nil, openings, nil
	}
	out := *latest
	return &out, openings, nil
}

// Get implements ports.AlarmRepository.
func (r *Alarms) Get(_ context.Context, id string) (alarm.Alarm, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.Err != nil {
		return alarm.Alarm{}, r.s.Err
	}
	for _, a := range r.s.alarms {
		if a.ID == id {
			return a, nil
		}
	}
	return alarm.Alarm{}, fmt.Errorf("alarm %s: %w", id, ports.ErrNotFound)
}

// Find implements ports.AlarmRepository.
func (r *Alarms) Find(_ context.Context, q ports.AlarmQuery) ([]alarm.Alarm, int64, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.Err != nil {
		return nil, 0, r.s.Err
	}
	var all []alarm.Alarm
	for _, a := range r.s.alarms {
		if (q.EquipmentID == "" || a.EquipmentID == q.EquipmentID) && (q.SensorType == "" || a.SensorType == q.SensorType) &&
			(q.SensorID == "" || sensor.Matches(a.SensorType, a.Sensor, q.SensorID)) &&
			(len(q.Severities) == 0 || slices.Contains(q.Severities, a.Severity)) &&
			(len(q.States) == 0 || slices.Contains(q.States, a.State)) &&
			(q.From.IsZero() || !a.OpenedAt.Before(q.From)) && (q.To.IsZero() || a.OpenedAt.Before(q.To)) {
			all = append(all, a)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if !a.OpenedAt.Equal(b.OpenedAt) {
			return a.OpenedAt.Before(b.OpenedAt) == q.Ascending
		}
		return (a.ID < b.ID) == q.Ascending
	})
	total := int64(len(all))
	lo := min(q.Offset, len(all))
	hi := min(lo+q.Limit, len(all))
	return all[lo:hi], total, nil
}

// Acknowledge implements ports.AlarmRepository.
func (r *Alarms) Acknowledge(_ context.Context, id, by, comment string, at time.Time, announce func(alarm.Alarm) event.Event) (alarm.Alarm, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.Err != nil {
		return alarm.Alarm{}, r.s.Err
	}
	for i, a := range r.s.alarms {
		if a.ID != id {
			continue
		}
		if a.State != alarm.StateActive {
			return alarm.Alarm{}, fmt.Errorf("acknowledge alarm %s: it is %s: %w", id, a.State, ports.ErrConflict)
		}
		a.State, a.AckBy, a.AckComment, a.AckAt = alarm.StateAcknowledged, by, comment, at
		var events []encodedEvent
		if announce != nil {
			var err error
			if events, err = encodeEvents([]event.Event{announce(a)}); err != nil {
				return alarm.Alarm{}, fmt.Errorf("acknowledge alarm %s: %w", id, err)
			}
		}
		r.s.alarms[i] = a
		r.s.outbox.enqueue(events)
		return a, nil
	}
	return alarm.Alarm{}, fmt.Errorf("acknowledge alarm %s: %w", id, ports.ErrNotFound)
}

// AnyOpen implements ports.AlarmRepository.
func (r *Alarms) AnyOpen(_ context.Context, equipmentID string) (bool, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.Err != nil {
		return false, r.s.Err
	}
	for _, a := range r.s.alarms {
		if a.EquipmentID == equipmentID && a.State.Open() {
			return true, nil
		}
	}
	return false, nil
}

// Stats implements ports.AlarmRepository.
func (r *Alarms) Stats(_ context.Context, scope ports.SensorScope, from, to time.Time) (ports.AlarmStats, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.Err != nil {
		return ports.AlarmStats{}, r.s.Err
	}
	st := ports.AlarmStats{BySeverity: map[anomaly.Severity]int64{}}
	for _, a := range r.s.alarms {
		if !scope.Selects(a.EquipmentID, a.SensorType, a.Sensor) || a.OpenedAt.Before(from) || !a.OpenedAt.Before(to) {
			continue
		}
		st.BySeverity[a.Severity]++
		if !a.AckAt.IsZero() {
			st.Acknowledged++
			st.TimeToAckTotal += a.AckAt.Sub(a.OpenedAt)
		}
		if !a.ClearedAt.IsZero() {
			st.Cleared++
			st.TimeToClearTotal += a.ClearedAt.Sub(a.OpenedAt)
		}
	}
	return st, nil
}

// OpenEquipment implements ports.AlarmRepository.
func (r *Alarms) OpenEquipment(context.Context) (map[string]bool, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.Err != nil {
		return nil, r.s.Err
	}
	out := make(map[string]bool)
	for _, a := range r.s.alarms {
		if a.State.Open() {
			out[a.EquipmentID] = true
		}
	}
	return out, nil
}
