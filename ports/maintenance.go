package ports

import (
	"context"
	"time"

	"github.com/production-line-monitor/plm/domain/equipment"
)

// MaintenanceRepository keeps each equipment's maintenance window: at most one, which a new
// one replaces. A window that has ended is kept until it is replaced, so that readings
// received within it are still judged under it however late they are processed.
type MaintenanceRepository interface {
	// Set stores m as the window of m.EquipmentID, replacing any it has. It returns
	// ErrNotFound when the equipment is unknown.
	Set(ctx context.Context, m equipment.Maintenance) error
	// Get returns the equipment's window, ended or not; ErrNotFound when it has none.
	Get(ctx context.Context, equipmentID string) (equipment.Maintenance, error)
	// End ends the equipment's window at at: a window under way at at (From <= at < To) is
	// given To = at and kept; one that starts after at is removed. It returns ErrNotFound
	// when the equipment has no window, or only one that had ended by at.
	End(ctx context.Context, equipmentID string, at time.Time) error
	// Windows returns the windows, ended or not, of those of equipmentIDs that have one,
	// by equipment id.
	Windows(ctx context.Context, equipmentIDs []string) (map[string]equipment.Maintenance, error)
}
