package memory

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/production-line-monitor/plm/ports"
)

// RateLimiter is a token bucket per key, refilled at Limit per Per with a burst of Limit.
// A Limit of zero allows everything. It is the limiter of a single process.
type RateLimiter struct {
	limit   float64
	per     time.Duration
	now     func() time.Time
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

var _ ports.RateLimiter = (*RateLimiter)(nil)

// NewRateLimiter allows limit requests per period per key; now tells the time.
func NewRateLimiter(limit int, per time.Duration, now func() time.Time) *RateLimiter {
	return &RateLimiter{limit: float64(limit), per: per, now: now, buckets: make(map[string]*bucket)}
}

// Allow implements ports.RateLimiter.
func (l *RateLimiter) Allow(_ context.Context, key string) (bool, time.Duration, error) {
	if l.limit <= 0 {
		return true, 0, nil
	}
	now := l.now()
	rate := l.limit / l.per.Seconds() // tokens per second
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.limit, at: now}
		l.buckets[key] = b
	}
	if el := now.Sub(b.at).Seconds(); el > 0 {
		b.tokens = math.Min(l.limit, b.tokens+el*rate)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0, nil
	}
	wait := time.Duration((1 - b.tokens) / rate * float64(time.Second))
	return false, wait, nil
}
