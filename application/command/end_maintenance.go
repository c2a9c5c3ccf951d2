package command

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/production-line-monitor/plm/ports"
)

// EndMaintenance ends an equipment's maintenance window now: one under way ends now, one
// not begun is removed.
type EndMaintenance struct {
	EquipmentID string
}

// ErrNoMaintenance is returned by EndMaintenanceHandler for known equipment without a window
// under way or ahead. It is a ports.ErrNotFound.
var ErrNoMaintenance = fmt.Errorf("no maintenance window under way or ahead: %w", ports.ErrNotFound)

// EndMaintenanceHandler ends maintenance windows.
type EndMaintenanceHandler struct {
	repo      ports.MaintenanceRepository
	equipment ports.EquipmentRepository
	clock     ports.Clock
}

// NewEndMaintenanceHandler builds the handler.
func NewEndMaintenanceHandler(repo ports.MaintenanceRepository, eq ports.EquipmentRepository, c ports.Clock) *EndMaintenanceHandler {
	return &EndMaintenanceHandler{repo: repo, equipment: eq, clock: c}
}

// Handle ends the window. It returns ErrNoMaintenance when the equipment has no window under
// way or ahead, and ports.ErrNotFound for unknown equipment.
func (h *EndMaintenanceHandler) Handle(ctx context.Context, cmd EndMaintenance) error {
	err := h.repo.End(ctx, cmd.EquipmentID, h.clock.Now().UTC().Truncate(time.Microsecond))
	if errors.Is(err, ports.ErrNotFound) {
		if _, gerr := h.equipment.Get(ctx, cmd.EquipmentID); gerr != nil {
			return fmt.Errorf("end maintenance of %s: %w", cmd.EquipmentID, gerr)
		}
		return fmt.Errorf("end maintenance of %s: %w", cmd.EquipmentID, ErrNoMaintenance)
	}
	if err != nil {
		return fmt.Errorf("end maintenance of %s: %w", cmd.EquipmentID, err)
	}
	return nil
}
