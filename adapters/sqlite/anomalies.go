package sqlite

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// AnomalyRepository reads stored anomalies.
type AnomalyRepository struct{ db *DB }

var _ ports.AnomalyRepository = (*AnomalyRepository)(nil)

// NewAnomalyRepository returns the anomaly repository of db.
func NewAnomalyRepository(db *DB) *AnomalyRepository { return &AnomalyRepository{db: db} }

// anomalyRow is a row of anomalies.
type anomalyRow struct {
	ID          string
	EquipmentID string
	ReadingID   string
	SensorType  string
	SensorID    string
	Value       float64
	ZScore      float64
	Mean        float64
	StdDev      float64
	WindowSize  int64
	Severity    string
	Ts          int64
	DetectedAt  int64
}

func (r anomalyRow) anomaly() anomaly.Anomaly {
	return anomaly.Anomaly{
		ID: r.ID, ReadingID: r.ReadingID, EquipmentID: r.EquipmentID, SensorType: sensor.Type(r.SensorType),
		SensorID: r.SensorID, Value: r.Value, ZScore: r.ZScore, Mean: r.Mean, StdDev: r.StdDev, WindowSize: int(r.WindowSize),
		Severity: anomaly.Severity(r.Severity), Timestamp: fromMicros(r.Ts), DetectedAt: fromMicros(r.DetectedAt),
	}
}

// between narrows db to anomalies of readings timestamped in [from, to); zero times are open
// ends.
func between(db *gorm.DB, from, to time.Time) *gorm.DB {
	if !from.IsZero() {
		db = db.Where("ts >= ?", micros(from))
	}
	if !to.IsZero() {
		db = db.Where("ts < ?", micros(to))
	}
	return db
}

// matching is the anomalies that q selects, before ordering and paging.
func matching(db *gorm.DB, q ports.AnomalyQuery) *gorm.DB {
	db = db.Table("anomalies")
	if q.EquipmentID != "" {
		db = db.Where("equipment_id = ?", q.EquipmentID)
	}
	if q.SensorType != "" {
		db = db.Where("sensor_type = ?", string(q.SensorType))
	}
	db = whereSensor(db, q.SensorID)
	if len(q.Severities) > 0 {
		sev := make([]string, len(q.Severities))
		for i, s := range q.Severities {
			sev[i] = string(s)
		}
		db = db.Where("severity IN ?", sev)
	}
	return between(db, q.From, q.To)
}

// whereSensor narrows db to the rows of the sensor named id (see matchesSensor), or all for "".
func whereSensor(db *gorm.DB, id string) *gorm.DB {
	if id == "" {
		return db
	}
	return db.Where(matchesSensor, map[string]any{"sensor": id})
}

// Find implements ports.AnomalyRepository. The count and the page are read in one
// transaction, so that they agree.
func (r *AnomalyRepository) Find(ctx context.Context, q ports.AnomalyQuery) ([]anomaly.Anomaly, int64, error) {
	var (
		total int64
		rows  []anomalyRow
	)
	order := "ts DESC, id DESC"
	if q.Ascending {
		order = "ts ASC, id ASC"
	}
	err := r.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := matching(tx, q).Count(&total).Error; err != nil {
			return fmt.Errorf("count: %w", err)
		}
		if q.Limit <= 0 || int64(q.Offset) >= total {
			return nil
		}
		err := matching(tx, q).Order(order).Offset(max(q.Offset, 0)).Limit(q.Limit).Find(&rows).Error
		if err != nil {
			return fmt.Errorf("page: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, 0, r.db.fail(ctx, "find anomalies", err)
	}
	out := make([]anomaly.Anomaly, len(rows))
	for i, row := range rows {
		out[i] = row.anomaly()
	}
	return out, total, nil
}

// CountBySeverity implements ports.AnomalyRepository. Zero times are open ends.
func (r *AnomalyRepository) CountBySeverity(ctx context.Context, scope ports.SensorScope, from, to time.Time) (map[anomaly.Severity]int64, error) {
	var rows []struct {
		Severity string
		Count    int64
	}
	err := matching(r.db.gorm.WithContext(ctx), ports.AnomalyQuery{EquipmentID: scope.EquipmentID, SensorID: scope.SensorID, From: from, To: to}).
		Select("severity, count(*) AS count").Group("severity").Scan(&rows).Error
	if err != nil {
		return nil, r.db.fail(ctx, "count anomalies by severity", err)
	}
	out := make(map[anomaly.Severity]int64, len(rows))
	for _, row := range rows {
		out[anomaly.Severity(row.Severity)] = row.Count
	}
	return out, nil
}

// CountDetectedSince implements ports.AnomalyRepository.
func (r *AnomalyRepository) CountDetectedSince(ctx context.Context, scope ports.SensorScope, since time.Time) (int64, error) {
	var n int64
	db := r.db.gorm.WithContext(ctx).Table("anomalies").
		Where("equipment_id = ? AND detected_at >= ?", scope.EquipmentID, micros(since))
	if err := whereSensor(db, scope.SensorID).Count(&n).Error; err != nil {
		return 0, r.db.fail(ctx, "count anomalies of "+scope.EquipmentID+" detected since", err)
	}
	return n, nil
}
