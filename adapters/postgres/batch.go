package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// BatchWriter commits processed batches, each in one transaction.
type BatchWriter struct {
	db       *DB
	copyFrom int // the fewest readings a batch writes by COPY
}

var _ ports.BatchWriter = (*BatchWriter)(nil)

// NewBatchWriter returns the batch writer of db.
func NewBatchWriter(db *DB) *BatchWriter { return &BatchWriter{db: db, copyFrom: CopyFrom} }

// WriteBatch implements ports.BatchWriter. The batch is at most seven statements, each taking
// its rows as array parameters, sent together in one round trip as one pipeline, which
// PostgreSQL runs as one implicit transaction: should a statement fail, none of them is
// committed. A fenced batch first holds its partitions (plm_hold_partitions): it share-locks
// their epochs until the batch commits, and fails with an error wrapping ports.ErrFenced when
// one has moved on. Then come the sightings, so that readings and sessions find their
// equipment registered; then the readings, whose statement also appends the counts of the
// rows it inserted to the rollup's deltas and inserts the anomalies of those rows only (a
// reading stored before keeps what was stored with it); then the sessions, the alarms, and,
// for a batch with events, their deliveries (enqueueSQL). Rows that upserts touch are sorted
// by key, so that concurrent writers lock them in the same order. A batch of fences alone
// only checks them: a worker may ask so whether it still holds its partitions.
//
// A batch of CopyFrom readings or more goes by COPY instead (writeByCopy), in one
// transaction: the processor has skipped the readings stored before, so that their keys are
// new, and COPY stores them at several times the speed of the statement. Should a key be
// stored already (a reading repeated in the batch, or written meanwhile by another writer),
// its unique violation rolls that transaction back, and the batch goes by the statements,
// which skip the keys stored.
func (w *BatchWriter) WriteBatch(ctx context.Context, b ports.ProcessedBatch) error {
	if len(b.Fences) == 0 && len(b.Readings) == 0 && len(b.Sightings) == 0 && len(b.Sessions) == 0 && len(b.Alarms) == 0 &&
		len(b.Events) == 0 {
		return nil // anomalies are stored only with their readings
	}
	if len(b.Readings) >= w.copyFrom {
		err := w.writeByCopy(ctx, b)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != uniqueViolation || pgErr.ConstraintName != "reading_keys_pkey" {
			return w.db.fail(ctx, fmt.Sprintf("write batch of %d readings by copy", len(b.Readings)), err)
		}
	}
	return w.writeByStatements(ctx, b)
}

// CopyFrom is the fewest readings a batch writes by COPY.
const CopyFrom = 64

// uniqueViolation is the SQLSTATE of a unique key's violation.
const uniqueViolation = "23505"

// writeByCopy writes b in one transaction: the fences and the sightings, COPY of the keys
// and of the readings, then the rollup's deltas (counted here: every reading is inserted),
// the anomalies, the sessions, the alarms and the deliveries. It fails with the unique
// violation of reading_keys_pkey when a key is stored already.
func (w *BatchWriter) writeByCopy(ctx context.Context, b ports.ProcessedBatch) error {
	return pgx.BeginFunc(ctx, w.db.pool, func(tx pgx.Tx) error {
		var first pgx.Batch
		if len(b.Fences) > 0 {
			args, err := fenceArgs(b.Fences)
			if err != nil {
				return err
			}
			first.Queue(holdPartitionsSQL, args...)
		}
		if len(b.Sightings) > 0 {
			first.Queue(upsertSightingsSQL, sightingArgs(b.Sightings)...)
		}
		if first.Len() > 0 {
			if err := tx.SendBatch(ctx, &first).Close(); err != nil {
				return err
			}
		}
		rs := b.Readings
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"reading_keys"}, []string{"equipment_id", "reading_id", "received_at"},
			pgx.CopyFromSlice(len(rs), func(i int) ([]any, error) {
				return []any{rs[i].EquipmentID, rs[i].ID, rs[i].ReceivedAt}, nil
			})); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"sensor_readings"}, readingColumnList,
			pgx.CopyFromSlice(len(rs), func(i int) ([]any, error) {
				r := rs[i]
				return []any{r.EquipmentID, r.ID, string(r.Type), r.SensorID, r.Value, r.Unit, r.Timestamp, r.ReceivedAt, r.Anomalous}, nil
			})); err != nil {
			return err
		}
		var rest pgx.Batch
		rest.Queue(insertDeltasSQL, deltaArgs(rs)...)
		if as := anomaliesOf(rs, b.Anomalies); len(as) > 0 {
			rest.Queue(insertAnomaliesSQL, anomalyArgs(as)...)
		}
		if len(b.Sessions) > 0 {
			rest.Queue(upsertSessionsSQL, sessionArgs(b.Sessions)...)
		}
		if len(b.Alarms) > 0 {
			rest.Queue(upsertAlarmsSQL, alarmArgs(b.Alarms)...)
		}
		if len(b.Events) > 0 {
			args, err := enqueueArgs(b.Events)
			if err != nil {
				return err
			}
			rest.Queue(enqueueSQL, args...)
		}
		return tx.SendBatch(ctx, &rest).Close()
	})
}

// readingColumnList is the columns of sensor_readings that a reading fills.
var readingColumnList = []string{"equipment_id", "reading_id", "sensor_type", "sensor_id", "value", "unit", "ts",
	"received_at", "anomalous"}

// insertDeltasSQL appends counts of readings, by sensor and hour, to the rollups' deltas.
const insertDeltasSQL = `INSERT INTO reading_count_deltas (equipment_id, sensor_type, sensor_id, hour, readings)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::int8[])`

// deltaArgs counts rs by sensor and hour (hours aligned to the Unix epoch, as date_bin
// aligns them in insertReadingsSQL).
func deltaArgs(rs []ports.StoredReading) []any {
	type key struct {
		sensor sensor.Key
		hour   int64
	}
	counts := make(map[key]int64)
	var order []key
	for _, r := range rs {
		k := key{r.Key(), hourOf(r.Timestamp)}
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	n := len(order)
	eq, typ, id, hour, count := make([]string, n), make([]string, n), make([]string, n), make([]time.Time, n), make([]int64, n)
	for i, k := range order {
		eq[i], typ[i], id[i] = k.sensor.EquipmentID, string(k.sensor.Type), k.sensor.Sensor
		hour[i], count[i] = time.Unix(k.hour*3600, 0).UTC(), counts[k]
	}
	return []any{eq, typ, id, hour, count}
}

// hourOf is the number of the hour since the Unix epoch that t falls in, rounded down.
func hourOf(t time.Time) int64 {
	s := t.Unix()
	h := s / 3600
	if s%3600 < 0 {
		h--
	}
	return h
}

// anomaliesOf is those of as whose reading is in rs: an anomaly is stored with its reading.
func anomaliesOf(rs []ports.StoredReading, as []anomaly.Anomaly) []anomaly.Anomaly {
	if len(as) == 0 {
		return nil
	}
	in := make(map[ports.ReadingRef]bool, len(rs))
	for _, r := range rs {
		in[ports.ReadingRef{EquipmentID: r.EquipmentID, ReadingID: r.ID}] = true
	}
	out := make([]anomaly.Anomaly, 0, len(as))
	for _, a := range as {
		if in[ports.ReadingRef{EquipmentID: a.EquipmentID, ReadingID: a.ReadingID}] {
			out = append(out, a)
		}
	}
	return out
}

// insertAnomaliesSQL inserts anomalies ($1-$13) whose readings the same transaction inserted.
const insertAnomaliesSQL = `INSERT INTO anomalies (id, equipment_id, reading_id, sensor_type, sensor_id, value, z_score,
		mean, std_dev, window_size, severity, ts, detected_at)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[],
			$8::float8[], $9::float8[], $10::int4[], $11::text[], $12::timestamptz[], $13::timestamptz[])
	ON CONFLICT DO NOTHING`

// writeByStatements writes b in one pipeline of statements, skipping the readings whose keys
// are stored.
func (w *BatchWriter) writeByStatements(ctx context.Context, b ports.ProcessedBatch) error {
	type step struct {
		op   string
		sql  string
		args []any
	}
	var steps []step
	if len(b.Fences) > 0 {
		args, err := fenceArgs(b.Fences)
		if err != nil {
			return fmt.Errorf("write batch of %d readings: %w", len(b.Readings), err)
		}
		steps = append(steps, step{fmt.Sprintf("hold %d partitions", len(b.Fences)), holdPartitionsSQL, args})
	}
	if len(b.Sightings) > 0 {
		steps = append(steps, step{fmt.Sprintf("upsert %d equipment sightings", len(b.Sightings)),
			upsertSightingsSQL, sightingArgs(b.Sightings)})
	}
	if len(b.Readings) > 0 {
		steps = append(steps, step{fmt.Sprintf("insert %d readings with %d anomalies", len(b.Readings), len(b.Anomalies)),
			insertReadingsSQL, append(readingArgs(b.Readings), anomalyArgs(b.Anomalies)...)})
	}
	if len(b.Sessions) > 0 {
		steps = append(steps, step{fmt.Sprintf("upsert %d sessions", len(b.Sessions)),
			upsertSessionsSQL, sessionArgs(b.Sessions)})
	}
	if len(b.Alarms) > 0 {
		steps = append(steps, step{fmt.Sprintf("upsert %d alarms", len(b.Alarms)), upsertAlarmsSQL, alarmArgs(b.Alarms)})
	}
	if len(b.Events) > 0 {
		args, err := enqueueArgs(b.Events)
		if err != nil {
			return fmt.Errorf("write batch of %d readings: %w", len(b.Readings), err)
		}
		steps = append(steps, step{fmt.Sprintf("enqueue the deliveries of %d events", len(b.Events)), enqueueSQL, args})
	}
	var batch pgx.Batch
	for _, s := range steps {
		batch.Queue(s.sql, s.args...)
	}
	results := w.db.pool.SendBatch(ctx, &batch)
	var err error
	for _, s := range steps {
		if _, err = results.Exec(); err != nil {
			err = fmt.Errorf("%s: %w", s.op, err)
			break
		}
	}
	if cerr := results.Close(); err == nil {
		err = cerr
	}
	return w.db.fail(ctx, fmt.Sprintf("write batch of %d readings", len(b.Readings)), err)
}

// holdPartitionsSQL share-locks the epochs of the partitions ($1) until the transaction ends,
// and raises SQLSTATE PLM01 unless each is at its epoch ($2). See migration 0004.
const holdPartitionsSQL = `SELECT plm_hold_partitions($1::int4[], $2::int8[])`

func fenceArgs(fences []ports.Fence) ([]any, error) {
	partitions, epochs := make([]int32, len(fences)), make([]int64, len(fences))
	for i, f := range fences {
		p, err := partitionNumber(f.Partition)
		if err != nil {
			return nil, err
		}
		partitions[i], epochs[i] = p, f.Epoch
	}
	return []any{partitions, epochs}, nil
}

// upsertSightingsSQL registers unknown equipment (created when first seen: by its first
// sighting in the batch) and moves last_seen_at and last_anomaly_at forward only (max and
// GREATEST ignore NULL, "never"). Sightings of one equipment are folded into one row: an
// upsert may touch a row once.
const upsertSightingsSQL = `INSERT INTO equipment (id, created_at, last_seen_at, last_anomaly_at)
	SELECT id, (array_agg(created_at ORDER BY n))[1], max(last_seen_at), max(last_anomaly_at)
	FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[])
		WITH ORDINALITY AS s (id, created_at, last_seen_at, last_anomaly_at, n)
	GROUP BY id ORDER BY id
	ON CONFLICT (id) DO UPDATE SET
		last_seen_at = GREATEST(equipment.last_seen_at, excluded.last_seen_at),
		last_anomaly_at = GREATEST(equipment.last_anomaly_at, excluded.last_anomaly_at)`

func sightingArgs(sightings []ports.Sighting) []any {
	ids := make([]string, len(sightings))
	created := make([]time.Time, len(sightings))
	seen := make([]pgtype.Timestamptz, len(sightings))
	flagged := make([]pgtype.Timestamptz, len(sightings))
	for i, s := range sightings {
		ids[i], created[i], seen[i], flagged[i] = s.EquipmentID, s.LastSeenAt, nullTime(s.LastSeenAt), nullTime(s.LastAnomalyAt)
	}
	return []any{ids, created, seen, flagged}
}

// nullTime stores the zero time ("never") as NULL.
func nullTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// insertReadingsSQL inserts the readings ($1-$9) not stored yet, in the order given (seq
// follows it), appends the counts of the rows it inserted, by sensor and hour, to
// reading_count_deltas, and inserts the anomalies ($10-$22) of those rows. A reading repeated
// within the batch is inserted once, the first time. Whether a reading is stored is whether
// its key is in reading_keys (migration 0008): the statement inserts the keys first, in key
// order (so that writers racing over the same keys lock them in one order), and the readings
// whose key it inserted.
const insertReadingsSQL = `WITH input AS (
		SELECT DISTINCT ON (equipment_id, reading_id) *
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::text[], $7::timestamptz[],
				$8::timestamptz[], $9::bool[])
			WITH ORDINALITY AS r (equipment_id, reading_id, sensor_type, sensor_id, value, unit, ts, received_at,
				anomalous, n)
		ORDER BY equipment_id, reading_id, n
	), fresh AS (
		INSERT INTO reading_keys (equipment_id, reading_id, received_at)
		SELECT equipment_id, reading_id, received_at FROM input ORDER BY equipment_id, reading_id
		ON CONFLICT DO NOTHING
		RETURNING equipment_id, reading_id
	), added AS (
		INSERT INTO sensor_readings (equipment_id, reading_id, sensor_type, sensor_id, value, unit, ts, received_at,
			anomalous)
		SELECT i.equipment_id, i.reading_id, i.sensor_type, i.sensor_id, i.value, i.unit, i.ts, i.received_at,
			i.anomalous
		FROM input i JOIN fresh f ON f.equipment_id = i.equipment_id AND f.reading_id = i.reading_id
		ORDER BY i.n
		RETURNING equipment_id, reading_id, sensor_type, sensor_id, ts
	), counted AS (
		INSERT INTO reading_count_deltas (equipment_id, sensor_type, sensor_id, hour, readings)
		SELECT equipment_id, sensor_type, sensor_id, date_bin('1 hour', ts, timestamptz 'epoch'), count(*)
		FROM added GROUP BY 1, 2, 3, 4
	)
	INSERT INTO anomalies (id, equipment_id, reading_id, sensor_type, sensor_id, value, z_score, mean, std_dev,
		window_size, severity, ts, detected_at)
	SELECT a.id, a.equipment_id, a.reading_id, a.sensor_type, a.sensor_id, a.value, a.z_score, a.mean, a.std_dev,
		a.window_size, a.severity, a.ts, a.detected_at
	FROM unnest($10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::float8[], $16::float8[],
			$17::float8[], $18::float8[], $19::int4[], $20::text[], $21::timestamptz[], $22::timestamptz[])
		AS a (id, equipment_id, reading_id, sensor_type, sensor_id, value, z_score, mean, std_dev, window_size,
			severity, ts, detected_at)
	JOIN added ON added.equipment_id = a.equipment_id AND added.reading_id = a.reading_id
	ON CONFLICT DO NOTHING`

func readingArgs(readings []ports.StoredReading) []any {
	n := len(readings)
	eq, id, typ, sensorID, unit := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	value := make([]float64, n)
	ts, received := make([]time.Time, n), make([]time.Time, n)
	flagged := make([]bool, n)
	for i, r := range readings {
		eq[i], id[i], typ[i], sensorID[i], unit[i] = r.EquipmentID, r.ID, string(r.Type), r.SensorID, r.Unit
		value[i], ts[i], received[i], flagged[i] = r.Value, r.Timestamp, r.ReceivedAt, r.Anomalous
	}
	return []any{eq, id, typ, sensorID, value, unit, ts, received, flagged}
}

func anomalyArgs(as []anomaly.Anomaly) []any {
	n := len(as)
	id, eq, reading, typ, sev := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	sensorID := make([]string, n)
	value, z, mean, sd := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	window := make([]int32, n)
	ts, detected := make([]time.Time, n), make([]time.Time, n)
	for i, a := range as {
		id[i], eq[i], reading[i], typ[i], sev[i] = a.ID, a.EquipmentID, a.ReadingID, string(a.SensorType), string(a.Severity)
		sensorID[i] = a.SensorID
		value[i], z[i], mean[i], sd[i] = a.Value, a.ZScore, a.Mean, a.StdDev
		window[i], ts[i], detected[i] = int32(a.WindowSize), a.Timestamp, a.DetectedAt
	}
	return []any{id, eq, reading, typ, sensorID, value, z, mean, sd, window, sev, ts, detected}
}

// upsertSessionsSQL inserts the sessions, or gives a stored one with the same start the
// later end. Sessions with the same start in one batch are folded into one row.
const upsertSessionsSQL = `INSERT INTO equipment_sessions (equipment_id, start_at, end_at)
	SELECT equipment_id, start_at, max(end_at)
	FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS s (equipment_id, start_at, end_at)
	GROUP BY 1, 2 ORDER BY 1, 2
	ON CONFLICT (equipment_id, start_at) DO UPDATE SET end_at = GREATEST(equipment_sessions.end_at, excluded.end_at)`

func sessionArgs(sessions []equipment.Session) []any {
	eq := make([]string, len(sessions))
	start, end := make([]time.Time, len(sessions)), make([]time.Time, len(sessions))
	for i, s := range sessions {
		eq[i], start[i], end[i] = s.EquipmentID, s.Start, s.End
	}
	return []any{eq, start, end}
}
