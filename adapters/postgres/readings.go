package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	Value       float64
	Unit        string
	Ts          time.Time
	ReceivedAt  time.Time
	Anomalous   bool
}

func (r readingRow) stored() ports.StoredReading {
	return ports.StoredReading{
		Reading: sensor.Reading{
			ID: r.ReadingID, EquipmentID: r.EquipmentID, Type: sensor.Type(r.SensorType), Value: r.Value,
			Unit: r.Unit, Timestamp: r.Ts.UTC(), ReceivedAt: r.ReceivedAt.UTC(),
		},
		Anomalous: r.Anomalous,
	}
}

const readingColumns = "equipment_id, reading_id, sensor_type, value, unit, ts, received_at, anomalous"

// epochBucket is the SQL for the start of the bucket that column col falls in: buckets of
// "?" microseconds aligned to the Unix epoch, rounded down before it too (the contract
// suite's cases before 1970 check that the server's date_bin does so).
func epochBucket(col string) string {
	return "date_bin(?::bigint * interval '1 microsecond', " + col + ", timestamptz 'epoch')"
}

// typesOf lists the sensor types a query asks for: typ, or every type for "". Naming them
// lets the (equipment_id, sensor_type, ...) indexes serve queries of every type too.
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
		return nil, r.db.fail(ctx, fmt.Sprintf("recent values of %s/%s", k.EquipmentID, k.Type), err)
	}
	slices.Reverse(values)
	return values, nil
}

func recentValuesStatement(k sensor.Key, n int) statement {
	return statement{`SELECT value FROM sensor_readings
		WHERE equipment_id = ? AND sensor_type = ? ORDER BY ts DESC, seq DESC LIMIT ?`,
		[]any{k.EquipmentID, string(k.Type), n}}
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
// (a backward scan of its (equipment_id, sensor_type, ts) index that stops at Limit), then
// keeps the latest Limit of them all, latest first.
func historyStatement(q ports.HistoryQuery) statement {
	return statement{`SELECT r.* FROM unnest(?::text[]) AS t (sensor_type)
		CROSS JOIN LATERAL (
			SELECT ` + readingColumns + `, seq FROM sensor_readings s
			WHERE s.equipment_id = ? AND s.sensor_type = t.sensor_type AND s.ts >= ? AND s.ts < ?
			ORDER BY s.ts DESC, s.seq DESC LIMIT ?
		) r
		ORDER BY r.ts DESC, r.seq DESC LIMIT ?`,
		[]any{array(typesOf(q.SensorType)), q.EquipmentID, q.From, q.To, q.Limit, q.Limit}}
}

// averageRow is one bucket of one sensor type.
type averageRow struct {
	SensorType string
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
			SensorType: sensor.Type(row.SensorType), Bucket: row.Bucket.UTC(),
			Avg: row.Avg, Min: row.Min, Max: row.Max, Count: row.Count,
		}
	}
	return out, nil
}

func averagesStatement(q ports.HistoryQuery, interval time.Duration) statement {
	return statement{`SELECT sensor_type, ` + epochBucket("ts") + ` AS bucket,
			avg(value) AS avg, min(value) AS min, max(value) AS max, count(*) AS count
		FROM sensor_readings
		WHERE equipment_id = ? AND sensor_type = ANY (?::text[]) AND ts >= ? AND ts < ?
		GROUP BY bucket, sensor_type
		ORDER BY bucket DESC, sensor_type DESC LIMIT ?`,
		[]any{interval.Microseconds(), q.EquipmentID, array(typesOf(q.SensorType)), q.From, q.To, q.Limit}}
}

// Latest implements ports.ReadingRepository: one indexed look-up per sensor type.
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

func latestStatement(equipmentID string) statement {
	return statement{`SELECT r.* FROM unnest(?::text[]) WITH ORDINALITY AS t (sensor_type, n)
		CROSS JOIN LATERAL (
			SELECT ` + readingColumns + ` FROM sensor_readings s
			WHERE s.equipment_id = ? AND s.sensor_type = t.sensor_type
			ORDER BY s.ts DESC, s.seq DESC LIMIT 1
		) r
		ORDER BY t.n`,
		[]any{array(typesOf("")), equipmentID}}
}

// CountByBucket implements ports.ReadingRepository. When buckets are whole hours, the whole
// hours of [from, to) are counted from the hourly rollup, plus the deltas not folded into it
// yet, and only the partial hours at its edges from the readings themselves; otherwise every
// reading in range is counted. One statement reads them all, in one snapshot: a fold moves
// counts from the deltas to the rollup without changing the answer.
func (r *ReadingRepository) CountByBucket(ctx context.Context, equipmentID string, from, to time.Time, bucket time.Duration) ([]ports.BucketCount, error) {
	op := "count readings by bucket"
	if bucket.Microseconds() <= 0 {
		return nil, fmt.Errorf("%s: %w", op, ErrBadInterval)
	}
	var rows []struct {
		Bucket time.Time
		Count  int64
	}
	if err := countByBucketStatement(equipmentID, from, to, bucket).on(r.db.gorm.WithContext(ctx)).Scan(&rows).Error; err != nil {
		return nil, r.db.fail(ctx, op, err)
	}
	out := make([]ports.BucketCount, len(rows))
	for i, row := range rows {
		out[i] = ports.BucketCount{Bucket: row.Bucket.UTC(), Count: row.Count}
	}
	return out, nil
}

// countByBucketStatement counts the readings of [from, to) by bucket. With buckets of whole
// hours (aligned to the epoch, as the rollup's hours are, so that each hour falls in exactly
// one bucket) the hours wholly inside the range come from reading_counts and
// reading_count_deltas.
func countByBucketStatement(equipmentID string, from, to time.Time, bucket time.Duration) statement {
	b := bucket.Microseconds()
	// Readings of [lo, hi), by bucket; the types name every type so that the
	// (equipment_id, sensor_type, ts) index serves one equipment.
	raw := func(lo, hi time.Time) (string, []any) {
		if equipmentID == "" {
			return `SELECT ` + epochBucket("ts") + ` AS bucket, count(*) AS n FROM sensor_readings
				WHERE ts >= ? AND ts < ? GROUP BY 1`, []any{b, lo, hi}
		}
		return `SELECT ` + epochBucket("ts") + ` AS bucket, count(*) AS n FROM sensor_readings
			WHERE equipment_id = ? AND sensor_type = ANY (?::text[]) AND ts >= ? AND ts < ? GROUP BY 1`,
			[]any{b, equipmentID, array(typesOf("")), lo, hi}
	}
	firstHour, lastHour := from.Truncate(time.Hour), to.Truncate(time.Hour)
	if firstHour.Before(from) {
		firstHour = firstHour.Add(time.Hour)
	}
	if bucket%time.Hour != 0 || !firstHour.Before(lastHour) {
		sql, args := raw(from, to)
		return statement{`SELECT bucket, n AS count FROM (` + sql + `) c ORDER BY bucket`, args}
	}
	// The rollup's hours and the deltas not folded into it yet.
	hours, hoursArgs := `SELECT hour, readings FROM reading_counts WHERE hour >= ? AND hour < ?
			UNION ALL SELECT hour, readings FROM reading_count_deltas WHERE hour >= ? AND hour < ?`,
		[]any{firstHour, lastHour, firstHour, lastHour}
	if equipmentID != "" {
		hours = `SELECT hour, readings FROM reading_counts WHERE equipment_id = ? AND hour >= ? AND hour < ?
			UNION ALL SELECT hour, readings FROM reading_count_deltas WHERE equipment_id = ? AND hour >= ? AND hour < ?`
		hoursArgs = []any{equipmentID, firstHour, lastHour, equipmentID, firstHour, lastHour}
	}
	rollup, rollupArgs := `SELECT `+epochBucket("hour")+` AS bucket, sum(readings) AS n FROM (`+hours+`) h GROUP BY 1`,
		append([]any{b}, hoursArgs...)
	head, headArgs := raw(from, firstHour)
	tail, tailArgs := raw(lastHour, to)
	args := slices.Concat(rollupArgs, headArgs, tailArgs)
	return statement{`SELECT bucket, sum(n)::bigint AS count FROM (
			` + rollup + `
			UNION ALL ` + head + `
			UNION ALL ` + tail + `
		) c GROUP BY bucket ORDER BY bucket`, args}
}
