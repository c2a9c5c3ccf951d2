package memory

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/production-line-monitor/plm/ports"
)

// Clock is a clock that moves only when told to.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

var _ ports.Clock = (*Clock)(nil)

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now implements ports.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// IDs hands out "id-1", "id-2", ... in order.
type IDs struct{ n atomic.Int64 }

var _ ports.IDGenerator = (*IDs)(nil)

// NewID implements ports.IDGenerator.
func (g *IDs) NewID() string { return fmt.Sprintf("id-%d", g.n.Add(1)) }

// Publisher records published events, or hands each to Deliver when it is set.
type Publisher struct {
	mu sync.Mutex
	// Err, when set, is returned by PublishReadings and nothing is recorded.
	Err error
	// Deliver, when set, receives each event in place of the record (for example the
	// processing use case, to run the pipeline synchronously).
	Deliver func(ctx context.Context, e ports.ReadingsReceived) error
	events  []ports.ReadingsReceived
}

var _ ports.ReadingsPublisher = (*Publisher)(nil)

// PublishReadings implements ports.ReadingsPublisher.
func (p *Publisher) PublishReadings(ctx context.Context, e ports.ReadingsReceived) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Err != nil {
		return p.Err
	}
	if p.Deliver != nil {
		return p.Deliver(ctx, e)
	}
	p.events = append(p.events, e)
	return nil
}

// Events returns what was published, in order.
func (p *Publisher) Events() []ports.ReadingsReceived {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ports.ReadingsReceived(nil), p.events...)
}
