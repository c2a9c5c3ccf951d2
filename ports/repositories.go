package ports

import (
	"context"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// ReadingRef names one stored reading: its id is unique within its equipment.
type ReadingRef struct {
	EquipmentID string
	ReadingID   string
}

// StoredReading is a reading as kept after detection.
type StoredReading struct {
	sensor.Reading
	// Anomalous is true when detection flagged the reading.
	Anomalous bool
}

// Sighting says that an equipment sent readings: when the last was received and, if any of
// them was anomalous, when that was detected (zero otherwise).
type Sighting struct {
	EquipmentID   string
	LastSeenAt    time.Time
	LastAnomalyAt time.Time
}

// ProcessedBatch is the outcome of judging one batch of readings, written all at once.
type ProcessedBatch struct {
	Readings  []StoredReading
	Anomalies []anomaly.Anomaly
	// Sightings register unknown equipment and move LastSeenAt / LastAnomalyAt forward
	// (never back).
	Sightings []Sighting
	// Sessions are inserted or, when one with the same (EquipmentID, Start) exists, given
	// the later End.
	Sessions []equipment.Session
	// Alarms are inserted, or, when stored already, updated: everything but their
	// acknowledgement, and their state only to CLEARED.
	Alarms []alarm.Alarm
	// Events are the batch's alarm transitions: for each, a delivery to every subscription
	// that asks for its type is enqueued in the batch's transaction (see DeliveryQueue).
	Events []event.Event
	// Fences, when set, make the write conditional: it commits only while every fence's
	// partition is still held at the fence's epoch, and fails with ErrFenced otherwise.
	Fences []Fence
}

// Fence is a worker's claim on one partition of the readings queue: the epoch it was given
// when it took the partition over. A later take-over advances the epoch, which fences out
// every write made under an earlier one.
type Fence struct {
	Partition int
	Epoch     int64
}

// PartitionFencer hands out fencing epochs.
type PartitionFencer interface {
	// AdvanceEpoch gives the partition a new epoch, greater than any before, and returns
	// it. From then on writes fenced with an earlier epoch fail with ErrFenced. It waits for
	// writes under the earlier epoch that are committing to finish.
	AdvanceEpoch(ctx context.Context, partition int) (int64, error)
}

// RollupFolder keeps the production-metrics rollups.
type RollupFolder interface {
	// FoldRollups folds the counts that batch writes have appended since the last fold
	// into the hourly rollup, and returns how many appended rows it folded. Queries are
	// exact whether or not a fold has run; folding keeps them cheap.
	FoldRollups(ctx context.Context) (int64, error)
}

// BatchWriter commits processed batches.
type BatchWriter interface {
	// WriteBatch stores everything in b in one transaction. Readings whose (equipment,
	// reading id) is already stored, and anomalies of such readings, are skipped silently.
	WriteBatch(ctx context.Context, b ProcessedBatch) error
}

// HistoryQuery selects readings of one equipment by reading timestamp, in [From, To).
//
// SensorID, when set, keeps the readings of that sensor only (see sensor.Matches: a reading
// sent without a sensor id is the sensor named by its type).
type HistoryQuery struct {
	EquipmentID string
	SensorType  sensor.Type // "" for every type
	SensorID    string      // "" for every sensor
	From, To    time.Time
	Limit       int
}

// AveragePoint summarises the readings of one sensor in one time bucket.
type AveragePoint struct {
	SensorType sensor.Type
	SensorID   string    // "" for the sensor that is its type
	Bucket     time.Time // start of the bucket; buckets are aligned to the Unix epoch
	Avg        float64
	Min        float64
	Max        float64
	Count      int64
}

// BucketCount is how many readings fell in one time bucket.
type BucketCount struct {
	Bucket time.Time
	Count  int64
}

// ReadingRepository reads stored readings.
type ReadingRepository interface {
	// StoredRefs returns which of refs are already stored.
	StoredRefs(ctx context.Context, refs []ReadingRef) (map[ReadingRef]bool, error)
	// RecentValues returns the values of the sensor's last n readings by timestamp, oldest
	// first; of readings with the same timestamp, the one stored later counts as later.
	RecentValues(ctx context.Context, k sensor.Key, n int) ([]float64, error)
	// History returns the Limit latest readings matching q, sorted by timestamp ascending.
	History(ctx context.Context, q HistoryQuery) ([]StoredReading, error)
	// Averages buckets the readings matching q by interval, per sensor, sorted by bucket
	// ascending, then sensor type, then sensor id; at most q.Limit points, the latest ones.
	Averages(ctx context.Context, q HistoryQuery, interval time.Duration) ([]AveragePoint, error)
	// Latest returns the newest reading (by timestamp) of each sensor of the equipment, in
	// no particular order.
	Latest(ctx context.Context, equipmentID string) ([]StoredReading, error)
	// CountByBucket counts readings with timestamps in [from, to), by bucket of the given
	// size aligned to the Unix epoch, of the sensors s selects; empty buckets omitted.
	CountByBucket(ctx context.Context, s SensorScope, from, to time.Time, bucket time.Duration) ([]BucketCount, error)
}

// SensorScope selects sensors: those of one equipment or ("") all, and among them those
// named SensorID or ("") all (see sensor.Matches).
type SensorScope struct {
	EquipmentID string
	SensorID    string
}

// Selects reports whether the scope holds the sensor of type t named sensorID (empty: the
// sensor is its type) of equipment equipmentID.
func (s SensorScope) Selects(equipmentID string, t sensor.Type, sensorID string) bool {
	return (s.EquipmentID == "" || s.EquipmentID == equipmentID) &&
		(s.SensorID == "" || sensor.Matches(t, sensorID, s.SensorID))
}

// AnomalyQuery selects anomalies by the timestamp of their reading. Zero times are open ends.
type AnomalyQuery struct {
	EquipmentID string
	SensorType  sensor.Type
	SensorID    string
	Severities  []anomaly.Severity // none means all
	From, To    time.Time          // [From, To)
	Offset      int
	Limit       int
	Ascending   bool
}

// AnomalyRepository reads stored anomalies.
type AnomalyRepository interface {
	// Find returns one page of the anomalies matching q, sorted by timestamp (then id), and
	// how many match in all.
	Find(ctx context.Context, q AnomalyQuery) ([]anomaly.Anomaly, int64, error)
	// CountBySeverity counts the anomalies of readings timestamped in [from, to) of the
	// sensors s selects.
	CountBySeverity(ctx context.Context, s SensorScope, from, to time.Time) (map[anomaly.Severity]int64, error)
	// CountDetectedSince counts the anomalies of the sensors s selects of one equipment
	// (s.EquipmentID is set) detected at or after since.
	CountDetectedSince(ctx context.Context, s SensorScope, since time.Time) (int64, error)
}

// EquipmentRepository keeps equipment and its online sessions.
type EquipmentRepository interface {
	// Get returns ErrNotFound for unknown equipment.
	Get(ctx context.Context, id string) (equipment.Equipment, error)
	// All returns every equipment sorted by id.
	All(ctx context.Context) ([]equipment.Equipment, error)
	// UpsertMetadata creates the equipment (at now) or replaces its metadata.
	UpsertMetadata(ctx context.Context, id string, m equipment.Metadata, now time.Time) (equipment.Equipment, error)
	// LatestSession returns the equipment's session with the latest start, or ErrNotFound.
	LatestSession(ctx context.Context, equipmentID string) (equipment.Session, error)
	// Sessions returns the sessions, of one equipment or ("") all, that end at or after
	// endFrom and start before startTo.
	Sessions(ctx context.Context, equipmentID string, endFrom, startTo time.Time) ([]equipment.Session, error)
}
