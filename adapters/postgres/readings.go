package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/gorm"

	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// ReadingRepository reads stored readings.
type ReadingRepository struct{ db *DB }

var _ ports.ReadingRepository = (*ReadingRepository)(nil)

// NewReadingRepository returns the reading repository of db.
func NewReadingRepository(db *DB) *ReadingRepository { return &ReadingRepository{db: db} }

// ErrBadInterval is returned for a bucket or interval shorter than a microsecond.
var ErrBadInterval = errors.New("interval must be at least one microsecond")

// statement is one SQL statement with "?" placeholders and its arguments, as GORM's Raw
// takes them. Each query is built by one function, so that tests can EXPLAIN exactly what
// the repositories run.
type statement struct {
	sql  string
	args []any
}

func (s statement) on(db *gorm.DB) *gorm.DB { return db.Raw(s.sql, s.args...) }

// array is elems as one PostgreSQL array parameter: GORM would spread a slice into a list.
func array[T any](elems []T) pgtype.Array[T] {
	a := pgtype.Array[T]{Elements: elems, Valid: true}
	if len(elems) > 0 {
		a.Dims = []pgtype.ArrayDimension{{Length: int32(len(elems)), LowerBound: 1}}
	}
	return a
}

// readingRow is a row of sensor_readings.
type readingRow struct {
	EquipmentID string
	ReadingID   string
	SensorType  string
	SensorID    string
	Value       float64
	Unit        string
	Ts          time.Time
	ReceivedAt  time.Time
	Anomalous   bool
}

func (r readingRow) stored() ports.StoredReading {
	return ports.StoredReading{
		Reading: sensor.Reading{
			ID: r.ReadingID, EquipmentID: r.EquipmentID, Type: sensor.Type(r.SensorType), SensorID: r.SensorID,
			Value: r.Value, Unit: r.Unit, Timestamp: r.Ts.UTC(), ReceivedAt: r.ReceivedAt.UTC(),
		},
		Anomalous: r.Anomalous,
	}
}

const readingColumns = "equipment_id, reading_id, sensor_type, sensor_id, value, unit, ts, received_at, anomalous"

// epochBucket is the SQL for the start of the bucket that column col falls in: buckets of
// "?" microseconds aligned to the Unix epoch, rounded down before it too (the contract
// suite's cases before 1970 check that the server's date_bin does so).
func epochBucket(col string) string {
	return "date_bin(?::bigint * interval '1 microsecond', " + col + ", timestamptz 'epoch')"
}

// typesOf lists the sensor types a query asks for: typ, or the contract's types for "".
func typesOf(typ sensor.Type) []string {
	if typ != "" {
		return []string{string(typ)}
	}
	out := make([]string, len(sensor.Types))
	for i, t := range sensor.Types {
		out[i] = string(t)
	}
	return out
}

// builder writes a statement piece by piece, each piece with the arguments of its "?", so
// that the arguments stay in the order of their placeholders.
type builder struct {
	sql  strings.Builder
	args []any
}

func (b *builder) add(sql string, args ...any) *builder {
	b.sql.WriteString(sql)
	b.args = append(b.args, args...)
	return b
}

func (b *builder) statement() statement { return statement{b.sql.String(), b.args} }

// sensorMatch is sensor.Matches in SQL, over the columns of the table aliased alias ("" for
// none): the rows of the sensor that a query names id.
func sensorMatch(alias, id string) (string, []any) {
	if alias != "" {
		alias += "."
	}
	return "(" + alias + "sensor_id = ? OR " + alias + "sensor_id = '' AND " + alias + "sensor_type = ?)", []any{id, id}
}

// sensorsCTE is the common table expressions, for a WITH RECURSIVE, that end in
// sensors (sensor_type, sensor_id, lo, hi): the sensors of one equipment, each with a range
// [lo, hi) of timestamps that holds its newest reading. They come from the rollup by sensor
// (migration 0011), and the deltas not folded into it yet:
//
//   - known: its sensors, by a skip scan of its primary key (one look-up per sensor, however
//     many hours it counts);
//   - typed: the last hour of each: its newest reading is in that hour;
//   - unattributed: the first and last hours whose readings are counted by equipment only
//     (counted before 0011, or by an earlier build), of which sensors have no id and are of
//     the contract's types: each such sensor whose last hour is not known has its newest
//     reading between them.
//
// A reading is counted in the transaction that stores it: every stored reading is within
// the range of its sensor, in the statement's snapshot.
func sensorsCTE(equipmentID string) (string, []any) {
	eq := equipmentID
	return `known (sensor_id, sensor_type) AS (
			(SELECT sensor_id, sensor_type FROM sensor_reading_counts WHERE equipment_id = ?
			ORDER BY sensor_id, sensor_type LIMIT 1)
		UNION ALL
			SELECT n.sensor_id, n.sensor_type FROM known k CROSS JOIN LATERAL (
				SELECT c.sensor_id, c.sensor_type FROM sensor_reading_counts c
				WHERE c.equipment_id = ? AND (c.sensor_id, c.sensor_type) > (k.sensor_id, k.sensor_type)
				ORDER BY c.sensor_id, c.sensor_type LIMIT 1
			) n
	), typed AS (
		SELECT sensor_type, sensor_id, max(last) AS last FROM (
			SELECT k.sensor_type, k.sensor_id, (SELECT max(c.hour) FROM sensor_reading_counts c
				WHERE c.equipment_id = ? AND c.sensor_id = k.sensor_id AND c.sensor_type = k.sensor_type) AS last
			FROM known k
			UNION ALL
			SELECT sensor_type, sensor_id, max(hour) FROM reading_count_deltas
			WHERE equipment_id = ? AND sensor_type <> '' GROUP BY 1, 2
		) h GROUP BY 1, 2
	), unattributed AS (
		SELECT min(first) AS first, max(last) AS last FROM (
			SELECT CASE WHEN u.last IS NOT NULL THEN (SELECT min(hour) FROM reading_counts
					WHERE equipment_id = ? AND readings > attributed) END AS first, u.last
			FROM (SELECT max(hour) AS last FROM reading_counts WHERE equipment_id = ? AND readings > attributed) u
			UNION ALL
			SELECT min(hour), max(hour) FROM reading_count_deltas WHERE equipment_id = ? AND sensor_type = ''
		) h
	), sensors AS (
		SELECT sensor_type, sensor_id, coalesce(t.last, u.first) AS lo,
			greatest(t.last, CASE WHEN o.sensor_type IS NOT NULL THEN u.last END) + interval '1 hour' AS hi
		FROM typed t
		FULL JOIN (
			SELECT c.sensor_type, ''::text AS sensor_id FROM unattributed, unnest(?::text[]) AS c (sensor_type)
			WHERE unattributed.last IS NOT NULL
		) o USING (sensor_type, sensor_id)
		CROSS JOIN unattributed u
	)`, []any{eq, eq, eq, eq, eq, eq, eq, array(typesOf(""))}
}

// typesWith adds to b the types of the sensors a query of one equipment asks for, as an
// array expression: typ, or, for "", the types of the equipment's sensors, of those named
// sensorID if set. Naming the types lets the (equipment_id, sensor_type, ts DESC) index serve
// a query of every type. The expression of the equipment's types reads the CTE "sensors"
// (sensorsCTE); needsSensors says whether it does.
func typesWith(b *builder, typ sensor.Type, sensorID string) {
	if typ != "" {
		b.add("?::text[]", array([]string{string(typ)}))
		return
	}
	b.add("ARRAY(SELECT DISTINCT sensor_type FROM sensors")
	if sensorID != "" {
		match, args := sensorMatch("", sensorID)
		b.add(" WHERE "+match, args...)
	}
	b.add(")")
}

// needsSensors says whether typesWith reads the CTE "sensors".
func needsSensors(typ sensor.Type) bool { return typ == "" }

// withSensors starts b with the CTE "sensors" of equipmentID, and returns b, when need.
func withSensors(b *builder, need bool, equipmentID string) *builder {
	if need {
		sql, args := sensorsCTE(equipmentID)
		b.add("WITH RECURSIVE "+sql+"\n", args...)
	}
	return b
}

// StoredRefs implements ports.ReadingRepository: the refs, as two arrays, drive look-ups in
// the primary key of reading_keys, in one statement however many they are. It runs for
// every message the workers handle, so it goes straight to the pgx pool, not through GORM.
func (r *ReadingRepository) StoredRefs(ctx context.Context, refs []ports.ReadingRef) (map[ports.ReadingRef]bool, error) {
	out := make(map[ports.ReadingRef]bool, len(refs))
	if len(refs) == 0 {
		return out, nil
	}
	eq, id := make([]string, len(refs)), make([]string, len(refs))
	for i, ref := range refs {
		eq[i], id[i] = ref.EquipmentID, ref.ReadingID
	}
	rows, err := r.db.pool.Query(ctx, storedRefsSQL, eq, id)
	if err == nil {
		var ref ports.ReadingRef
		_, err = pgx.ForEachRow(rows, []any{&ref.EquipmentID, &ref.ReadingID}, func() error {
			out[ref] = true
			return nil
		})
	}
	if err != nil {
		return nil, r.db.fail(ctx, fmt.Sprintf("look up %d stored readings", len(refs)), err)
	}
	return out, nil
}

const storedRefsSQL = `SELECT s.equipment_id, s.reading_id
	FROM unnest($1::text[], $2::text[]) AS r (equipment_id, reading_id)
	JOIN reading_keys s ON s.equipment_id = r.equipment_id AND s.reading_id = r.reading_id`

// RecentValues implements ports.ReadingRepository.
func (r *ReadingRepository) RecentValues(ctx context.Context, k sensor.Key, n int) ([]float64, error) {
	if n <= 0 {
		return []float64{}, nil
	}
	var values []float64
	if err := recentValuesStatement(k, n).on(r.db.gorm.WithContext(ctx)).Scan(&values).Error; err != nil {
		return nil, r.db.fail(ctx, fmt.Sprintf("recent values of %s/%s", k.EquipmentID, k.ID()), err)
	}
	slices.Reverse(values)
	return values, nil
}

// recentValuesStatement reads the sensor's readings newest first from the index of its
// type, skipping the other sensors of that type: they are few, and all report.
func recentValuesStatement(k sensor.Key, n int) statement {
	return statement{`SELECT value FROM sensor_readings
		WHERE equipment_id = ? AND sensor_type = ? AND sensor_id = ? ORDER BY ts DESC, seq DESC LIMIT ?`,
		[]any{k.EquipmentID, string(k.Type), k.Sensor, n}}
}

// History implements ports.ReadingRepository.
func (r *ReadingRepository) History(ctx context.Context, q ports.HistoryQuery) ([]ports.StoredReading, error) {
	if q.Limit <= 0 {
		return []ports.StoredReading{}, nil
	}
	var rows []readingRow
	if err := historyStatement(q).on(r.db.gorm.WithContext(ctx)).Scan(&rows).Error; err != nil {
		return nil, r.db.fail(ctx, "history of "+q.EquipmentID, err)
	}
	out := make([]ports.StoredReading, len(rows))
	for i, row := range rows {
		out[len(rows)-1-i] = row.stored()
	}
	return out, nil
}

// historyStatement reads, for each sensor type asked for, the latest Limit readings in range
// of the sensors asked for (a backward scan of its (equipment_id, sensor_type, ts) index that
// stops at Limit), then keeps the latest Limit of them all, latest first.
func historyStatement(q ports.HistoryQuery) statement {
	b := withSensors(&builder{}, needsSensors(q.SensorType), q.EquipmentID)
	b.add("SELECT r.* FROM unnest(")
	typesWith(b, q.SensorType, q.SensorID)
	b.add(`) AS t (sensor_type)
		CROSS JOIN LATERAL (
			SELECT `+readingColumns+`, seq FROM sensor_readings s
			WHERE s.equipment_id = ? AND s.sensor_type = t.sensor_type AND s.ts >= ? AND s.ts < ?`,
		q.EquipmentID, q.From, q.To)
	if q.SensorID != "" {
		match, args := sensorMatch("s", q.SensorID)
		b.add(" AND "+match, args...)
	}
	return b.add(`
			ORDER BY s.ts DESC, s.seq DESC LIMIT ?
		) r
		ORDER BY r.ts DESC, r.seq DESC LIMIT ?`, q.Limit, q.Limit).statement()
}

// averageRow is one bucket of one sensor.
type averageRow struct {
	SensorType string
	SensorID   string
	Bucket     time.Time
	Avg        float64
	Min        float64
	Max        float64
	Count      int64
}

// Averages implements ports.ReadingRepository.
func (r *ReadingRepository) Averages(ctx context.Context, q ports.HistoryQuery, interval time.Duration) ([]ports.AveragePoint, error) {
	op := "average history of " + q.EquipmentID
	if interval.Microseconds() <= 0 {
		return nil, fmt.Errorf("%s: %w", op, ErrBadInterval)
	}
	if q.Limit <= 0 {
		return []ports.AveragePoint{}, nil
	}
	var rows []averageRow
	if err := averagesStatement(q, interval).on(r.db.gorm.WithContext(ctx)).Scan(&rows).Error; err != nil {
		return nil, r.db.fail(ctx, op, err)
	}
	out := make([]ports.AveragePoint, len(rows))
	for i, row := range rows {
		out[len(rows)-1-i] = ports.AveragePoint{
			SensorType: sensor.Type(row.SensorType), SensorID: row.SensorID, Bucket: row.Bucket.UTC(),
			Avg: row.Avg, Min: row.Min, Max: row.Max, Count: row.Count,
		}
	}
	return out, nil
}

func averagesStatement(q ports.HistoryQuery, interval time.Duration) statement {
	b := withSensors(&builder{}, needsSensors(q.SensorType), q.EquipmentID)
	b.add(`SELECT sensor_type, sensor_id, `+epochBucket("ts")+` AS bucket,
			avg(value) AS avg, min(value) AS min, max(value) AS max, count(*) AS count
		FROM sensor_readings
		WHERE equipment_id = ? AND sensor_type = ANY (`, interval.Microseconds(), q.EquipmentID)
	typesWith(b, q.SensorType, q.SensorID)
	b.add(") AND ts >= ? AND ts < ?", q.From, q.To)
	if q.SensorID != "" {
		match, args := sensorMatch("", q.SensorID)
		b.add(" AND "+match, args...)
	}
	return b.add(`
		GROUP BY bucket, sensor_type, sensor_id
		ORDER BY bucket DESC, sensor_type DESC, sensor_id DESC LIMIT ?`, q.Limit).statement()
}

// Latest implements ports.ReadingRepository: one indexed look-up per sensor, within the hour
// of its newest reading.
func (r *ReadingRepository) Latest(ctx context.Context, equipmentID string) ([]ports.StoredReading, error) {
	var rows []readingRow
	if err := latestStatement(equipmentID).on(r.db.gorm.WithContext(ctx)).Scan(&rows).Error; err != nil {
		return nil, r.db.fail(ctx, "latest readings of "+equipmentID, err)
	}
	out := make([]ports.StoredReading, len(rows))
	for i, row := range rows {
		out[i] = row.stored()
	}
	return out, nil
}

// latestStatement reads the newest reading of each sensor in the range that sensorsCTE gives
// it, in the order of sensor.CompareKeys: the contract's types first, in their order.
func latestStatement(equipmentID string) statement {
	b := withSensors(&builder{}, true, equipmentID)
	return b.add(`SELECT r.* FROM sensors c
		CROSS JOIN LATERAL (
			SELECT `+readingColumns+` FROM sensor_readings s
			WHERE s.equipment_id = ? AND s.sensor_type = c.sensor_type AND s.sensor_id = c.sensor_id
				AND s.ts >= c.lo AND s.ts < c.hi
			ORDER BY s.ts DESC, s.seq DESC LIMIT 1
		) r
		ORDER BY array_position(?::text[], r.sensor_type), r.sensor_type, r.sensor_id`,
		equipmentID, array(typesOf(""))).statement()
}

// CountByBucket implements ports.ReadingRepository. When buckets are whole hours, the whole
// hours of [from, to) are counted from an hourly rollup, plus the deltas not folded into it
// yet, and only the partial hours at its edges from the readings themselves; otherwise every
// reading in range is counted. One statement reads them all, in one snapshot: a fold moves
// counts from the deltas to the rollup without changing the answer.
//
// The rollup is reading_counts for the readings of every sensor, sensor_reading_counts for
// those of the sensor the scope names, but for hours whose readings are not all counted by
// sensor (see migration 0011): those hours' are counted from the readings.
func (r *ReadingRepository) CountByBucket(ctx context.Context, s ports.SensorScope, from, to time.Time, bucket time.Duration) ([]ports.BucketCount, error) {
	op := "count readings by bucket"
	if bucket.Microseconds() <= 0 {
		return nil, fmt.Errorf("%s: %w", op, ErrBadInterval)
	}
	var rows []struct {
		Bucket time.Time
		Count  int64
	}
	if err := countByBucketStatement(s, from, to, bucket).on(r.db.gorm.WithContext(ctx)).Scan(&rows).Error; err != nil {
		return nil, r.db.fail(ctx, op, err)
	}
	out := make([]ports.BucketCount, len(rows))
	for i, row := range rows {
		out[i] = ports.BucketCount{Bucket: row.Bucket.UTC(), Count: row.Count}
	}
	return out, nil
}

// countByBucketStatement counts the readings of [from, to) by bucket. With buckets of whole
// hours (aligned to the epoch, as the rollups' hours are, so that each hour falls in exactly
// one bucket) the hours wholly inside the range come from the rollups and
// reading_count_deltas.
func countByBucketStatement(s ports.SensorScope, from, to time.Time, bucket time.Duration) statement {
	b := bucket.Microseconds()
	eq, id := s.EquipmentID, s.SensorID
	// rows adds the readings of [lo, hi), by bucket; for one equipment the types name its
	// sensors' so that the (equipment_id, sensor_type, ts) index serves it.
	rows := func(q *builder, lo, hi time.Time) {
		q.add(`SELECT `+epochBucket("ts")+` AS bucket, count(*) AS n FROM sensor_readings WHERE `, b)
		if eq != "" {
			q.add("equipment_id = ? AND sensor_type = ANY (", eq)
			typesWith(q, "", id)
			q.add(") AND ")
		}
		q.add("ts >= ? AND ts < ?", lo, hi)
		if id != "" {
			match, args := sensorMatch("", id)
			q.add(" AND "+match, args...)
		}
		q.add(" GROUP BY 1")
	}
	firstHour, lastHour := from.Truncate(time.Hour), to.Truncate(time.Hour)
	if firstHour.Before(from) {
		firstHour = firstHour.Add(time.Hour)
	}
	q := withSensors(&builder{}, eq != "", eq)
	if bucket%time.Hour != 0 || !firstHour.Before(lastHour) {
		q.add("SELECT bucket, n AS count FROM (")
		rows(q, from, to)
		return q.add(") c ORDER BY bucket").statement()
	}
	if id != "" {
		if eq == "" {
			q.add("WITH ")
		} else {
			q.add(", ")
		}
		sensorHours(q, eq, id, firstHour, lastHour)
	}
	q.add("SELECT bucket, sum(n)::bigint AS count FROM (\n\t\t\tSELECT "+epochBucket("hour")+" AS bucket, sum(n) AS n FROM (", b)
	if id != "" {
		q.add("SELECT hour, n FROM hours")
	} else {
		// The rollup's hours and the deltas not folded into it yet.
		where, args := "hour >= ? AND hour < ?", []any{firstHour, lastHour}
		if eq != "" {
			where, args = "equipment_id = ? AND "+where, append([]any{eq}, args...)
		}
		q.add("SELECT hour, readings AS n FROM reading_counts WHERE "+where, args...)
		q.add("\n\t\t\tUNION ALL SELECT hour, readings FROM reading_count_deltas WHERE "+where, args...)
	}
	q.add(") h GROUP BY 1\n\t\t\tUNION ALL ")
	rows(q, from, firstHour)
	q.add("\n\t\t\tUNION ALL ")
	rows(q, lastHour, to)
	return q.add("\n\t\t) c GROUP BY bucket HAVING sum(n) > 0 ORDER BY bucket").statement()
}

// sensorHours adds to q the CTE hours (hour, n): the readings, in the whole hours of
// [firstHour, lastHour), of the sensors named id, of equipment eq or ("") all. They are
// summed from sensor_reading_counts and its deltas, but for the hours of an equipment whose
// readings are not all counted by sensor (unattributed: see migration 0011), which are
// counted from the readings, of the types that may hold the sensor's: those of its rows by
// sensor in that hour, and the type named id.
func sensorHours(q *builder, eq, id string, firstHour, lastHour time.Time) {
	where, args := "hour >= ? AND hour < ?", []any{firstHour, lastHour}
	if eq != "" {
		where, args = "equipment_id = ? AND "+where, append([]any{eq}, args...)
	}
	match, matchArgs := sensorMatch("", id)
	rawMatch, rawMatchArgs := sensorMatch("s", id)
	q.add(`unattributed_hours AS (
			SELECT equipment_id, hour FROM reading_counts WHERE `+where+` AND readings > attributed
			UNION
			SELECT equipment_id, hour FROM reading_count_deltas WHERE `+where+` AND sensor_type = ''
		), sensor_hours AS (
			SELECT equipment_id, hour, sensor_type, readings FROM sensor_reading_counts
			WHERE `+where+` AND `+match+`
			UNION ALL
			SELECT equipment_id, hour, sensor_type, readings FROM reading_count_deltas
			WHERE `+where+` AND sensor_type <> '' AND `+match+`
		), hours AS (
			SELECT hour, readings AS n FROM sensor_hours t
			WHERE NOT EXISTS (SELECT FROM unattributed_hours u WHERE u.equipment_id = t.equipment_id AND u.hour = t.hour)
			UNION ALL
			SELECT u.hour, (SELECT count(*) FROM sensor_readings s
				WHERE s.equipment_id = u.equipment_id
					AND s.sensor_type = ANY (ARRAY(SELECT t.sensor_type FROM sensor_hours t
						WHERE t.equipment_id = u.equipment_id AND t.hour = u.hour) || ?::text)
					AND s.ts >= u.hour AND s.ts < u.hour + interval '1 hour' AND `+rawMatch+`)
			FROM unattributed_hours u
		)
		`, slices.Concat(args, args, args, matchArgs, args, matchArgs, []any{id}, rawMatchArgs)...)
}
