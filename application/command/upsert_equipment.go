package command

import (
	"context"
	"fmt"

	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// UpsertEquipment creates an equipment or replaces its metadata.
type UpsertEquipment struct {
	ID       string
	Metadata equipment.Metadata
}

// UpsertEquipmentHandler stores equipment metadata.
type UpsertEquipmentHandler struct {
	repo  ports.EquipmentRepository
	clock ports.Clock
}

// NewUpsertEquipmentHandler builds the handler.
func NewUpsertEquipmentHandler(repo ports.EquipmentRepository, c ports.Clock) *UpsertEquipmentHandler {
	return &UpsertEquipmentHandler{repo: repo, clock: c}
}

// Handle returns the equipment as stored.
func (h *UpsertEquipmentHandler) Handle(ctx context.Context, cmd UpsertEquipment) (equipment.Equipment, error) {
	if !sensor.ValidEquipmentID(cmd.ID) {
		return equipment.Equipment{}, &ports.ValidationError{Violations: []ports.Violation{{
			Field: "id", Message: "must be 1-64 characters of letters, digits, '.', '_', ':' or '-', starting with a letter or digit"}}}
	}
	if err := cmd.Metadata.Validate(); err != nil {
		return equipment.Equipment{}, &ports.ValidationError{Violations: metadataViolations(cmd.Metadata)}
	}
	e, err := h.repo.UpsertMetadata(ctx, cmd.ID, cmd.Metadata, h.clock.Now().UTC())
	if err != nil {
		return equipment.Equipment{}, fmt.Errorf("upsert equipment %s: %w", cmd.ID, err)
	}
	return e, nil
}

// metadataViolations names, by the contract's json names, each metadata field that breaks
// the rules of equipment.Metadata.
func metadataViolations(m equipment.Metadata) []ports.Violation {
	fields := []struct {
		name string
		only equipment.Metadata
	}{
		{"name", equipment.Metadata{Name: m.Name}},
		{"line", equipment.Metadata{Line: m.Line}},
		{"location", equipment.Metadata{Location: m.Location}},
	}
	var out []ports.Violation
	for _, f := range fields {
		if err := f.only.Validate(); err != nil {
			out = append(out, ports.Violation{Field: f.name, Message: err.Error()})
		}
	}
	return out
}
