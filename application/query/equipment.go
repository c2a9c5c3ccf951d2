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
	repo  ports.EquipmentRepository
	clock ports.Clock
	rules equipment.Rules
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
		out[i] = EquipmentView{Equipment: e, Status: h.rules.StatusAt(e.LastSeenAt, e.LastAnomalyAt, now)}
	}
	return out, nil
}

// Get returns one equipment; ports.ErrNotFound if unknown.
func (h *EquipmentHandler) Get(ctx context.Context, id string) (EquipmentView, error) {
	e, err := h.repo.Get(ctx, id)
	if err != nil {
		return EquipmentView{}, fmt.Errorf("get equipment %s: %w", id, err)
	}
	return EquipmentView{Equipment: e, Status: h.rules.StatusAt(e.LastSeenAt, e.LastAnomalyAt, h.clock.Now())}, nil
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
type EquipmentStatusHandler struct {
	equipment ports.EquipmentRepository
	readings  ports.ReadingRepository
	anomalies ports.AnomalyRepository
	clock     ports.Clock
	rules     equipment.Rules
}

// NewEquipmentStatusHandler builds the handler.
func NewEquipmentStatusHandler(eq ports.EquipmentRepository, r ports.ReadingRepository, a ports.AnomalyRepository,
	c ports.Clock, rules equipment.Rules) *EquipmentStatusHandler {
	return &EquipmentStatusHandler{equipment: eq, readings: r, anomalies: a, clock: c, rules: rules}
}

// Handle returns the status of equipment id; ports.ErrNotFound if unknown.
func (h *EquipmentStatusHandler) Handle(ctx context.Context, id string) (EquipmentStatus, error) {
	e, err := h.equipment.Get(ctx, id)
	if err != nil {
		return EquipmentStatus{}, fmt.Errorf("get equipment %s: %w", id, err)
	}
	latest, err := h.readings.Latest(ctx, id)
	if err != nil {
		return EquipmentStatus{}, fmt.Errorf("latest readings of %s: %w", id, err)
	}
	now := h.clock.Now()
	recent, err := h.anomalies.CountDetectedSince(ctx, id, now.Add(-h.rules.AnomalyWindow))
	if err != nil {
		return EquipmentStatus{}, fmt.Errorf("recent anomalies of %s: %w", id, err)
	}
	st := EquipmentStatus{
		EquipmentID:     id,
		Status:          h.rules.StatusAt(e.LastSeenAt, e.LastAnomalyAt, now),
		LastSeenAt:      e.LastSeenAt,
		LatestReadings:  latest,
		RecentAnomalies: recent,
	}
	if !e.LastSeenAt.IsZero() {
		st.SecondsSinceLastSeen = max(0, now.Sub(e.LastSeenAt).Seconds())
	}
	return st, nil
}
