package sqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"gorm.io/gorm"

	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/ports"
)

// maxVariables bounds the bound parameters of one statement: a large batch is split into
// multi-row statements of at most this many. SQLite allows 32766, but the driver matches
// parameters to placeholders in time quadratic in their number, so that statements of a few
// hundred parameters are the fastest.
const maxVariables = 500

// BatchWriter commits processed batches, each in one transaction.
type BatchWriter struct{ db *DB }

var _ ports.BatchWriter = (*BatchWriter)(nil)

// NewBatchWriter returns the batch writer of db.
func NewBatchWriter(db *DB) *BatchWriter { return &BatchWriter{db: db} }

// ErrFencingUnsupported is returned by WriteBatch for a batch with fences: the embedded
// database serves one process, whose queue has no partitions to fence.
var ErrFencingUnsupported = errors.New("fencing partitions needs PostgreSQL")

// WriteBatch implements ports.BatchWriter. Sightings go first, so that readings, anomalies
// and sessions find their equipment registered. Anomalies are inserted only for readings that
// this call inserted: a reading stored before keeps what was stored with it. Last, the
// deliveries of the batch's events are enqueued. A batch with fences is refused whole
// (ErrFencingUnsupported).
func (w *BatchWriter) WriteBatch(ctx context.Context, b ports.ProcessedBatch) error {
	if len(b.Fences) > 0 {
		return fmt.Errorf("write batch of %d readings: %w", len(b.Readings), ErrFencingUnsupported)
	}
	if len(b.Readings) == 0 && len(b.Anomalies) == 0 && len(b.Sightings) == 0 && len(b.Sessions) == 0 && len(b.Alarms) == 0 &&
		len(b.Events) == 0 {
		return nil
	}
	err := w.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := upsertSightings(tx, b.Sightings); err != nil {
			return err
		}
		added, err := insertReadings(tx, b.Readings)
		if err != nil {
			return err
		}
		if err := insertAnomalies(tx, b.Anomalies, added); err != nil {
			return err
		}
		if err := upsertSessions(tx, b.Sessions); err != nil {
			return err
		}
		if err := upsertAlarms(tx, b.Alarms); err != nil {
			return err
		}
		return enqueue(tx, b.Events)
	})
	return w.db.fail(ctx, fmt.Sprintf("write batch of %d readings", len(b.Readings)), err)
}

// multiRow is an INSERT of rows rows of cols placeholders each: head, the VALUES, then tail.
func multiRow(head string, cols, rows int, tail string) string {
	tuple := "(" + strings.Repeat("?, ", cols-1) + "?)"
	var sb strings.Builder
	sb.Grow(len(head) + rows*(len(tuple)+2) + len(tail) + 16)
	sb.WriteString(head)
	sb.WriteString(" VALUES ")
	for i := range rows {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(tuple)
	}
	sb.WriteString(" ")
	sb.WriteString(tail)
	return sb.String()
}

const sightingCols = 4

// upsertSightings registers unknown equipment (created when first seen) and moves
// last_seen_at and last_anomaly_at forward only; NULL stands for never.
func upsertSightings(tx *gorm.DB, sightings []ports.Sighting) error {
	for chunk := range slices.Chunk(sightings, maxVariables/sightingCols) {
		args := make([]any, 0, len(chunk)*sightingCols)
		for _, s := range chunk {
			args = append(args, s.EquipmentID, micros(s.LastSeenAt), nullMicros(s.LastSeenAt), nullMicros(s.LastAnomalyAt))
		}
		q := multiRow("INSERT INTO equipment (id, created_at, last_seen_at, last_anomaly_at)", sightingCols, len(chunk),
			`ON CONFLICT (id) DO UPDATE SET
				last_seen_at = max(coalesce(equipment.last_seen_at, excluded.last_seen_at),
				                   coalesce(excluded.last_seen_at, equipment.last_seen_at)),
				last_anomaly_at = max(coalesce(equipment.last_anomaly_at, excluded.last_anomaly_at),
				                      coalesce(excluded.last_anomaly_at, equipment.last_anomaly_at))`)
		if err := tx.Exec(q, args...).Error; err != nil {
			return fmt.Errorf("upsert %d equipment sightings: %w", len(chunk), err)
		}
	}
	return nil
}

const readingCols = 9

// insertReadings inserts the readings not stored yet and returns which ones it inserted.
func insertReadings(tx *gorm.DB, readings []ports.StoredReading) (map[ports.ReadingRef]bool, error) {
	added := make(map[ports.ReadingRef]bool, len(readings))
	for chunk := range slices.Chunk(readings, maxVariables/readingCols) {
		args := make([]any, 0, len(chunk)*readingCols)
		for _, r := range chunk {
			args = append(args, r.EquipmentID, r.ID, string(r.Type), r.SensorID, r.Value, r.Unit,
				micros(r.Timestamp), micros(r.ReceivedAt), boolInt(r.Anomalous))
		}
		q := multiRow("INSERT INTO sensor_readings ("+readingColumns+")",
			readingCols, len(chunk), "ON CONFLICT DO NOTHING RETURNING equipment_id, reading_id")
		if err := scanRefs(tx.Raw(q, args...), added); err != nil {
			return nil, fmt.Errorf("insert %d readings: %w", len(chunk), err)
		}
	}
	return added, nil
}

// scanRefs runs a query answering (equipment_id, reading_id) rows and marks each in into.
func scanRefs(q *gorm.DB, into map[ports.ReadingRef]bool) error {
	rows, err := q.Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var ref ports.ReadingRef
		if err := rows.Scan(&ref.EquipmentID, &ref.ReadingID); err != nil {
			return err
		}
		into[ref] = true
	}
	return rows.Err()
}

const anomalyCols = 13

// insertAnomalies inserts the anomalies of the readings in added.
func insertAnomalies(tx *gorm.DB, all []anomaly.Anomaly, added map[ports.ReadingRef]bool) error {
	fresh := make([]anomaly.Anomaly, 0, len(all))
	for _, a := range all {
		if added[ports.ReadingRef{EquipmentID: a.EquipmentID, ReadingID: a.ReadingID}] {
			fresh = append(fresh, a)
		}
	}
	for chunk := range slices.Chunk(fresh, maxVariables/anomalyCols) {
		args := make([]any, 0, len(chunk)*anomalyCols)
		for _, a := range chunk {
			args = append(args, a.ID, a.EquipmentID, a.ReadingID, string(a.SensorType), a.SensorID, a.Value, a.ZScore,
				a.Mean, a.StdDev, int64(a.WindowSize), string(a.Severity), micros(a.Timestamp), micros(a.DetectedAt))
		}
		q := multiRow(`INSERT INTO anomalies (id, equipment_id, reading_id, sensor_type, sensor_id, value, z_score,
			mean, std_dev, window_size, severity, ts, detected_at)`, anomalyCols, len(chunk), "ON CONFLICT DO NOTHING")
		if err := tx.Exec(q, args...).Error; err != nil {
			return fmt.Errorf("insert %d anomalies: %w", len(chunk), err)
		}
	}
	return nil
}

const sessionCols = 3

// upsertSessions inserts the sessions, or gives a stored one with the same start the later end.
func upsertSessions(tx *gorm.DB, sessions []equipment.Session) error {
	for chunk := range slices.Chunk(sessions, maxVariables/sessionCols) {
		args := make([]any, 0, len(chunk)*sessionCols)
		for _, s := range chunk {
			args = append(args, s.EquipmentID, micros(s.Start), micros(s.End))
		}
		q := multiRow("INSERT INTO equipment_sessions (equipment_id, start_at, end_at)", sessionCols, len(chunk),
			"ON CONFLICT (equipment_id, start_at) DO UPDATE SET end_at = max(equipment_sessions.end_at, excluded.end_at)")
		if err := tx.Exec(q, args...).Error; err != nil {
			return fmt.Errorf("upsert %d sessions: %w", len(chunk), err)
		}
	}
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
