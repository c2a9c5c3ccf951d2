package command

import (
	"context"
	"fmt"
	"time"

	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// SetMaintenance puts an equipment under maintenance from From (now when zero) to To,
// replacing any window it has.
type SetMaintenance struct {
	EquipmentID string
	From        time.Time
	To          time.Time
	Reason      string
}

// SetMaintenanceHandler sets maintenance windows.
type SetMaintenanceHandler struct {
	repo  ports.MaintenanceRepository
	clock ports.Clock
}

// NewSetMaintenanceHandler builds the handler.
func NewSetMaintenanceHandler(repo ports.MaintenanceRepository, c ports.Clock) *SetMaintenanceHandler {
	return &SetMaintenanceHandler{repo: repo, clock: c}
}

// Handle stores the window and returns it as stored (UTC, to the microsecond). It returns a
// *ports.ValidationError naming each field that breaks the rules of equipment.Maintenance,
// and ports.ErrNotFound for unknown equipment.
func (h *SetMaintenanceHandler) Handle(ctx context.Context, cmd SetMaintenance) (equipment.Maintenance, error) {
	if !sensor.ValidEquipmentID(cmd.EquipmentID) {
		return equipment.Maintenance{}, &ports.ValidationError{Violations: []ports.Violation{{
			Field: "id", Message: "must be 1-64 characters of letters, digits, '.', '_', ':' or '-', starting with a letter or digit"}}}
	}
	now := h.clock.Now().UTC()
	from := cmd.From
	if from.IsZero() {
		from = now
	}
	m := equipment.Maintenance{
		EquipmentID: cmd.EquipmentID,
		From:        from.UTC().Truncate(time.Microsecond),
		To:          cmd.To.UTC().Truncate(time.Microsecond),
		Reason:      cmd.Reason,
	}
	if problems := m.Problems(now); len(problems) > 0 {
		v := make([]ports.Violation, len(problems))
		for i, p := range problems {
			v[i] = ports.Violation{Field: p.Field, Message: p.Err.Error()}
		}
		return equipment.Maintenance{}, &ports.ValidationError{Violations: v}
	}
	if err := h.repo.Set(ctx, m); err != nil {
		return equipment.Maintenance{}, fmt.Errorf("set maintenance of %s: %w", cmd.EquipmentID, err)
	}
	return m, nil
}
