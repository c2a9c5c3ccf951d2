package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/ports"
)

// EquipmentRepository keeps equipment and its online sessions.
type EquipmentRepository struct{ db *DB }

var _ ports.EquipmentRepository = (*EquipmentRepository)(nil)

// NewEquipmentRepository returns the equipment repository of db.
func NewEquipmentRepository(db *DB) *EquipmentRepository { return &EquipmentRepository{db: db} }

// equipmentRow is a row of equipment.
type equipmentRow struct {
	ID            string
	Name          string
	Line          string
	Location      string
	CreatedAt     time.Time
	LastSeenAt    sql.NullTime
	LastAnomalyAt sql.NullTime
}

func (r equipmentRow) equipment() equipment.Equipment {
	return equipment.Equipment{
		ID: r.ID, Name: r.Name, Line: r.Line, Location: r.Location, CreatedAt: r.CreatedAt.UTC(),
		LastSeenAt: fromNull(r.LastSeenAt), LastAnomalyAt: fromNull(r.LastAnomalyAt),
	}
}

// fromNull reads NULL ("never") back as the zero time, any other time in UTC.
func fromNull(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

const equipmentColumns = "id, name, line, location, created_at, last_seen_at, last_anomaly_at"

// sessionRow is a row of equipment_sessions.
type sessionRow struct {
	EquipmentID string
	StartAt     time.Time
	EndAt       time.Time
}

func (r sessionRow) session() equipment.Session {
	return equipment.Session{EquipmentID: r.EquipmentID, Start: r.StartAt.UTC(), End: r.EndAt.UTC()}
}

// Get implements ports.EquipmentRepository.
func (r *EquipmentRepository) Get(ctx context.Context, id string) (equipment.Equipment, error) {
	var row equipmentRow
	err := r.db.gorm.WithContext(ctx).Table("equipment").Select(equipmentColumns).Where("id = ?", id).Take(&row).Error
	if err != nil {
		return equipment.Equipment{}, r.db.fail(ctx, "get equipment "+id, err)
	}
	return row.equipment(), nil
}

// All implements ports.EquipmentRepository.
func (r *EquipmentRepository) All(ctx context.Context) ([]equipment.Equipment, error) {
	var rows []equipmentRow
	err := r.db.gorm.WithContext(ctx).Table("equipment").Select(equipmentColumns).Order("id").Find(&rows).Error
	if err != nil {
		return nil, r.db.fail(ctx, "list equipment", err)
	}
	out := make([]equipment.Equipment, len(rows))
	for i, row := range rows {
		out[i] = row.equipment()
	}
	return out, nil
}

// UpsertMetadata implements ports.EquipmentRepository: one statement that creates the
// equipment or replaces only its metadata, and answers the row as stored.
func (r *EquipmentRepository) UpsertMetadata(ctx context.Context, id string, m equipment.Metadata, now time.Time) (equipment.Equipment, error) {
	var rows []equipmentRow
	err := r.db.gorm.WithContext(ctx).Raw(`INSERT INTO equipment (id, name, line, location, created_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, line = excluded.line, location = excluded.location
		RETURNING `+equipmentColumns, id, m.Name, m.Line, m.Location, now).Scan(&rows).Error
	if err == nil && len(rows) != 1 {
		err = fmt.Errorf("upsert answered %d rows", len(rows))
	}
	if err != nil {
		return equipment.Equipment{}, r.db.fail(ctx, "upsert equipment "+id, err)
	}
	return rows[0].equipment(), nil
}

// LatestSession implements ports.EquipmentRepository.
func (r *EquipmentRepository) LatestSession(ctx context.Context, equipmentID string) (equipment.Session, error) {
	var row sessionRow
	err := r.db.gorm.WithContext(ctx).Table("equipment_sessions").Select("equipment_id, start_at, end_at").
		Where("equipment_id = ?", equipmentID).Order("start_at DESC").Take(&row).Error
	if err != nil {
		return equipment.Session{}, r.db.fail(ctx, "latest session of "+equipmentID, err)
	}
	return row.session(), nil
}

// Sessions implements ports.EquipmentRepository, sorted by equipment then start.
func (r *EquipmentRepository) Sessions(ctx context.Context, equipmentID string, endFrom, startTo time.Time) ([]equipment.Session, error) {
	db := r.db.gorm.WithContext(ctx).Table("equipment_sessions").Select("equipment_id, start_at, end_at")
	if equipmentID != "" {
		db = db.Where("equipment_id = ?", equipmentID)
	}
	var rows []sessionRow
	err := db.Where("end_at >= ? AND start_at < ?", endFrom, startTo).Order("equipment_id, start_at").Find(&rows).Error
	if err != nil {
		return nil, r.db.fail(ctx, "list sessions", err)
	}
	out := make([]equipment.Session, len(rows))
	for i, row := range rows {
		out[i] = row.session()
	}
	return out, nil
}
