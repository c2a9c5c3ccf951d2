package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/ports"
)

// Maintenance is the store's ports.MaintenanceRepository.
type Maintenance struct{ s *Store }

var _ ports.MaintenanceRepository = (*Maintenance)(nil)

// Maintenance returns the store's maintenance repository.
func (s *Store) Maintenance() *Maintenance { return &Maintenance{s: s} }

// Set implements ports.MaintenanceRepository.
func (r *Maintenance) Set(_ context.Context, m equipment.Maintenance) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.Err != nil {
		return r.s.Err
	}
	if _, ok := r.s.equipment[m.EquipmentID]; !ok {
		return fmt.Errorf("set maintenance of %s: %w", m.EquipmentID, ports.ErrNotFound)
	}
	if r.s.maintenance == nil {
		r.s.maintenance = make(map[string]equipment.Maintenance)
	}
	m.From, m.To = m.From.UTC(), m.To.UTC()
	r.s.maintenance[m.EquipmentID] = m
	return nil
}

// Get implements ports.MaintenanceRepository.
func (r *Maintenance) Get(_ context.Context, equipmentID string) (equipment.Maintenance, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.Err != nil {
		return equipment.Maintenance{}, r.s.Err
	}
	m, ok := r.s.maintenance[equipmentID]
	if !ok {
		return equipment.Maintenance{}, fmt.Errorf("maintenance of %s: %w", equipmentID, ports.ErrNotFound)
	}
	return m, nil
}

// End implements ports.MaintenanceRepository.
func (r *Maintenance) End(_ context.Context, equipmentID string, at time.Time) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.Err != nil {
		return r.s.Err
	}
	m, ok := r.s.maintenance[equipmentID]
	switch {
	case !ok || m.EndedBy(at):
		return fmt.Errorf("end maintenance of %s: %w", equipmentID, ports.ErrNotFound)
	case m.From.After(at):
		delete(r.s.maintenance, equipmentID)
	default:
		m.To = at.UTC()
		r.s.maintenance[equipmentID] = m
	}
	return nil
}

// Windows implements ports.MaintenanceRepository.
func (r *Maintenance) Windows(_ context.Context, equipmentIDs []string) (map[string]equipment.Maintenance, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.Err != nil {
		return nil, r.s.Err
	}
	out := make(map[string]equipment.Maintenance)
	for _, id := range equipmentIDs {
		if m, ok := r.s.maintenance[id]; ok {
			out[id] = m
		}
	}
	return out, nil
}
