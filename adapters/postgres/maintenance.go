package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/ports"
)

// MaintenanceRepository keeps the equipment's maintenance windows.
type MaintenanceRepository struct{ db *DB }

var _ ports.MaintenanceRepository = (*MaintenanceRepository)(nil)

// NewMaintenanceRepository returns the maintenance repository of db.
func NewMaintenanceRepository(db *DB) *MaintenanceRepository { return &MaintenanceRepository{db: db} }

// maintenanceRow is a row of equipment_maintenance.
type maintenanceRow struct {
	EquipmentID string
	FromAt      time.Time
	ToAt        time.Time
	Reason      string
}

func (r maintenanceRow) maintenance() equipment.Maintenance {
	return equipment.Maintenance{EquipmentID: r.EquipmentID, From: r.FromAt.UTC(), To: r.ToAt.UTC(), Reason: r.Reason}
}

const maintenanceColumns = "equipment_id, from_at, to_at, reason"

// windowsChunk bounds the ids of one Windows statement.
const windowsChunk = 1000

// Set implements ports.MaintenanceRepository: one statement, which inserts nothing for
// unknown equipment.
func (r *MaintenanceRepository) Set(ctx context.Context, m equipment.Maintenance) error {
	res := r.db.gorm.WithContext(ctx).Exec(`INSERT INTO equipment_maintenance (`+maintenanceColumns+`)
		SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM equipment WHERE id = ?)
		ON CONFLICT (equipment_id) DO UPDATE SET from_at = excluded.from_at, to_at = excluded.to_at, reason = excluded.reason`,
		m.EquipmentID, m.From, m.To, m.Reason, m.EquipmentID)
	if err := r.db.fail(ctx, "set maintenance of "+m.EquipmentID, res.Error); err != nil {
		return err
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("set maintenance of %s: equipment %w", m.EquipmentID, ports.ErrNotFound)
	}
	return nil
}

// Get implements ports.MaintenanceRepository.
func (r *MaintenanceRepository) Get(ctx context.Context, equipmentID string) (equipment.Maintenance, error) {
	var row maintenanceRow
	err := r.db.gorm.WithContext(ctx).Table("equipment_maintenance").Select(maintenanceColumns).
		Where("equipment_id = ?", equipmentID).Take(&row).Error
	if err != nil {
		return equipment.Maintenance{}, r.db.fail(ctx, "maintenance of "+equipmentID, err)
	}
	return row.maintenance(), nil
}

// End implements ports.MaintenanceRepository: one statement, which removes a window not
// begun or ends one under way.
func (r *MaintenanceRepository) End(ctx context.Context, equipmentID string, at time.Time) error {
	var n int64
	err := r.db.gorm.WithContext(ctx).Raw(`WITH removed AS (
			DELETE FROM equipment_maintenance WHERE equipment_id = ? AND from_at > ? RETURNING 1
		), ended AS (
			UPDATE equipment_maintenance SET to_at = ? WHERE equipment_id = ? AND from_at <= ? AND to_at > ? RETURNING 1
		)
		SELECT (SELECT count(*) FROM removed) + (SELECT count(*) FROM ended)`,
		equipmentID, at, at, equipmentID, at, at).Scan(&n).Error
	if err == nil && n == 0 {
		err = gorm.ErrRecordNotFound
	}
	return r.db.fail(ctx, "end maintenance of "+equipmentID, err)
}

// Windows implements ports.MaintenanceRepository.
func (r *MaintenanceRepository) Windows(ctx context.Context, equipmentIDs []string) (map[string]equipment.Maintenance, error) {
	out := make(map[string]equipment.Maintenance)
	for chunk := range slices.Chunk(equipmentIDs, windowsChunk) {
		var rows []maintenanceRow
		err := r.db.gorm.WithContext(ctx).Table("equipment_maintenance").Select(maintenanceColumns).
			Where("equipment_id IN ?", chunk).Find(&rows).Error
		if err != nil {
			return nil, r.db.fail(ctx, "maintenance windows", err)
		}
		for _, row := range rows {
			out[row.EquipmentID] = row.maintenance()
		}
	}
	return out, nil
}
