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
