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
	Value       float64
	Unit        string
	Ts          int64
	ReceivedAt  int64
	Anomalous   bool
}

func (r readingRow) stored() ports.StoredReading {
	return ports.StoredReading{
		Reading: sensor.Reading{
			ID: r.ReadingID, EquipmentID: r.EquipmentID, Type: sensor.Type(r.SensorType), Value: r.Value,
			Unit: r.Unit, Timestamp: fromMicros(r.Ts), ReceivedAt: fromMicros(r.ReceivedAt),
		},
		Anomalous: r.Anomalous,
	}
}

const readingColumns = "equipment_id, reading_id, sensor_type, value, unit, ts, received_at, anomalous"

// bucketStart is the SQL for the start of ts's bucket of @b microseconds, aligned to the Unix
// epoch and rounded down for times before it (SQLite's % truncates towards zero).
const bucketStart = "(ts - ((ts % @b) + @b) % @b)"

// typesOf lists the sensor types a query asks for: typ, or every type for "". Naming them
// lets the (equipment_id, sensor_type, ts) index serve queries of every type too.
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

// RecentValues implements ports.ReadingRepository.
func (r *ReadingRepository) RecentValues(ctx context.Context, k sensor.Key, n int) ([]float64, error) {
	if n <= 0 {
		return []float64{}, nil
	}
	var values []float64
	err := r.db.gorm.WithContext(ctx).Raw(`SELECT value FROM sensor_readings
		WHERE equipment_id = ? AND sensor_type = ? ORDER BY ts DESC, seq DESC LIMIT ?`,
		k.EquipmentID, string(k.Type), n).Scan(&values).Error
	if err != nil {
		return nil, r.db.fail(ctx, fmt.Sprintf("recent values of %s/%s", k.EquipmentID, k.Type), err)
	}
	slices.Reverse(values)
	return values, nil
}

// History implements ports.ReadingRepository.
func (r *ReadingRepository) History(ctx context.Context, q ports.HistoryQuery) ([]ports.StoredReading, error) {
	if q.Limit <= 0 {
		return []ports.StoredReading{}, nil
	}
	var rows []readingRow
	err := r.db.gorm.WithContext(ctx).Raw(`SELECT `+readingColumns+` FROM sensor_readings
		WHERE equipment_id = ? AND sensor_type IN ? AND ts >= ? AND ts < ?
		ORDER BY ts DESC, seq DESC LIMIT ?`,
		q.EquipmentID, typesOf(q.SensorType), micros(q.From), micros(q.To), q.Limit).Scan(&rows).Error
	if err != nil {
		return nil, r.db.fail(ctx, "history of "+q.EquipmentID, err)
	}
	out := make([]ports.StoredReading, len(rows))
	for i, row := range rows {
		out[len(rows)-1-i] = row.stored()
	}
	return out, nil
}

// averageRow is one bucket of one sensor type.
type averageRow struct {
	SensorType string
	Bucket     int64
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
	err := r.db.gorm.WithContext(ctx).Raw(`SELECT sensor_type, `+bucketStart+` AS bucket,
			avg(value) AS avg, min(value) AS min, max(value) AS max, count(*) AS count
		FROM sensor_readings
		WHERE equipment_id = @equipment AND sensor_type IN @types AND ts >= @from AND ts < @to
		GROUP BY bucket, sensor_type
		ORDER BY bucket DESC, sensor_type DESC LIMIT @limit`,
		map[string]any{
			"b": interval.Microseconds(), "equipment": q.EquipmentID, "types": typesOf(q.SensorType),
			"from": micros(q.From), "to": micros(q.To), "limit": q.Limit,
		}).Scan(&rows).Error
	if err != nil {
		return nil, r.db.fail(ctx, op, err)
	}
	out := make([]ports.AveragePoint, len(rows))
	for i, row := range rows {
		out[len(rows)-1-i] = ports.AveragePoint{
			SensorType: sensor.Type(row.SensorType), Bucket: fromMicros(row.Bucket),
			Avg: row.Avg, Min: row.Min, Max: row.Max, Count: row.Count,
		}
	}
	return out, nil
}

// Latest implements ports.ReadingRepository: one indexed look-up per sensor type.
func (r *ReadingRepository) Latest(ctx context.Context, equipmentID string) ([]ports.StoredReading, error) {
	var rows []readingRow
	q := ""
	args := make([]any, 0, 2*len(sensor.Types))
	for i, t := range sensor.Types {
		if i > 0 {
			q += " UNION ALL "
		}
		q += `SELECT * FROM (SELECT ` + readingColumns + ` FROM sensor_readings
			WHERE equipment_id = ? AND sensor_type = ? ORDER BY ts DESC, seq DESC LIMIT 1)`
		args = append(args, equipmentID, string(t))
	}
	if err := r.db.gorm.WithContext(ctx).Raw(q, args...).Scan(&rows).Error; err != nil {
		return nil, r.db.fail(ctx, "latest readings of "+equipmentID, err)
	}
	out := make([]ports.StoredReading, len(rows))
	for i, row := range rows {
		out[i] = row.stored()
	}
	slices.SortFunc(out, func(a, b ports.StoredReading) int {
		return slices.Index(sensor.Types, a.Type) - slices.Index(sensor.Types, b.Type)
	})
	return out, nil
}

// CountByBucket implements ports.ReadingRepository.
func (r *ReadingRepository) CountByBucket(ctx context.Context, equipmentID string, from, to time.Time, bucket time.Duration) ([]ports.BucketCount, error) {
	op := "count readings by bucket"
	if bucket.Microseconds() <= 0 {
		return nil, fmt.Errorf("%s: %w", op, ErrBadInterval)
	}
	args := map[string]any{"b": bucket.Microseconds(), "from": micros(from), "to": micros(to)}
	filter := ""
	if equipmentID != "" {
		filter = "equipment_id = @equipment AND sensor_type IN @types AND "
		args["equipment"], args["types"] = equipmentID, typesOf("")
	}
	var rows []struct {
		Bucket int64
		Count  int64
	}
	err := r.db.gorm.WithContext(ctx).Raw(`SELECT `+bucketStart+` AS bucket, count(*) AS count
		FROM sensor_readings WHERE `+filter+`ts >= @from AND ts < @to
		GROUP BY bucket ORDER BY bucket`, args).Scan(&rows).Error
	if err != nil {
		return nil, r.db.fail(ctx, op, err)
	}
	out := make([]ports.BucketCount, len(rows))
	for i, row := range rows {
		out[i] = ports.BucketCount{Bucket: fromMicros(row.Bucket), Count: row.Count}
	}
	return out, nil
}
