package redis_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/redis"
	"github.com/production-line-monitor/plm/tests/redistest"
)

// server is a key prefix of one test on the test server.
type server struct {
	url, prefix string
}

// newServer skips t (fails it under PLM_REQUIRE_SERVICES=1) without a server, and gives it
// a prefix of its own, whose keys are deleted when t ends.
func newServer(t testing.TB) server {
	t.Helper()
	url := redistest.Require(t)
	return server{url: url, prefix: redistest.Prefix(t, url)}
}

// open opens a client over the prefix, as one process would, closed when t ends.
func (s server) open(t testing.TB) *redis.Client {
	t.Helper()
	c, err := redis.Open(redis.Config{URL: s.url, Prefix: s.prefix})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// pttl is the time to live of key (under the prefix): -1 without expiry, -2 without key.
func (s server) pttl(t testing.TB, key string) time.Duration {
	t.Helper()
	c := redistest.Connect(t, s.url)
	ms, err := c.Do(t.Context(), c.B().Pttl().Key(s.prefix+":"+key).Build()).AsInt64()
	require.NoError(t, err)
	if ms < 0 {
		return time.Duration(ms)
	}
	return time.Duration(ms) * time.Millisecond
}

// eventually polls cond every few milliseconds until it holds, and fails t if it does not
// within a few seconds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
