package redis_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/redis"
	"github.com/production-line-monitor/plm/ports"
)

func TestOpenRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  redis.Config
	}{
		{"no_url", redis.Config{Prefix: "plm"}},
		{"no_prefix", redis.Config{URL: "redis://127.0.0.1:6379/0"}},
		{"bad_scheme", redis.Config{URL: "http://127.0.0.1:6379", Prefix: "plm"}},
		{"bad_database", redis.Config{URL: "redis://127.0.0.1:6379/zero", Prefix: "plm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := redis.Open(tt.cfg)
			assert.ErrorIs(t, err, redis.ErrBadConfig)
			assert.NotErrorIs(t, err, ports.ErrUnavailable)
		})
	}
}

func TestOpenUnreachable(t *testing.T) {
	// A server that hangs up on every connection.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.Close()
		}
	}()
	tests := []struct {
		name string
		url  string
	}{
		{"closed_port", "redis://127.0.0.1:1/0"},
		{"hangs_up", "redis://" + ln.Addr().String() + "/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := redis.Open(redis.Config{URL: tt.url, Prefix: "plm"})
			assert.Nil(t, c)
			assert.ErrorIs(t, err, ports.ErrUnavailable)
			assert.NotErrorIs(t, err, redis.ErrBadConfig)
		})
	}
}

func TestIntegrationPing(t *testing.T) {
	c := newServer(t).open(t)
	assert.Equal(t, "redis", c.Name())
	require.NoError(t, c.Ping(t.Context()))
	c.Close()
	assert.ErrorIs(t, c.Ping(t.Context()), ports.ErrUnavailable)
}

func TestIntegrationClosedClientIsUnavailable(t *testing.T) {
	c := newServer(t).open(t)
	c.Close()
	ctx := t.Context()
	calls := map[string]func() error{
		"allow": func() error {
			_, _, err := redis.NewRateLimiter(c, 5, time.Minute).Allow(ctx, "k")
			return err
		},
		"beat": func() error {
			return redis.NewLiveStore(c).Beat(ctx, []ports.Sighting{{EquipmentID: "press-01", LastSeenAt: t0}})
		},
		"record": func() error {
			return redis.NewLiveStore(c).Record(ctx, []ports.StoredReading{reading(t, "press-01", "r-1", t0)})
		},
		"warm": func() error { return redis.NewLiveStore(c).Warm(ctx, "press-01", nil) },
		"live": func() error {
			_, err := redis.NewLiveStore(c).Live(ctx, "press-01")
			return err
		},
		"acquire": func() error {
			_, err := redis.NewLeases(c).Acquire(ctx, "p0", "w1", time.Second)
			return err
		},
		"renew": func() error {
			_, err := redis.NewLeases(c).Renew(ctx, "p0", "w1", time.Second)
			return err
		},
		"release": func() error { return redis.NewLeases(c).Release(ctx, "p0", "w1") },
		"holder": func() error {
			_, err := redis.NewLeases(c).Holder(ctx, "p0")
			return err
		},
		"join":  func() error { return redis.NewLeases(c).Join(ctx, "workers", "w1", time.Second) },
		"leave": func() error { return redis.NewLeases(c).Leave(ctx, "workers", "w1") },
		"members": func() error {
			_, err := redis.NewLeases(c).Members(ctx, "workers")
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			assert.ErrorIs(t, call(), ports.ErrUnavailable)
		})
	}
}

func TestIntegrationCanceledContextIsNotUnavailability(t *testing.T) {
	c := newServer(t).open(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _, err := redis.NewRateLimiter(c, 5, time.Minute).Allow(ctx, "k")
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ports.ErrUnavailable, "canceled by the caller, not by Redis")
}

func TestIntegrationSettleKeepsTheFirstValue(t *testing.T) {
	s := newServer(t)
	first, second := s.open(t), s.open(t) // as two processes

	got, err := first.Settle(t.Context(), "partitions", "16")
	require.NoError(t, err)
	require.Equal(t, "16", got)
	got, err = second.Settle(t.Context(), "partitions", "8")
	require.NoError(t, err)
	require.Equal(t, "16", got, "a later process sees what the first recorded")
	got, err = second.Settle(t.Context(), "other", "8")
	require.NoError(t, err)
	require.Equal(t, "8", got)
}
