// Package query holds the use cases that read state.
package query

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// EquipmentView is an equipment with its status now.
type EquipmentView struct {
	equipment.Equipment
	Status equipment.Status
	// Maintenance is the equipment's maintenance window when one is under way or ahead
	// (nil otherwise: none, or one that has ended).
	Maintenance *equipment.Maintenance
}

// EquipmentHandler lists equipment and fetches one.
type EquipmentHandler struct {
	repo        ports.EquipmentRepository
	alarms      ports.AlarmRepository       // may be nil
	maintenance ports.MaintenanceRepository // may be nil
	clock       ports.Clock
	rules       equipment.Rules
}

// WithAlarms makes equipment with an open alarm ANOMALY while it is online.
func (h *EquipmentHandler) WithAlarms(a ports.AlarmRepository) *EquipmentHandler {
	h.alarms = a
	return h
}

// WithMaintenance makes equipment MAINTENANCE while a maintenance window covers now, and
// shows the window until it ends.
func (h *EquipmentHandler) WithMaintenance(m ports.MaintenanceRepository) *EquipmentHandler {
	h.maintenance = m
	return h
}

// statusOf is the status of e now, by precedence: MAINTENANCE while its window m (nil when
// none) covers now; else the rules' verdict (OFFLINE, ANOMALY, ONLINE), with ANOMALY also
// while online with an open alarm.
func statusOf(ctx context.Context, alarms ports.AlarmRepository, rules equipment.Rules, id string, m *equipment.Maintenance,
	lastSeen, lastAnomaly, now time.Time) (equipment.Status, error) {
	return statusWith(rules, m, lastSeen, lastAnomaly, now, func() (bool, error) {
		open, err := alarms.AnyOpen(ctx, id)
		if err != nil {
			return false, fmt.Errorf("open alarms of %s: %w", id, err)
		}
		return open, nil
	}, alarms != nil)
}

// statusWith is statusOf with the open-alarm check given: asked only for equipment online.
func statusWith(rules equipment.Rules, m *equipment.Maintenance, lastSeen, lastAnomaly, now time.Time,
	alarmOpen func() (bool, error), withAlarms bool) (equipment.Status, error) {
	st := rules.StatusWith(m, lastSeen, lastAnomaly, now)
	if st != equipment.StatusOnline || !withAlarms {
		return st, nil
	}
	open, err := alarmOpen()
	if err != nil {
		return "", err
	}
	if open {
		return equipment.StatusAnomaly, nil
	}
	return st, nil
}

// maintenanceOf returns the equipment's window when one is under way or ahead at now, and
// nil otherwise (or when repo is nil).
func maintenanceOf(ctx context.Context, repo ports.MaintenanceRepository, id string, now time.Time) (*equipment.Maintenance, error) {
	if repo == nil {
		return nil, nil
	}
	m, err := repo.Get(ctx, id)
	switch {
	case errors.Is(err, ports.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("maintenance of %s: %w", id, err)
	case m.EndedBy(now):
		return nil, nil
	}
	return &m, nil
}

// NewEquipmentHandler builds the handler.
func NewEquipmentHandler(repo ports.EquipmentRepository, c ports.Clock, rules equipment.Rules) *EquipmentHandler {
	return &EquipmentHandler{repo: repo, clock: c, rules: rules}
}

// List returns every equipment, sorted by id.
func (h *EquipmentHandler) List(ctx context.Context) ([]EquipmentView, error) {
	all, err := h.repo.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list equipment: %w", err)
	}
	now := h.clock.Now()
	var windows map[string]equipment.Maintenance
	if h.maintenance != nil {
		ids := make([]string, len(all))
		for i, e := range all {
			ids[i] = e.ID
		}
		if windows, err = h.maintenance.Windows(ctx, ids); err != nil {
			return nil, fmt.Errorf("list equipment: maintenance windows: %w", err)
		}
	}
	var open map[string]bool // equipment with an open alarm
	out := make([]EquipmentView, len(all))
	for i, e := range all {
		var m *equipment.Maintenance
		if w, ok := windows[e.ID]; ok && !w.EndedBy(now) {
			m = &w
		}
		st, err := statusWith(h.rules, m, e.LastSeenAt, e.LastAnomalyAt, now, func() (bool, error) {
			if open == nil { // one query for the whole list, when some equipment is online
				if open, err = h.alarms.OpenEquipment(ctx); err != nil {
					return false, fmt.Errorf("open alarms: %w", err)
				}
			}
			return open[e.ID], nil
		}, h.alarms != nil)
		if err != nil {
			return nil, fmt.Errorf("list equipment: %w", err)
		}
		out[i] = EquipmentView{Equipment: e, Status: st, Maintenance: m}
	}
	return out, nil
}

// Get returns one equipment; ports.ErrNotFound if unknown.
func (h *EquipmentHandler) Get(ctx context.Context, id string) (EquipmentView, error) {
	e, err := h.repo.Get(ctx, id)
	if err != nil {
		return EquipmentView{}, fmt.Errorf("get equipment %s: %w", id, err)
	}
	now := h.clock.Now()
	m, err := maintenanceOf(ctx, h.maintenance, id, now)
	if err != nil {
		return EquipmentView{}, fmt.Errorf("get equipment %s: %w", id, err)
	}
	st, err := statusOf(ctx, h.alarms, h.rules, id, m, e.LastSeenAt, e.LastAnomalyAt, now)
	if err != nil {
		return EquipmentView{}, fmt.Errorf("get equipment %s: %w", id, err)
	}
	return EquipmentView{Equipment: e, Status: st, Maintenance: m}, nil
}

// EquipmentStatus is the live state of one equipment.
type EquipmentStatus struct {
	EquipmentID          string
	Status               equipment.Status
	LastSeenAt           time.Time             // zero if never seen
	SecondsSinceLastSeen float64               // meaningful only when LastSeenAt is set
	LatestReadings       []ports.StoredReading // each sensor's, ordered by sensor.CompareKeys
	// RecentAnomalies counts anomalies detected within the anomaly window.
	RecentAnomalies int64
	// Maintenance is the equipment's maintenance window when one is under way or ahead.
	Maintenance *equipment.Maintenance
}

// EquipmentStatusHandler answers what state an equipment is in.
//
// With a live store (production), the latest readings come from it rather than from the
// readings table; the database is read for them only when the live store does not know
// the equipment completely (after a Redis restart, say), and what it tells then warms the
// live store. A live store that fails is passed over: the answer comes from the database.
type EquipmentStatusHandler struct {
	equipment   ports.EquipmentRepository
	readings    ports.ReadingRepository
	anomalies   ports.AnomalyRepository
	live        ports.LiveStore             // may be nil
	alarms      ports.AlarmRepository       // may be nil
	maintenance ports.MaintenanceRepository // may be nil
	clock       ports.Clock
	rules       equipment.Rules
}

// WithAlarms makes the equipment ANOMALY while online with an open alarm.
func (h *EquipmentStatusHandler) WithAlarms(a ports.AlarmRepository) *EquipmentStatusHandler {
	h.alarms = a
	return h
}

// WithMaintenance makes the equipment MAINTENANCE while a maintenance window covers now, and
// shows the window until it ends.
func (h *EquipmentStatusHandler) WithMaintenance(m ports.MaintenanceRepository) *EquipmentStatusHandler {
	h.maintenance = m
	return h
}

// NewEquipmentStatusHandler builds the handler; live may be nil.
func NewEquipmentStatusHandler(eq ports.EquipmentRepository, r ports.ReadingRepository, a ports.AnomalyRepository,
	live ports.LiveStore, c ports.Clock, rules equipment.Rules) *EquipmentStatusHandler {
	return &EquipmentStatusHandler{equipment: eq, readings: r, anomalies: a, live: live, clock: c, rules: rules}
}

// Handle returns the status of equipment id; ports.ErrNotFound if unknown. With sensorID set,
// the latest readings and the recent anomalies are that sensor's only (see sensor.Matches);
// the status stays the equipment's.
func (h *EquipmentStatusHandler) Handle(ctx context.Context, id, sensorID string) (EquipmentStatus, error) {
	e, err := h.equipment.Get(ctx, id)
	if err != nil {
		return EquipmentStatus{}, fmt.Errorf("get equipment %s: %w", id, err)
	}
	lastSeen, lastAnomaly := e.LastSeenAt, e.LastAnomalyAt
	latest, live := h.fromLive(ctx, id)
	if live != nil {
		lastSeen, lastAnomaly = later(lastSeen, live.LastSeenAt), later(lastAnomaly, live.LastAnomalyAt)
	} else {
		if latest, err = h.readings.Latest(ctx, id); err != nil {
			return EquipmentStatus{}, fmt.Errorf("latest readings of %s: %w", id, err)
		}
		if h.live != nil {
			// Best effort: the answer stands whether or not the live store takes it.
			_ = h.live.Warm(ctx, id, latest)
		}
	}
	if sensorID != "" {
		latest = ofSensor(latest, sensorID)
	}
	latest = slices.Clone(latest)
	slices.SortFunc(latest, func(a, b ports.StoredReading) int { return sensor.CompareKeys(a.Key(), b.Key()) })
	now := h.clock.Now()
	recent, err := h.anomalies.CountDetectedSince(ctx, ports.SensorScope{EquipmentID: id, SensorID: sensorID},
		now.Add(-h.rules.AnomalyWindow))
	if err != nil {
		return EquipmentStatus{}, fmt.Errorf("recent anomalies of %s: %w", id, err)
	}
	m, err := maintenanceOf(ctx, h.maintenance, id, now)
	if err != nil {
		return EquipmentStatus{}, err
	}
	status, err := statusOf(ctx, h.alarms, h.rules, id, m, lastSeen, lastAnomaly, now)
	if err != nil {
		return EquipmentStatus{}, err
	}
	st := EquipmentStatus{
		EquipmentID:     id,
		Status:          status,
		LastSeenAt:      lastSeen,
		LatestReadings:  latest,
		RecentAnomalies: recent,
		Maintenance:     m,
	}
	if !lastSeen.IsZero() {
		st.SecondsSinceLastSeen = max(0, now.Sub(lastSeen).Seconds())
	}
	return st, nil
}

// fromLive returns the live state of the equipment when the live store knows it
// completely, and nil otherwise.
func (h *EquipmentStatusHandler) fromLive(ctx context.Context, id string) ([]ports.StoredReading, *ports.LiveEquipment) {
	if h.live == nil {
		return nil, nil
	}
	l, err := h.live.Live(ctx, id)
	if err != nil || !l.Complete {
		return nil, nil
	}
	return l.Latest, &l
}

// ofSensor keeps the readings of the sensor named id.
func ofSensor(rs []ports.StoredReading, id string) []ports.StoredReading {
	out := rs[:0:0]
	for _, r := range rs {
		if sensor.Matches(r.Type, r.SensorID, id) {
			out = append(out, r)
		}
	}
	return out
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
