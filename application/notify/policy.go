package notify

import (
	"time"

	"github.com/production-line-monitor/plm/ports"
)

// Backoff spaces the attempts at a delivery: exponential growth with full jitter. The delay
// after the n-th failed attempt is drawn uniformly from [0, Ceiling(n)], so that deliveries
// that failed together (an endpoint that went down) do not all come back at once.
type Backoff struct {
	// Base is the ceiling after the first failed attempt; it doubles with each one after.
	Base time.Duration
	// Cap bounds the ceiling.
	Cap time.Duration
}

// Ceiling is the longest delay after the n-th failed attempt (n from 1): Base·2^(n-1), at
// most Cap.
func (b Backoff) Ceiling(n int) time.Duration {
	c := b.Base
	for i := 1; i < n && c < b.Cap; i++ {
		c *= 2
	}
	return min(c, b.Cap)
}

// Delay is the delay after the n-th failed attempt for a uniform draw u in [0, 1): u of
// Ceiling(n), rounded down to the millisecond (storage keeps no finer).
func (b Backoff) Delay(n int, u float64) time.Duration {
	u = min(max(u, 0), 1)
	return time.Duration(u * float64(b.Ceiling(n))).Truncate(time.Millisecond)
}

// Breaker is the circuit breaker of a subscription: after Failures attempts in a row have
// failed, no delivery is attempted for Cooldown. After the cooldown one delivery is tried
// (half-open): its success closes the breaker, its failure opens it again for Cooldown.
// The breaker's state is kept with the subscription (ports.Subscription's Failures and
// PausedUntil), so that every process shares it.
type Breaker struct {
	Failures int
	Cooldown time.Duration
}

// After is the breaker after an attempt made at now that succeeded (ok) or failed, given
// the breaker before it.
func (b Breaker) After(failures int, pausedUntil time.Time, ok bool, now time.Time) (int, time.Time) {
	if ok {
		return 0, time.Time{}
	}
	failures++
	if failures >= b.Failures {
		return failures, now.Add(b.Cooldown)
	}
	return failures, pausedUntil
}

// BreakerState is how a subscription's breaker stands. Its value is the API's.
type BreakerState string

// The breaker's states.
const (
	// BreakerClosed: deliveries are attempted as they come due.
	BreakerClosed BreakerState = "CLOSED"
	// BreakerOpen: no delivery is attempted until the cooldown ends.
	BreakerOpen BreakerState = "OPEN"
	// BreakerHalfOpen: the cooldown has ended; the next attempt decides.
	BreakerHalfOpen BreakerState = "HALF_OPEN"
)

// StateOf reads the state of s's breaker at now. A breaker that opened keeps its
// PausedUntil until an attempt succeeds, so a PausedUntil that has passed is half-open.
func StateOf(s ports.Subscription, now time.Time) BreakerState {
	switch {
	case s.PausedUntil.IsZero():
		return BreakerClosed
	case s.PausedUntil.After(now):
		return BreakerOpen
	}
	return BreakerHalfOpen
}
