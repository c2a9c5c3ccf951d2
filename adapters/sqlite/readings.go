package sqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

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

// readingRow is a row of sensor_readings.
type readingRow struct {
	EquipmentID string
	ReadingID   string
	SensorType  string
	SensorID    string
	Value       float64
	Unit        string
	Ts          int64
	ReceivedAt  int64
	Anomalous   bool
}

func (r readingRow) stored() ports.StoredReading {
	return ports.StoredReading{
		Reading: sensor.Reading{
			ID: r.ReadingID, EquipmentID: r.EquipmentID, Type: sensor.Type(r.SensorType), SensorID: r.SensorID,
			Value: r.Value, Unit: r.Unit, Timestamp: fromMicros(r.Ts), ReceivedAt: fromMicros(r.ReceivedAt),
		},
		Anomalous: r.Anomalous,
	}
}

const readingColumns = "equipment_id, reading_id, sensor_type, sensor_id, value, unit, ts, received_at, anomalous"

// bucketStart is the SQL for the start of ts's bucket of @b microseconds, aligned to the Unix
// epoch and rounded down for times before it (SQLite's % truncates towards zero).
const bucketStart = "(ts - ((ts % @b) + @b) % @b)"

// statement is a query with its named arguments.
type statement struct {
	sql  string
	args map[string]any
}

// matchesSensor is sensor.Matches in SQL: the rows of the sensor that @sensor names, those
// stored with that sensor id and those stored without one whose type it names.
const matchesSensor = "(sensor_id = @sensor OR (sensor_id = '' AND sensor_type = @sensor))"

// sensorFilter is the conditions, each led by AND, that keep the rows of type typ and of the
// sensor named id (see matchesSensor); "" keeps every type or every sensor. It adds their
// arguments to args.
func sensorFilter(typ sensor.Type, id string, args map[string]any) string {
	f := ""
	if typ != "" {
		f += " AND sensor_type = @type"
		args["type"] = string(typ)
	}
	if id != "" {
		f += " AND " + matchesSensor
		args["sensor"] = id
	}
	return f
}

// withSensors opens a query with the table "chosen": the sensors (sensor_type, sensor_id) of
// equipment @equipment that filter (over those two columns) keeps. They are listed by skipping
// through the index sensor_readings_sensor_ts, two seeks per sensor however many readings each
// has: after a sensor comes the next id of its type, or else the first sensor of the next
// type. (A row-value comparison, (sensor_type, sensor_id) > (…), would seek on sensor_type
// alone and read every entry of the type.) The sentinel row of empty strings starts the walk: no type is
// empty.
func withSensors(filter string) string {
	return `WITH RECURSIVE sensors (sensor_type, sensor_id) AS (
			SELECT '', ''
			UNION ALL
			SELECT r.sensor_type, r.sensor_id FROM sensors s JOIN sensor_readings r ON r.seq = coalesce(
				(SELECT seq FROM sensor_readings WHERE equipment_id = @equipment AND sensor_type = s.sensor_type
					AND sensor_id > s.sensor_id ORDER BY sensor_id LIMIT 1),
				(SELECT seq FROM sensor_readings WHERE equipment_id = @equipment AND sensor_type > s.sensor_type
					ORDER BY sensor_type, sensor_id LIMIT 1))
		),
		chosen AS (SELECT sensor_type, sensor_id FROM sensors WHERE sensor_type <> ''` + filter + `)
		`
}

// chosenInRange is the FROM and WHERE clauses of the readings of the chosen sensors (see
// withSensors) timestamped in [@from, @to): one range of sensor_readings_sensor_ts per sensor.
// CROSS JOIN keeps the sensors the outer loop: the planner would rather read every reading of
// the equipment and look its sensor up.
const chosenInRange = ` FROM chosen CROSS JOIN sensor_readings USING (sensor_type, sensor_id)
		WHERE equipment_id = @equipment AND ts >= @from AND ts < @to`

// refsPerQuery bounds the refs looked up by one statement (two parameters each).
const refsPerQuery = maxVariables / 2

// StoredRefs implements ports.ReadingRepository.
func (r *ReadingRepository) StoredRefs(ctx context.Context, refs []ports.ReadingRef) (map[ports.ReadingRef]bool, error) {
	out := make(map[ports.ReadingRef]bool, len(refs))
	db := r.db.gorm.WithContext(ctx)
	for chunk := range slices.Chunk(refs, refsPerQuery) {
		args := make([]any, 0, 2*len(chunk))
		for _, ref := range chunk {
			args = append(args, ref.EquipmentID, ref.ReadingID)
		}
		// The refs, as a VALUES list, drive look-ups in the (equipment_id, reading_id) index.
		q := multiRow("WITH refs (equipment_id, reading_id) AS (", 2, len(chunk), `)
			SELECT s.equipment_id, s.reading_id FROM refs
			JOIN sensor_readings s ON s.equipment_id = refs.equipment_id AND s.reading_id = refs.reading_id`)
		if err := scanRefs(db.Raw(q, args...), out); err != nil {
			return nil, r.db.fail(ctx, fmt.Sprintf("look up %d stored readings", len(refs)), err)
		}
	}
	return out, nil
}

// recentValuesStatement is RecentValues' query: the latest readings of one sensor, newest first.
func recentValuesStatement(k sensor.Key, n int) statement {
	return statement{`SELECT value FROM sensor_readings
		WHERE equipment_id = @equipment AND sensor_type = @type AND sensor_id = @sensor
		ORDER BY ts DESC, seq DESC LIMIT @n`,
		map[string]any{"equipment": k.EquipmentID, "type": string(k.Type), "sensor": k.Sensor, "n": n}}
}

// RecentValues implements ports.ReadingRepository.
func (r *ReadingRepository) RecentValues(ctx context.Context, k sensor.Key, n int) ([]float64, error) {
	if n <= 0 {
		return []float64{}, nil
	}
	var values []float64
	s := recentValuesStatement(k, n)
	if err := r.db.gorm.WithContext(ctx).Raw(s.sql, s.args).Scan(&values).Error; err != nil {
		return nil, r.db.fail(ctx, fmt.Sprintf("recent values of %s/%s", k.EquipmentID, k.ID()), err)
	}
	slices.Reverse(values)
	return values, nil
}

// historyStatement is History's query: the q.Limit latest readings matching q, newest first.
func historyStatement(q ports.HistoryQuery) statement {
	args := map[string]any{"equipment": q.EquipmentID, "from": micros(q.From), "to": micros(q.To), "limit": q.Limit}
	return statement{withSensors(sensorFilter(q.SensorType, q.SensorID, args)) +
		`SELECT ` + readingColumns + chosenInRange + ` ORDER BY ts DESC, seq DESC LIMIT @limit`, args}
}

// History implements ports.ReadingRepository.
func (r *ReadingRepository) History(ctx context.Context, q ports.HistoryQuery) ([]ports.StoredReading, error) {
	if q.Limit <= 0 {
		return []ports.StoredReading{}, nil
	}
	var rows []readingRow
	s := historyStatement(q)
	if err := r.db.gorm.WithContext(ctx).Raw(s.sql, s.args).Scan(&rows).Error; err != nil {
		return nil, r.db.fail(ctx, "history of "+q.EquipmentID, err)
	}
	out := make([]ports.StoredReading, len(rows))
	for i, row := range rows {
		out[len(rows)-1-i] = row.stored()
	}
	return out, nil
}

// averageRow is one bucket of one sensor.
type averageRow struct {
	SensorType string
	SensorID   string
	Bucket     int64
	Avg        float64
	Min        float64
	Max        float64
	Count      int64
}

// averagesStatement is Averages' query: the q.Limit latest buckets of the sensors q selects,
// latest first.
func averagesStatement(q ports.HistoryQuery, interval time.Duration) statement {
	args := map[string]any{
		"b": interval.Microseconds(), "equipment": q.EquipmentID, "from": micros(q.From), "to": micros(q.To), "limit": q.Limit,
	}
	return statement{withSensors(sensorFilter(q.SensorType, q.SensorID, args)) +
		`SELECT sensor_type, sensor_id, ` + bucketStart + ` AS bucket,
			avg(value) AS avg, min(value) AS min, max(value) AS max, count(*) AS count` + chosenInRange + `
		GROUP BY bucket, sensor_type, sensor_id
		ORDER BY bucket DESC, sensor_type DESC, sensor_id DESC LIMIT @limit`, args}
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
	s := averagesStatement(q, interval)
	if err := r.db.gorm.WithContext(ctx).Raw(s.sql, s.args).Scan(&rows).Error; err != nil {
		return nil, r.db.fail(ctx, op, err)
	}
	out := make([]ports.AveragePoint, len(rows))
	for i, row := range rows {
		out[len(rows)-1-i] = ports.AveragePoint{
			SensorType: sensor.Type(row.SensorType), SensorID: row.SensorID, Bucket: fromMicros(row.Bucket),
			Avg: row.Avg, Min: row.Min, Max: row.Max, Count: row.Count,
		}
	}
	return out, nil
}

// latestStatement is Latest's query: one indexed look-up per sensor of the equipment.
func latestStatement(equipmentID string) statement {
	return statement{withSensors("") + `SELECT ` + readingColumns + ` FROM sensor_readings WHERE seq IN (
			SELECT (SELECT seq FROM sensor_readings r WHERE r.equipment_id = @equipment
				AND r.sensor_type = c.sensor_type AND r.sensor_id = c.sensor_id ORDER BY r.ts DESC, r.seq DESC LIMIT 1)
			FROM chosen c)
		ORDER BY sensor_type, sensor_id`, map[string]any{"equipment": equipmentID}}
}

// Latest implements ports.ReadingRepository.
func (r *ReadingRepository) Latest(ctx context.Context, equipmentID string) ([]ports.StoredReading, error) {
	var rows []readingRow
	s := latestStatement(equipmentID)
	if err := r.db.gorm.WithContext(ctx).Raw(s.sql, s.args).Scan(&rows).Error; err != nil {
		return nil, r.db.fail(ctx, "latest readings of "+equipmentID, err)
	}
	out := make([]ports.StoredReading, len(rows))
	for i, row := range rows {
		out[i] = row.stored()
	}
	return out, nil
}

// countStatement is CountByBucket's query. Of one equipment, it counts in
// sensor_readings_sensor_ts, one range per sensor; of every equipment, in sensor_readings_ts.
func countStatement(scope ports.SensorScope, from, to time.Time, bucket time.Duration) statement {
	args := map[string]any{"b": bucket.Microseconds(), "from": micros(from), "to": micros(to)}
	filter := sensorFilter("", scope.SensorID, args)
	q := `SELECT ` + bucketStart + ` AS bucket, count(*) AS count FROM sensor_readings
		WHERE ts >= @from AND ts < @to` + filter
	if scope.EquipmentID != "" {
		args["equipment"] = scope.EquipmentID
		q = withSensors(filter) + `SELECT ` + bucketStart + ` AS bucket, count(*) AS count` + chosenInRange
	}
	return statement{q + ` GROUP BY bucket ORDER BY bucket`, args}
}

// CountByBucket implements ports.ReadingRepository.
func (r *ReadingRepository) CountByBucket(ctx context.Context, scope ports.SensorScope, from, to time.Time, bucket time.Duration) ([]ports.BucketCount, error) {
	op := "count readings by bucket"
	if bucket.Microseconds() <= 0 {
		return nil, fmt.Errorf("%s: %w", op, ErrBadInterval)
	}
	var rows []struct {
		Bucket int64
		Count  int64
	}
	s := countStatement(scope, from, to, bucket)
	if err := r.db.gorm.WithContext(ctx).Raw(s.sql, s.args).Scan(&rows).Error; err != nil {
		return nil, r.db.fail(ctx, op, err)
	}
	out := make([]ports.BucketCount, len(rows))
	for i, row := range rows {
		out[i] = ports.BucketCount{Bucket: fromMicros(row.Bucket), Count: row.Count}
	}
	return out, nil
}
