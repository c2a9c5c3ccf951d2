// Package query holds the use cases that read state.
package query

import (
	"context"
	"fmt"
	"time"

	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/ports"
)

// EquipmentView is an equipment with its status now.
type EquipmentView struct {
	equipment.Equipment
	Status equipment.Status
}

// EquipmentHandler lists equipment and fetches one.
type EquipmentHandler struct {
	repo   ports.EquipmentRepository
	alarms ports.AlarmRepository // may be nil
	clock  ports.Clock
	rules  equipment.Rules
}

// WithAlarms makes equipment with an open alarm ANOMALY while it is online.
func (h *EquipmentHandler) WithAlarms(a ports.AlarmRepository) *EquipmentHandler {
	h.alarms = a
	return h
}

// statusOf is the status of e now: the rules' verdict, and ANOMALY while online with an open
// alarm.
func statusOf(ctx context.Context, alarms ports.AlarmRepository, rules equipment.Rules, id string, lastSeen, lastAnomaly, now time.Time) (equipment.Status, error) {
	st := rules.StatusAt(lastSeen, lastAnomaly, now)
	if st != equipment.StatusOnline || alarms == nil {
		return st, nil
	}
	open, err := alarms.AnyOpen(ctx, id)
	if err != nil {
		return "", fmt.Errorf("open alarms of %s: %w", id, err)
	}
	if open {
		return equipment.StatusAnomaly, nil
	}
	return st, nil
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
	out := make([]EquipmentView, len(all))
	for i, e := range all {
		st, err := statusOf(ctx, h.alarms, h.rules, e.ID, e.LastSeenAt, e.LastAnomalyAt, now)
		if err != nil {
			return nil, fmt.Errorf("list equipment: %w", err)
		}
		out[i] = EquipmentView{Equipment: e, Status: st}
	}
	return out, nil
}

// Get returns one equipment; ports.ErrNotFound if unknown.
func (h *EquipmentHandler) Get(ctx context.Context, id string) (EquipmentView, error) {
	e, err := h.repo.Get(ctx, id)
	if err != nil {
		return EquipmentView{}, fmt.Errorf("get equipment %s: %w", id, err)
	}
	st, err := statusOf(ctx, h.alarms, h.rules, id, e.LastSeenAt, e.LastAnomalyAt, h.clock.Now())
	if err != nil {
		return EquipmentView{}, fmt.Errorf("get equipment %s: %w", id, err)
	}
	return EquipmentView{Equipment: e, Status: st}, nil
}

// EquipmentStatus is the live state of one equipment.
type EquipmentStatus struct {
	EquipmentID          string
	Status               equipment.Status
	LastSeenAt           time.Time // zero if never seen
	SecondsSinceLastSeen float64   // meaningful only when LastSeenAt is set
	LatestReadings       []ports.StoredReading
	// RecentAnomalies counts anomalies detected within the anomaly window.
	RecentAnomalies int64
}

// EquipmentStatusHandler answers what state an equipment is in.
//
// With a live store (production), the latest readings come from it rather than from the
// readings table; the database is read for them only when the live store does not know
// the equipment completely (after a Redis restart, say), and what it tells then warms the
// live store. A live store that fails is passed over: the answer comes from the database.
type EquipmentStatusHandler struct {
	equipment ports.EquipmentRepository
	readings  ports.ReadingRepository
	anomalies ports.AnomalyRepository
	live      ports.LiveStore       // may be nil
	alarms    ports.AlarmRepository // may be nil
	clock     ports.Clock
	rules     equipment.Rules
}

// WithAlarms makes the equipment ANOMALY while online with an open alarm.
func (h *EquipmentStatusHandler) WithAlarms(a ports.AlarmRepository) *EquipmentStatusHandler {
	h.alarms = a
	return h
}

// NewEquipmentStatusHandler builds the handler; live may be nil.
func NewEquipmentStatusHandler(eq ports.EquipmentRepository, r ports.ReadingRepository, a ports.AnomalyRepository,
	live ports.LiveStore, c ports.Clock, rules equipment.Rules) *EquipmentStatusHandler {
	return &EquipmentStatusHandler{equipment: eq, readings: r, anomalies: a, live: live, clock: c, rules: rules}
}

// Handle returns the status of equipment id; ports.ErrNotFound if unknown.
func (h *EquipmentStatusHandler) Handle(ctx context.Context, id string) (EquipmentStatus, error) {
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
	now := h.clock.Now()
	recent, err := h.anomalies.CountDetectedSince(ctx, id, now.Add(-h.rules.AnomalyWindow))
	if err != nil {
		return EquipmentStatus{}, fmt.Errorf("recent anomalies of %s: %w", id, err)
	}
	status, err := statusOf(ctx, h.alarms, h.rules, id, lastSeen, lastAnomaly, now)
	if err != nil {
		return EquipmentStatus{}, err
	}
	st := EquipmentStatus{
		EquipmentID:     id,
		Status:          status,
		LastSeenAt:      lastSeen,
		LatestReadings:  latest,
		RecentAnomalies: recent,
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

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
