package ports

import (
	"context"
	"time"

	"github.com/production-line-monitor/plm/domain/sensor"
)

// ReadingsReceived is the event the webhook publishes for every accepted request: readings
// with their identity and receipt time, in the order they arrived.
type ReadingsReceived struct {
	Readings []sensor.Reading
}

// ReadingsPublisher hands accepted readings to the workers. When Publish returns nil the
// readings are durably queued (or, embedded, stored): the webhook may answer 202.
// An unreachable queue is reported as ErrUnavailable.
type ReadingsPublisher interface {
	PublishReadings(ctx context.Context, e ReadingsReceived) error
}

// RateLimiter decides whether a caller may make one more request now. When it may not,
// retryAfter says when it may.
type RateLimiter interface {
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
}

// LiveEquipment is the fast-changing state of one equipment, kept outside the database so
// that its status is answered without reading the readings table.
type LiveEquipment struct {
	LastSeenAt    time.Time // zero if unknown
	LastAnomalyAt time.Time // zero if none known
	// Latest holds the newest reading (by timestamp) of each sensor known, ordered by
	// sensor.CompareKeys.
	Latest []StoredReading
	// Complete is true when the store knows the newest reading of every sensor of the
	// equipment: Latest is then the whole answer. Only Warm makes it so.
	Complete bool
}

// LiveStore keeps LiveEquipment. Every update moves state forward only: an older time or
// an older reading never replaces a newer one, so updates may be repeated and reordered.
type LiveStore interface {
	// Beat records sightings: LastSeenAt and, when set, LastAnomalyAt.
	Beat(ctx context.Context, sightings []Sighting) error
	// Record keeps each reading that is newer than the one kept for its sensor.
	Record(ctx context.Context, readings []StoredReading) error
	// Warm fills in what the database knows of an equipment: its newest reading of each
	// sensor (latest), each kept unless a newer one is. Afterwards Live is Complete.
	Warm(ctx context.Context, equipmentID string, latest []StoredReading) error
	// Live returns what is kept of the equipment; ErrNotFound when nothing is.
	Live(ctx context.Context, equipmentID string) (LiveEquipment, error)
}
