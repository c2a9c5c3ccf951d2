package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/production-line-monitor/plm/ports"
)

// takeToken takes a token from a bucket, refilled first for the time since it was last
// counted, by the server's clock.
//
// KEYS[1] is the bucket: a hash of tokens (how many are left, fractional) and at (when they
// were counted, in server microseconds). ARGV[1] is the burst, ARGV[2] the period in
// microseconds over which an empty bucket refills to the burst. The answer is {1, 0} when a
// token was taken, {0, microseconds until one is available} when none was.
var takeToken = newScript(`
local limit = tonumber(ARGV[1])
local per = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then
  tokens, at = limit, now
elseif now > at then
  tokens = math.min(limit, tokens + (now - at) * limit / per)
  at = now
end
local ok, wait = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
else
  wait = math.ceil((1 - tokens) * per / limit)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.0f', at))
-- A full bucket is as good as none: the key expires a little after the bucket has refilled.
redis.call('PEXPIRE', KEYS[1], math.ceil((limit - tokens) * per / limit / 1000) + 1000)
return {ok, wait}
`)

// RateLimiter is a token bucket per key, refilled at limit per period with a burst of limit,
// kept in Redis and shared by every process that uses the same prefix: together they allow
// what one process would. Key "<prefix>:rate:<key>"; it expires once its bucket is full again.
type RateLimiter struct {
	c    *Client
	args []string // the script's arguments; nil allows everything
}

var _ ports.RateLimiter = (*RateLimiter)(nil)

// NewRateLimiter allows limit requests per period per key. A limit of zero (or less), or a
// period under a microsecond, allows everything without asking Redis.
func NewRateLimiter(c *Client, limit int, per time.Duration) *RateLimiter {
	l := &RateLimiter{c: c}
	if limit > 0 && per >= time.Microsecond {
		l.args = []string{strconv.Itoa(limit), strconv.FormatInt(per.Microseconds(), 10)}
	}
	return l
}

// Allow implements ports.RateLimiter. When it refuses, retryAfter is the time until a token
// is available, rounded up to the millisecond.
func (l *RateLimiter) Allow(ctx context.Context, key string) (bool, time.Duration, error) {
	if l.args == nil {
		return true, 0, nil
	}
	got, err := takeToken.run(ctx, l.c.rc, []string{l.c.key("rate", key)}, l.args).AsIntSlice()
	if err != nil {
		return false, 0, fail(ctx, "rate limit", err)
	}
	if len(got) != 2 {
		return false, 0, fmt.Errorf("rate limit: unexpected answer %v", got)
	}
	if got[0] == 1 {
		return true, 0, nil
	}
	return false, time.Duration((got[1]+999)/1000) * time.Millisecond, nil
}
