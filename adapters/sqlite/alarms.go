package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// AlarmRepository keeps alarms; the batch writer writes the workers' alarms.
type AlarmRepository struct{ db *DB }

var _ ports.AlarmRepository = (*AlarmRepository)(nil)

// NewAlarmRepository returns the alarm repository of db.
func NewAlarmRepository(db *DB) *AlarmRepository { return &AlarmRepository{db: db} }

// alarmRow is a row of alarms.
type alarmRow struct {
	ID           string
	EquipmentID  string
	SensorType   string
	SensorID     string
	State        string
	Severity     string
	OpenedAt     int64
	FirstAt      int64
	LastAt       int64
	ReadingCount int64
	PeakZ        float64
	ClearedAt    sql.NullInt64
	AckBy        string
	AckComment   string
	AckAt        sql.NullInt64
	Flapping     bool
	RulesVersion string
	Calm         int64
	CalmSince    sql.NullInt64
	Cause        string
	// The evidence of the check that opened it.
	EvidenceStatistic, EvidenceLimit float64
	EvidenceWindow                   int64
	IncidentID                       string
}

func (r alarmRow) alarm() alarm.Alarm {
	// The column's CHECK constraint holds the names; a row from before has the default.
	ev, _ := anomaly.UnmarshalFinding(r.Cause, r.EvidenceStatistic, r.EvidenceLimit, int(r.EvidenceWindow))
	return alarm.Alarm{ID: r.ID, EquipmentID: r.EquipmentID, SensorType: sensor.Type(r.SensorType),
		Sensor: r.SensorID, State: alarm.State(r.State), Severity: anomaly.Severity(r.Severity), OpenedAt: fromMicros(r.OpenedAt),
		FirstAt: fromMicros(r.FirstAt), LastAt: fromMicros(r.LastAt), Count: int(r.ReadingCount), PeakZ: r.PeakZ,
		ClearedAt: fromNullMicros(r.ClearedAt), AckBy: r.AckBy, AckComment: r.AckComment, AckAt: fromNullMicros(r.AckAt),
		Flapping: r.Flapping, RulesVersion: r.RulesVersion, Calm: int(r.Calm), CalmSince: fromNullMicros(r.CalmSince),
		Cause: ev.Check, Evidence: ev, IncidentID: r.IncidentID}
}

const alarmCols = 21

// upsertAlarms inserts or updates the batch's alarms (their latest version each, cleared
// ones first): an update never touches the acknowledgement, and moves the state only to
// CLEARED. The partial unique index refuses a second open alarm on one sensor.
func upsertAlarms(tx *gorm.DB, writes []alarm.Alarm) error {
	for chunk := range slices.Chunk(alarm.Latest(writes), maxVariables/alarmCols) {
		args := make([]any, 0, len(chunk)*alarmCols)
		for _, a := range chunk {
			args = append(args, a.ID, a.EquipmentID, string(a.SensorType), a.Sensor, string(a.State), string(a.Severity),
				micros(a.OpenedAt), micros(a.FirstAt), micros(a.LastAt), a.Count, a.PeakZ, nullMicros(a.ClearedAt),
				boolInt(a.Flapping), a.RulesVersion, a.Calm, nullMicros(a.CalmSince), a.Cause.String(),
				a.Evidence.Statistic, a.Evidence.Limit, a.Evidence.Window, a.IncidentID)
		}
		q := multiRow(`INSERT INTO alarms (id, equipment_id, sensor_type, sensor_id, state, severity, opened_at, first_at, last_at,
			reading_count, peak_z, cleared_at, flapping, rules_version, calm, calm_since, cause, evidence_statistic,
			evidence_limit, evidence_window, incident_id)`, alarmCols, len(chunk),
			`ON CONFLICT (id) DO UPDATE SET
				state = CASE WHEN excluded.state = 'CLEARED' THEN 'CLEARED' ELSE alarms.state END,
				severity = excluded.severity, last_at = excluded.last_at, reading_count = excluded.reading_count,
				peak_z = excluded.peak_z, cleared_at = excluded.cleared_at, flapping = excluded.flapping,
				calm = excluded.calm, calm_since = excluded.calm_since,
				incident_id = CASE WHEN excluded.incident_id <> '' THEN excluded.incident_id ELSE alarms.incident_id END`)
		if err := tx.Exec(q, args...).Error; err != nil {
			return fmt.Errorf("upsert %d alarms: %w", len(chunk), err)
		}
	}
	return nil
}

// Latest implements ports.AlarmRepository.
func (r *AlarmRepository) Latest(ctx context.Context, k sensor.Key, since time.Time) (*alarm.Alarm, []time.Time, error) {
	db := r.db.gorm.WithContext(ctx)
	var rows []alarmRow
	ofSensor := func() *gorm.DB {
		return db.Table("alarms").Where("equipment_id = ? AND sensor_type = ? AND sensor_id = ?", k.EquipmentID, string(k.Type), k.Sensor)
	}
	err := ofSensor().Order("opened_at DESC, id DESC").Limit(1).Find(&rows).Error
	if err != nil {
		return nil, nil, r.db.fail(ctx, "latest alarm", err)
	}
	var opened []int64
	err = ofSensor().Where("opened_at >= ?", micros(since)).Order("opened_at").Pluck("opened_at", &opened).Error
	if err != nil {
		return nil, nil, r.db.fail(ctx, "alarm openings", err)
	}
	openings := make([]time.Time, len(opened))
	for i, us := range opened {
		openings[i] = fromMicros(us)
	}
	if len(rows) == 0 {
		return nil, openings, nil
	}
	a := rows[0].alarm()
	return &a, openings, nil
}

// Get implements ports.AlarmRepository.
func (r *AlarmRepository) Get(ctx context.Context, id string) (alarm.Alarm, error) {
	var row alarmRow
	if err := r.db.gorm.WithContext(ctx).Table("alarms").Where("id = ?", id).Take(&row).Error; err != nil {
		return alarm.Alarm{}, r.db.fail(ctx, "get alarm "+id, err)
	}
	return row.alarm(), nil
}

func matchingAlarms(db *gorm.DB, q ports.AlarmQuery) *gorm.DB {
	db = db.Table("alarms")
	if q.EquipmentID != "" {
		db = db.Where("equipment_id = ?", q.EquipmentID)
	}
	if q.SensorType != "" {
		db = db.Where("sensor_type = ?", string(q.SensorType))
	}
	db = whereSensor(db, q.SensorID)
	if len(q.Severities) > 0 {
		db = db.Where("severity IN ?", strs(q.Severities))
	}
	if len(q.States) > 0 {
		db = db.Where("state IN ?", strs(q.States))
	}
	if !q.From.IsZero() {
		db = db.Where("opened_at >= ?", micros(q.From))
	}
	if !q.To.IsZero() {
		db = db.Where("opened_at < ?", micros(q.To))
	}
	return db
}

func strs[S ~string](in []S) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = string(s)
	}
	return out
}

// Find implements ports.AlarmRepository; the count and the page are read in one transaction.
func (r *AlarmRepository) Find(ctx context.Context, q ports.AlarmQuery) ([]alarm.Alarm, int64, error) {
	var (
		total int64
		rows  []alarmRow
	)
	order := "opened_at DESC, id DESC"
	if q.Ascending {
		order = "opened_at ASC, id ASC"
	}
	err := r.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := matchingAlarms(tx, q).Count(&total).Error; err != nil {
			return fmt.Errorf("count: %w", err)
		}
		if q.Limit <= 0 || int64(q.Offset) >= total {
			return nil
		}
		return matchingAlarms(tx, q).Order(order).Offset(max(q.Offset, 0)).Limit(q.Limit).Find(&rows).Error
	})
	if err != nil {
		return nil, 0, r.db.fail(ctx, "find alarms", err)
	}
	out := make([]alarm.Alarm, len(rows))
	for i, row := range rows {
		out[i] = row.alarm()
	}
	return out, total, nil
}

// Acknowledge implements ports.AlarmRepository; the announcement's deliveries are enqueued
// in the acknowledgement's transaction.
func (r *AlarmRepository) Acknowledge(ctx context.Context, id, by, comment string, at time.Time, announce func(alarm.Alarm) event.Event) (alarm.Alarm, error) {
	var out alarm.Alarm
	err := r.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE alarms SET state = 'ACKNOWLEDGED', ack_by = ?, ack_comment = ?, ack_at = ?
			WHERE id = ? AND state = 'ACTIVE'`, by, comment, micros(at), id)
		if res.Error != nil {
			return res.Error
		}
		var row alarmRow
		if err := tx.Table("alarms").Where("id = ?", id).Take(&row).Error; err != nil {
			return err
		}
		out = row.alarm()
		if res.RowsAffected == 0 {
			return fmt.Errorf("it is %s: %w", out.State, ports.ErrConflict)
		}
		if announce == nil {
			return nil
		}
		return enqueue(tx, []event.Event{announce(out)})
	})
	if errors.Is(err, ports.ErrConflict) {
		return alarm.Alarm{}, fmt.Errorf("acknowledge alarm %s: %w", id, err)
	}
	return out, r.db.fail(ctx, "acknowledge alarm "+id, err)
}

// AnyOpen implements ports.AlarmRepository.
func (r *AlarmRepository) AnyOpen(ctx context.Context, equipmentID string) (bool, error) {
	var n int64
	err := r.db.gorm.WithContext(ctx).Table("alarms").Where("equipment_id = ? AND state <> 'CLEARED'", equipmentID).
		Limit(1).Count(&n).Error
	if err != nil {
		return false, r.db.fail(ctx, "open alarms of "+equipmentID, err)
	}
	return n > 0, nil
}

// Stats implements ports.AlarmRepository.
func (r *AlarmRepository) Stats(ctx context.Context, scope ports.SensorScope, from, to time.Time) (ports.AlarmStats, error) {
	var rows []struct {
		Severity     string
		Opened       int64
		Acknowledged int64
		AckMicros    int64
		Cleared      int64
		ClearMicros  int64
	}
	err := matchingAlarms(r.db.gorm.WithContext(ctx), ports.AlarmQuery{EquipmentID: scope.EquipmentID, SensorID: scope.SensorID, From: from, To: to}).
		Select(`severity, count(*) AS opened,
			count(ack_at) AS acknowledged, coalesce(sum(ack_at - opened_at), 0) AS ack_micros,
			count(cleared_at) AS cleared, coalesce(sum(cleared_at - opened_at), 0) AS clear_micros`).
		Group("severity").Scan(&rows).Error
	if err != nil {
		return ports.AlarmStats{}, r.db.fail(ctx, "alarm stats", err)
	}
	st := ports.AlarmStats{BySeverity: make(map[anomaly.Severity]int64, len(rows))}
	for _, row := range rows {
		st.BySeverity[anomaly.Severity(row.Severity)] = row.Opened
		st.Acknowledged += row.Acknowledged
		st.TimeToAckTotal += time.Duration(row.AckMicros) * time.Microsecond
		st.Cleared += row.Cleared
		st.TimeToClearTotal += time.Duration(row.ClearMicros) * time.Microsecond
	}
	return st, nil
}

// OpenEquipment implements ports.AlarmRepository (from the partial index of open alarms).
func (r *AlarmRepository) OpenEquipment(ctx context.Context) (map[string]bool, error) {
	var ids []string
	if err := r.db.gorm.WithContext(ctx).Raw("SELECT DISTINCT equipment_id FROM alarms WHERE state <> 'CLEARED'").
		Scan(&ids).Error; err != nil {
		return nil, r.db.fail(ctx, "equipment with open alarms", err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}
