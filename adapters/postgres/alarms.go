package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
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
	OpenedAt     time.Time
	FirstAt      time.Time
	LastAt       time.Time
	ReadingCount int64
	PeakZ        float64
	ClearedAt    sql.NullTime
	AckBy        string
	AckComment   string
	AckAt        sql.NullTime
	Flapping     bool
	RulesVersion string
	Calm         int64
	CalmSince    sql.NullTime
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
		Sensor: r.SensorID, State: alarm.State(r.State), Severity: anomaly.Severity(r.Severity), OpenedAt: r.OpenedAt.UTC(),
		FirstAt: r.FirstAt.UTC(), LastAt: r.LastAt.UTC(), Count: int(r.ReadingCount), PeakZ: r.PeakZ,
		ClearedAt: fromNull(r.ClearedAt), AckBy: r.AckBy, AckComment: r.AckComment, AckAt: fromNull(r.AckAt),
		Flapping: r.Flapping, RulesVersion: r.RulesVersion, Calm: int(r.Calm), CalmSince: fromNull(r.CalmSince),
		Cause: ev.Check, Evidence: ev, IncidentID: r.IncidentID}
}

const alarmColumns = `id, equipment_id, sensor_type, sensor_id, state, severity, opened_at, first_at, last_at, reading_count,
	peak_z, cleared_at, ack_by, ack_comment, ack_at, flapping, rules_version, calm, calm_since, cause, evidence_statistic,
	evidence_limit, evidence_window, incident_id`

// upsertAlarmsSQL inserts or updates the batch's alarms ($1-$21), in the order given (the
// latest version of each, cleared ones first, so that a sensor's cleared alarm leaves room
// for its next): an update never touches the acknowledgement and moves the state only to
// CLEARED. alarms_one_open refuses a second open alarm on one sensor (equipment, type and
// sensor id).
const upsertAlarmsSQL = `INSERT INTO alarms (id, equipment_id, sensor_type, sensor_id, state, severity, opened_at,
		first_at, last_at, reading_count, peak_z, cleared_at, flapping, rules_version, calm, calm_since, cause,
		evidence_statistic, evidence_limit, evidence_window, incident_id)
	SELECT id, equipment_id, sensor_type, sensor_id, state, severity, opened_at, first_at, last_at, reading_count,
		peak_z, cleared_at, flapping, rules_version, calm, calm_since, cause, evidence_statistic, evidence_limit,
		evidence_window, incident_id
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],
			$8::timestamptz[], $9::timestamptz[], $10::int4[], $11::float8[], $12::timestamptz[], $13::bool[],
			$14::text[], $15::int4[], $16::timestamptz[], $17::text[], $18::float8[], $19::float8[], $20::int4[],
			$21::text[])
		WITH ORDINALITY AS a (id, equipment_id, sensor_type, sensor_id, state, severity, opened_at, first_at, last_at,
			reading_count, peak_z, cleared_at, flapping, rules_version, calm, calm_since, cause, evidence_statistic,
			evidence_limit, evidence_window, incident_id, n)
	ORDER BY n
	ON CONFLICT (id) DO UPDATE SET
		state = CASE WHEN excluded.state = 'CLEARED' THEN 'CLEARED' ELSE alarms.state END,
		severity = excluded.severity, last_at = excluded.last_at, reading_count = excluded.reading_count,
		peak_z = excluded.peak_z, cleared_at = excluded.cleared_at, flapping = excluded.flapping,
		calm = excluded.calm, calm_since = excluded.calm_since,
		incident_id = CASE WHEN excluded.incident_id <> '' THEN excluded.incident_id ELSE alarms.incident_id END`

func alarmArgs(writes []alarm.Alarm) []any {
	as := alarm.Latest(writes)
	n := len(as)
	ids, eq, typ, state, sev, rules := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	sensorIDs := make([]string, n)
	opened, first, last := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	cleared, calmSince := make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
	count, calm := make([]int32, n), make([]int32, n)
	peak := make([]float64, n)
	flapping := make([]bool, n)
	causes, stat, limit, window := make([]string, n), make([]float64, n), make([]float64, n), make([]int32, n)
	incidents := make([]string, n)
	for i, a := range as {
		incidents[i] = a.IncidentID
		causes[i], stat[i], limit[i], window[i] = a.Cause.String(), a.Evidence.Statistic, a.Evidence.Limit, int32(a.Evidence.Window)
		ids[i], eq[i], typ[i], state[i], sev[i], rules[i] = a.ID, a.EquipmentID, string(a.SensorType), string(a.State), string(a.Severity), a.RulesVersion
		sensorIDs[i] = a.Sensor
		opened[i], first[i], last[i] = a.OpenedAt, a.FirstAt, a.LastAt
		cleared[i], calmSince[i] = nullTime(a.ClearedAt), nullTime(a.CalmSince)
		count[i], calm[i], peak[i], flapping[i] = int32(a.Count), int32(a.Calm), a.PeakZ, a.Flapping
	}
	return []any{ids, eq, typ, sensorIDs, state, sev, opened, first, last, count, peak, cleared, flapping, rules, calm, calmSince,
		causes, stat, limit, window, incidents}
}

// Latest implements ports.AlarmRepository.
func (r *AlarmRepository) Latest(ctx context.Context, k sensor.Key, since time.Time) (*alarm.Alarm, []time.Time, error) {
	db := r.db.gorm.WithContext(ctx)
	var rows []alarmRow
	err := db.Raw("SELECT "+alarmColumns+" FROM alarms WHERE equipment_id = ? AND sensor_type = ? AND sensor_id = ? ORDER BY opened_at DESC, id DESC LIMIT 1",
		k.EquipmentID, string(k.Type), k.Sensor).Scan(&rows).Error
	if err != nil {
		return nil, nil, r.db.fail(ctx, "latest alarm", err)
	}
	var openings []time.Time
	err = db.Raw("SELECT opened_at FROM alarms WHERE equipment_id = ? AND sensor_type = ? AND sensor_id = ? AND opened_at >= ? ORDER BY opened_at",
		k.EquipmentID, string(k.Type), k.Sensor, since).Scan(&openings).Error
	if err != nil {
		return nil, nil, r.db.fail(ctx, "alarm openings", err)
	}
	for i := range openings {
		openings[i] = openings[i].UTC()
	}
	if len(rows) == 0 {
		return nil, openings, nil
	}
	a := rows[0].alarm()
	return &a, openings, nil
}

// Get implements ports.AlarmRepository.
func (r *AlarmRepository) Get(ctx context.Context, id string) (alarm.Alarm, error) {
	var rows []alarmRow
	if err := r.db.gorm.WithContext(ctx).Raw("SELECT "+alarmColumns+" FROM alarms WHERE id = ?", id).Scan(&rows).Error; err != nil {
		return alarm.Alarm{}, r.db.fail(ctx, "get alarm "+id, err)
	}
	if len(rows) == 0 {
		return alarm.Alarm{}, fmt.Errorf("get alarm %s: %w", id, ports.ErrNotFound)
	}
	return rows[0].alarm(), nil
}

// alarmFilter is the WHERE clause, and its arguments, of the alarms q selects.
func alarmFilter(q ports.AlarmQuery) (string, []any) {
	conds := []string{"true"}
	var args []any
	if q.EquipmentID != "" {
		conds, args = append(conds, "equipment_id = ?"), append(args, q.EquipmentID)
	}
	if q.SensorType != "" {
		conds, args = append(conds, "sensor_type = ?"), append(args, string(q.SensorType))
	}
	if q.SensorID != "" {
		match, matchArgs := sensorMatch("", q.SensorID)
		conds, args = append(conds, match), append(args, matchArgs...)
	}
	if len(q.Severities) > 0 {
		conds, args = append(conds, "severity = ANY (?::text[])"), append(args, array(texts(q.Severities)))
	}
	if len(q.States) > 0 {
		conds, args = append(conds, "state = ANY (?::text[])"), append(args, array(texts(q.States)))
	}
	if !q.From.IsZero() {
		conds, args = append(conds, "opened_at >= ?"), append(args, q.From)
	}
	if !q.To.IsZero() {
		conds, args = append(conds, "opened_at < ?"), append(args, q.To)
	}
	return strings.Join(conds, " AND "), args
}

func texts[S ~string](in []S) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = string(s)
	}
	return out
}

// Find implements ports.AlarmRepository; the count and the page are read in one
// repeatable-read transaction, so that they agree.
func (r *AlarmRepository) Find(ctx context.Context, q ports.AlarmQuery) ([]alarm.Alarm, int64, error) {
	var (
		total int64
		rows  []alarmRow
	)
	where, args := alarmFilter(q)
	order := "opened_at DESC, id DESC"
	if q.Ascending {
		order = "opened_at ASC, id ASC"
	}
	err := r.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Raw("SELECT count(*) FROM alarms WHERE "+where, args...).Scan(&total).Error; err != nil {
			return fmt.Errorf("count: %w", err)
		}
		if q.Limit <= 0 || int64(q.Offset) >= total {
			return nil
		}
		return tx.Raw("SELECT "+alarmColumns+" FROM alarms WHERE "+where+" ORDER BY "+order+" OFFSET ? LIMIT ?",
			append(args[:len(args):len(args)], max(q.Offset, 0), q.Limit)...).Scan(&rows).Error
	}, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, 0, r.db.fail(ctx, "find alarms", err)
	}
	out := make([]alarm.Alarm, len(rows))
	for i, row := range rows {
		out[i] = row.alarm()
	}
	return out, total, nil
}

// Acknowledge implements ports.AlarmRepository: the UPDATE acknowledges the alarm only while
// it is ACTIVE; when it did not, the alarm is read to say why. With announce, the
// announcement's deliveries are enqueued in the acknowledgement's transaction.
func (r *AlarmRepository) Acknowledge(ctx context.Context, id, by, comment string, at time.Time, announce func(alarm.Alarm) event.Event) (alarm.Alarm, error) {
	var rows []alarmRow
	var err error
	if announce == nil {
		err = r.db.gorm.WithContext(ctx).Raw(`UPDATE alarms SET state = 'ACKNOWLEDGED', ack_by = ?, ack_comment = ?, ack_at = ?
			WHERE id = ? AND state = 'ACTIVE' RETURNING `+alarmColumns, by, comment, at, id).Scan(&rows).Error
	} else {
		rows, err = r.acknowledgeAndAnnounce(ctx, id, by, comment, at, announce)
	}
	if err != nil {
		return alarm.Alarm{}, r.db.fail(ctx, "acknowledge alarm "+id, err)
	}
	if len(rows) == 1 {
		return rows[0].alarm(), nil
	}
	a, err := r.Get(ctx, id)
	if err != nil {
		return alarm.Alarm{}, fmt.Errorf("acknowledge alarm %s: %w", id, ports.ErrNotFound)
	}
	return alarm.Alarm{}, fmt.Errorf("acknowledge alarm %s: it is %s: %w", id, a.State, ports.ErrConflict)
}

// acknowledgeAndAnnounce acknowledges the alarm and, when it did, enqueues the deliveries of
// the event that announce makes of it, in one transaction. It returns the alarm acknowledged,
// or none.
func (r *AlarmRepository) acknowledgeAndAnnounce(ctx context.Context, id, by, comment string, at time.Time,
	announce func(alarm.Alarm) event.Event) ([]alarmRow, error) {
	var rows []alarmRow
	err := pgx.BeginFunc(ctx, r.db.pool, func(tx pgx.Tx) error {
		rows = rows[:0]
		var a alarmRow
		err := tx.QueryRow(ctx, `UPDATE alarms SET state = 'ACKNOWLEDGED', ack_by = $1, ack_comment = $2, ack_at = $3
			WHERE id = $4 AND state = 'ACTIVE' RETURNING `+alarmColumns, by, comment, at, id).
			Scan(&a.ID, &a.EquipmentID, &a.SensorType, &a.SensorID, &a.State, &a.Severity, &a.OpenedAt, &a.FirstAt, &a.LastAt,
				&a.ReadingCount, &a.PeakZ, &a.ClearedAt, &a.AckBy, &a.AckComment, &a.AckAt, &a.Flapping, &a.RulesVersion,
				&a.Calm, &a.CalmSince, &a.Cause, &a.EvidenceStatistic, &a.EvidenceLimit, &a.EvidenceWindow, &a.IncidentID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		rows = append(rows, a)
		args, err := enqueueArgs([]event.Event{announce(a.alarm())})
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, enqueueSQL, args...)
		return err
	})
	return rows, err
}

// AnyOpen implements ports.AlarmRepository.
func (r *AlarmRepository) AnyOpen(ctx context.Context, equipmentID string) (bool, error) {
	var open bool
	err := r.db.gorm.WithContext(ctx).
		Raw("SELECT EXISTS (SELECT 1 FROM alarms WHERE equipment_id = ? AND state <> 'CLEARED')", equipmentID).Scan(&open).Error
	if err != nil {
		return false, r.db.fail(ctx, "open alarms of "+equipmentID, err)
	}
	return open, nil
}

// Stats implements ports.AlarmRepository.
func (r *AlarmRepository) Stats(ctx context.Context, s ports.SensorScope, from, to time.Time) (ports.AlarmStats, error) {
	var rows []struct {
		Severity     string
		Opened       int64
		Acknowledged int64
		AckMicros    int64
		Cleared      int64
		ClearMicros  int64
	}
	where, args := alarmFilter(ports.AlarmQuery{EquipmentID: s.EquipmentID, SensorID: s.SensorID, From: from, To: to})
	err := r.db.gorm.WithContext(ctx).Raw(`SELECT severity, count(*) AS opened,
			count(ack_at) AS acknowledged,
			coalesce(sum(extract(epoch FROM ack_at - opened_at) * 1000000), 0)::bigint AS ack_micros,
			count(cleared_at) AS cleared,
			coalesce(sum(extract(epoch FROM cleared_at - opened_at) * 1000000), 0)::bigint AS clear_micros
		FROM alarms WHERE `+where+` GROUP BY severity`, args...).Scan(&rows).Error
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
