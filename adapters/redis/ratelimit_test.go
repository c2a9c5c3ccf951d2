package redis_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/redis"
)

func TestIntegrationRateLimiterBurstThenRefusal(t *testing.T) {
	srv := newServer(t)
	l := redis.NewRateLimiter(srv.open(t), 3, time.Hour)
	for i := range 3 {
		ok, retryAfter, err := l.Allow(t.Context(), "caller")
		require.NoError(t, err)
		assert.True(t, ok, "request %d of the burst", i+1)
		assert.Zero(t, retryAfter)
	}
	ok, retryAfter, err := l.Allow(t.Context(), "caller")
	require.NoError(t, err)
	assert.False(t, ok, "over the burst")
	// A token every 20 minutes; the first of them is barely under way.
	assert.LessOrEqual(t, retryAfter, 20*time.Minute)
	assert.Greater(t, retryAfter, 19*time.Minute)
	assert.Zero(t, retryAfter%time.Millisecond, "whole milliseconds")

	ttl := srv.pttl(t, "rate:caller")
	assert.Greater(t, ttl, time.Hour-time.Minute, "kept while refilling")
	assert.LessOrEqual(t, ttl, time.Hour+time.Second, "expires soon after it is full again")
}

func TestIntegrationRateLimiterRefills(t *testing.T) {
	l := redis.NewRateLimiter(newServer(t).open(t), 5, 200*time.Millisecond) // a token every 40ms
	allowed := 0
	var retryAfter time.Duration
	for range 1000 {
		ok, ra, err := l.Allow(t.Context(), "caller")
		require.NoError(t, err)
		if !ok {
			retryAfter = ra
			break
		}
		allowed++
	}
	require.GreaterOrEqual(t, allowed, 5, "the burst is allowed")
	require.Greater(t, retryAfter, time.Duration(0), "refused in the end")
	assert.LessOrEqual(t, retryAfter, 40*time.Millisecond, "at most the time of one token")

	// Waiting as told gets a token.
	eventually(t, "a token after waiting", func() bool {
		time.Sleep(retryAfter)
		ok, ra, err := l.Allow(t.Context(), "caller")
		require.NoError(t, err)
		retryAfter = ra
		return ok
	})
	// Tokens come no faster than one every 40ms: however slow the machine, what passes
	// while asking without pause is bounded by the time it took.
	start := time.Now()
	passed := 0
	for time.Since(start) < 300*time.Millisecond {
		ok, _, err := l.Allow(t.Context(), "caller")
		require.NoError(t, err)
		if ok {
			passed++
		}
		time.Sleep(time.Millisecond)
	}
	refills := int(time.Since(start)/(40*time.Millisecond)) + 1
	assert.LessOrEqual(t, passed, refills, "allowed in %s", time.Since(start))

	// Idle for the whole period, the bucket is full again: a whole burst passes at once.
	time.Sleep(200 * time.Millisecond)
	for i := range 5 {
		ok, _, err := l.Allow(t.Context(), "caller")
		require.NoError(t, err)
		assert.True(t, ok, "request %d of the burst after idling", i+1)
	}
}

func TestIntegrationRateLimiterIsSharedBetweenProcesses(t *testing.T) {
	srv := newServer(t)
	limiters := []*redis.RateLimiter{ // as if in two processes
		redis.NewRateLimiter(srv.open(t), 10, time.Hour),
		redis.NewRateLimiter(srv.open(t), 10, time.Hour),
	}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			ok, _, err := limiters[i%2].Allow(t.Context(), "caller")
			assert.NoError(t, err)
			if ok {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	assert.EqualValues(t, 10, allowed.Load(), "one budget for both")
	for i, l := range limiters {
		ok, _, err := l.Allow(t.Context(), "caller")
		require.NoError(t, err)
		assert.False(t, ok, "limiter %d", i)
	}
}

func TestIntegrationRateLimiterKeysAreIndependent(t *testing.T) {
	l := redis.NewRateLimiter(newServer(t).open(t), 1, time.Hour)
	tests := []struct {
		key  string
		want bool
	}{
		{"a", true},
		{"a", false},
		{"b", true},
		{"b", false},
		{"a:b", true}, // no confusion between keys that share a part
		{"a", false},
	}
	for i, tt := range tests {
		ok, _, err := l.Allow(t.Context(), tt.key)
		require.NoError(t, err)
		assert.Equal(t, tt.want, ok, "request %d (%s)", i, tt.key)
	}
}

func TestIntegrationRateLimiterWithoutLimitAsksNothing(t *testing.T) {
	c := newServer(t).open(t)
	c.Close() // any call to Redis would fail
	tests := []struct {
		name  string
		limit int
		per   time.Duration
	}{
		{"zero_limit", 0, time.Minute},
		{"negative_limit", -1, time.Minute},
		{"no_period", 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := redis.NewRateLimiter(c, tt.limit, tt.per)
			for range 100 {
				ok, retryAfter, err := l.Allow(t.Context(), "caller")
				require.NoError(t, err)
				require.True(t, ok)
				require.Zero(t, retryAfter)
			}
		})
	}
}

func BenchmarkRateLimiterAllow(b *testing.B) {
	srv := newServer(b)
	l := redis.NewRateLimiter(srv.open(b), 1_000_000_000, time.Second)
	var caller atomic.Int64
	b.SetParallelism(8) // requests of many connections at once, as a server sees them
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := fmt.Sprintf("caller-%d", caller.Add(1)%16)
		for pb.Next() {
			if ok, _, err := l.Allow(b.Context(), key); err != nil || !ok {
				b.Errorf("Allow = %v, %v", ok, err)
				return
			}
		}
	})
}
