package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
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
	Ts          time.Time
	DetectedAt  time.Time
}

func (r anomalyRow) anomaly() anomaly.Anomaly {
	return anomaly.Anomaly{
		ID: r.ID, ReadingID: r.ReadingID, EquipmentID: r.EquipmentID, SensorType: sensor.Type(r.SensorType),
		SensorID: r.SensorID, Value: r.Value, ZScore: r.ZScore, Mean: r.Mean, StdDev: r.StdDev, WindowSize: int(r.WindowSize),
		Severity: anomaly.Severity(r.Severity), Timestamp: r.Ts.UTC(), DetectedAt: r.DetectedAt.UTC(),
	}
}

const anomalyColumns = "id, equipment_id, reading_id, sensor_type, sensor_id, value, z_score, mean, std_dev, window_size, severity, ts, detected_at"

// anomalyFilter is the WHERE clause, and its arguments, of the anomalies q selects; zero
// times are open ends.
func anomalyFilter(q ports.AnomalyQuery) (string, []any) {
	conds := []string{"true"}
	var args []any
	if q.EquipmentID != "" {
		conds = append(conds, "equipment_id = ?")
		args = append(args, q.EquipmentID)
	}
	if q.SensorType != "" {
		conds = append(conds, "sensor_type = ?")
		args = append(args, string(q.SensorType))
	}
	if q.SensorID != "" {
		match, matchArgs := sensorMatch("", q.SensorID)
		conds, args = append(conds, match), append(args, matchArgs...)
	}
	if len(q.Severities) > 0 {
		sev := make([]string, len(q.Severities))
		for i, s := range q.Severities {
			sev[i] = string(s)
		}
		conds = append(conds, "severity = ANY (?::text[])")
		args = append(args, array(sev))
	}
	if !q.From.IsZero() {
		conds = append(conds, "ts >= ?")
		args = append(args, q.From)
	}
	if !q.To.IsZero() {
		conds = append(conds, "ts < ?")
		args = append(args, q.To)
	}
	return strings.Join(conds, " AND "), args
}

// findStatements are Find's two queries: how many anomalies match q, and its page.
func findStatements(q ports.AnomalyQuery) (count, page statement) {
	where, args := anomalyFilter(q)
	order := "ts DESC, id DESC"
	if q.Ascending {
		order = "ts ASC, id ASC"
	}
	count = statement{"SELECT count(*) FROM anomalies WHERE " + where, args}
	page = statement{"SELECT " + anomalyColumns + " FROM anomalies WHERE " + where +
		" ORDER BY " + order + " OFFSET ? LIMIT ?", append(args[:len(args):len(args)], max(q.Offset, 0), q.Limit)}
	return count, page
}

// Find implements ports.AnomalyRepository. The count and the page are read in one
// repeatable-read transaction, so that they agree.
func (r *AnomalyRepository) Find(ctx context.Context, q ports.AnomalyQuery) ([]anomaly.Anomaly, int64, error) {
	var (
		total int64
		rows  []anomalyRow
	)
	count, page := findStatements(q)
	err := r.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := count.on(tx).Scan(&total).Error; err != nil {
			return fmt.Errorf("count: %w", err)
		}
		if q.Limit <= 0 || int64(q.Offset) >= total {
			return nil
		}
		if err := page.on(tx).Scan(&rows).Error; err != nil {
			return fmt.Errorf("page: %w", err)
		}
		return nil
	}, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
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
func (r *AnomalyRepository) CountBySeverity(ctx context.Context, s ports.SensorScope, from, to time.Time) (map[anomaly.Severity]int64, error) {
	var rows []struct {
		Severity string
		Count    int64
	}
	where, args := anomalyFilter(ports.AnomalyQuery{EquipmentID: s.EquipmentID, SensorID: s.SensorID, From: from, To: to})
	err := r.db.gorm.WithContext(ctx).
		Raw("SELECT severity, count(*) AS count FROM anomalies WHERE "+where+" GROUP BY severity", args...).
		Scan(&rows).Error
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
func (r *AnomalyRepository) CountDetectedSince(ctx context.Context, s ports.SensorScope, since time.Time) (int64, error) {
	var n int64
	sql, args := "SELECT count(*) FROM anomalies WHERE equipment_id = ? AND detected_at >= ?", []any{s.EquipmentID, since}
	if s.SensorID != "" {
		match, matchArgs := sensorMatch("", s.SensorID)
		sql, args = sql+" AND "+match, append(args, matchArgs...)
	}
	if err := r.db.gorm.WithContext(ctx).Raw(sql, args...).Scan(&n).Error; err != nil {
		return 0, r.db.fail(ctx, "count anomalies of "+s.EquipmentID+" detected since", err)
	}
	return n, nil
}
