package ports

import (
	"context"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// AlarmQuery selects alarms by the time they opened, in [From, To); zero times are open ends.
type AlarmQuery struct {
	EquipmentID string
	SensorType  sensor.Type
	SensorID    string             // see sensor.Matches
	Severities  []anomaly.Severity // none means all
	States      []alarm.State      // none means all
	From, To    time.Time
	Offset      int
	Limit       int
	Ascending   bool
}

// AlarmRepository keeps alarms. Workers write them with their batches (ProcessedBatch.Alarms);
// a stored alarm's acknowledgement is never undone by such a write, and at most one alarm
// per sensor is open (ACTIVE or ACKNOWLEDGED) at a time: a write that would open a second
// one fails.
type AlarmRepository interface {
	// Latest returns the sensor's latest alarm (nil when it has none) and when its alarms
	// that opened at or after since opened, oldest first.
	Latest(ctx context.Context, k sensor.Key, since time.Time) (*alarm.Alarm, []time.Time, error)
	// Get returns ErrNotFound for an unknown id.
	Get(ctx context.Context, id string) (alarm.Alarm, error)
	// Find returns one page of the alarms matching q, sorted by opening time (then id), and
	// how many match in all.
	Find(ctx context.Context, q AlarmQuery) ([]alarm.Alarm, int64, error)
	// Acknowledge marks an ACTIVE alarm ACKNOWLEDGED by by, with comment, at at. It returns
	// ErrNotFound for an unknown id and ErrConflict for an alarm that is not ACTIVE. When
	// announce is not nil, it is called with the acknowledged alarm and the event it returns
	// is enqueued for delivery (see DeliveryQueue) in the same transaction.
	Acknowledge(ctx context.Context, id, by, comment string, at time.Time, announce func(alarm.Alarm) event.Event) (alarm.Alarm, error)
	// AnyOpen reports whether the equipment has an open alarm.
	AnyOpen(ctx context.Context, equipmentID string) (bool, error)
	// OpenEquipment returns the equipment that has an open alarm.
	OpenEquipment(ctx context.Context) (map[string]bool, error)
	// Stats sums up the alarms that opened in [from, to) of the sensors s selects.
	Stats(ctx context.Context, s SensorScope, from, to time.Time) (AlarmStats, error)
}

// AlarmStats sums up alarms: how many opened, by severity, and how long they took to be
// acknowledged and to clear, from their opening (the timestamp of the reading that opened
// them).
type AlarmStats struct {
	BySeverity map[anomaly.Severity]int64
	// Acknowledged alarms, and the sum of their times to acknowledgement.
	Acknowledged   int64
	TimeToAckTotal time.Duration
	// Cleared alarms, and the sum of their times to clearing.
	Cleared          int64
	TimeToClearTotal time.Duration
}
