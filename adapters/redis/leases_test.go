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
	"github.com/production-line-monitor/plm/ports"
)

func holder(t *testing.T, l *redis.Leases, name string) string {
	t.Helper()
	h, err := l.Holder(t.Context(), name)
	require.NoError(t, err)
	return h
}

func TestIntegrationLeaseIsExclusive(t *testing.T) {
	srv := newServer(t)
	a, b := redis.NewLeases(srv.open(t)), redis.NewLeases(srv.open(t)) // two workers
	ctx := t.Context()
	assert.Equal(t, "", holder(t, a, "p0"), "free")

	ok, err := a.Acquire(ctx, "p0", "worker-a", time.Hour)
	require.NoError(t, err)
	assert.True(t, ok, "a takes the free lease")
	ok, err = b.Acquire(ctx, "p0", "worker-b", time.Hour)
	require.NoError(t, err)
	assert.False(t, ok, "b cannot take a's lease")
	assert.Equal(t, "worker-a", holder(t, b, "p0"))

	ok, err = b.Renew(ctx, "p0", "worker-b", 3*time.Hour)
	require.NoError(t, err)
	assert.False(t, ok, "b cannot renew a's lease")
	assert.LessOrEqual(t, srv.pttl(t, "lease:p0"), time.Hour, "nor extend it")

	ok, err = a.Acquire(ctx, "p0", "worker-a", 2*time.Hour)
	require.NoError(t, err)
	assert.True(t, ok, "a acquiring again renews")
	assert.Greater(t, srv.pttl(t, "lease:p0"), time.Hour)
	ok, err = a.Renew(ctx, "p0", "worker-a", 3*time.Hour)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Greater(t, srv.pttl(t, "lease:p0"), 2*time.Hour)

	ok, err = b.Acquire(ctx, "p1", "worker-b", time.Hour)
	require.NoError(t, err)
	assert.True(t, ok, "another lease is another matter")
	assert.Equal(t, "worker-a", holder(t, a, "p0"))
}

func TestIntegrationLeaseExpiryFreesIt(t *testing.T) {
	l := redis.NewLeases(newServer(t).open(t))
	ctx := t.Context()
	ok, err := l.Acquire(ctx, "p0", "worker-a", 20*time.Millisecond)
	require.NoError(t, err)
	require.True(t, ok)
	eventually(t, "the lease expires", func() bool { return holder(t, l, "p0") == "" })

	ok, err = l.Renew(ctx, "p0", "worker-a", time.Hour)
	require.NoError(t, err)
	assert.False(t, ok, "an expired lease cannot be renewed")
	ok, err = l.Acquire(ctx, "p0", "worker-b", time.Hour)
	require.NoError(t, err)
	assert.True(t, ok, "another worker takes it")
	assert.Equal(t, "worker-b", holder(t, l, "p0"))
}

func TestIntegrationLeaseRelease(t *testing.T) {
	l := redis.NewLeases(newServer(t).open(t))
	ctx := t.Context()
	ok, err := l.Acquire(ctx, "p0", "worker-a", time.Hour)
	require.NoError(t, err)
	require.True(t, ok)

	require.NoError(t, l.Release(ctx, "p0", "worker-b"))
	assert.Equal(t, "worker-a", holder(t, l, "p0"), "only the holder releases")
	require.NoError(t, l.Release(ctx, "p0", "worker-a"))
	assert.Equal(t, "", holder(t, l, "p0"))
	require.NoError(t, l.Release(ctx, "p0", "worker-a"), "releasing a free lease is harmless")

	ok, err = l.Acquire(ctx, "p0", "worker-b", time.Hour)
	require.NoError(t, err)
	assert.True(t, ok, "free again")
}

func TestIntegrationLeaseHasOneWinner(t *testing.T) {
	srv := newServer(t)
	workers := []*redis.Leases{redis.NewLeases(srv.open(t)), redis.NewLeases(srv.open(t))}
	var winners atomic.Int64
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			ok, err := workers[i%2].Acquire(t.Context(), "p0", fmt.Sprintf("worker-%d", i), time.Hour)
			assert.NoError(t, err)
			if ok {
				winners.Add(1)
			}
		})
	}
	wg.Wait()
	assert.EqualValues(t, 1, winners.Load())
}

func TestIntegrationLeaseRefusesBadArguments(t *testing.T) {
	l := redis.NewLeases(newServer(t).open(t))
	tests := []struct {
		name  string
		owner string
		ttl   time.Duration
	}{
		{"no_owner", "", time.Second},
		{"zero_ttl", "worker-a", 0},
		{"negative_ttl", "worker-a", -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := l.Acquire(t.Context(), "p0", tt.owner, tt.ttl)
			assert.Error(t, err)
			assert.NotErrorIs(t, err, ports.ErrUnavailable)
			assert.False(t, ok)
			ok, err = l.Renew(t.Context(), "p0", tt.owner, tt.ttl)
			assert.Error(t, err)
			assert.False(t, ok)
			assert.Error(t, l.Join(t.Context(), "workers", tt.owner, tt.ttl))
			assert.Equal(t, "", holder(t, l, "p0"))
		})
	}
}

func TestIntegrationMembers(t *testing.T) {
	srv := newServer(t)
	a, b := redis.NewLeases(srv.open(t)), redis.NewLeases(srv.open(t))
	ctx := t.Context()
	members := func() []string {
		t.Helper()
		m, err := a.Members(ctx, "workers")
		require.NoError(t, err)
		return m
	}
	assert.Empty(t, members(), "nobody yet")

	require.NoError(t, b.Join(ctx, "workers", "worker-b", time.Hour))
	require.NoError(t, a.Join(ctx, "workers", "worker-c", time.Hour))
	require.NoError(t, a.Join(ctx, "workers", "worker-a", time.Hour))
	assert.Equal(t, []string{"worker-a", "worker-b", "worker-c"}, members(), "sorted")
	require.NoError(t, a.Join(ctx, "workers", "worker-a", time.Hour))
	assert.Equal(t, []string{"worker-a", "worker-b", "worker-c"}, members(), "joining again renews")
	ttl := srv.pttl(t, "members:workers")
	assert.Greater(t, ttl, time.Hour-time.Minute)
	assert.LessOrEqual(t, ttl, time.Hour, "the group expires with its last member")

	require.NoError(t, a.Join(ctx, "workers", "worker-c", time.Millisecond)) // c stops renewing
	eventually(t, "c expires", func() bool { return len(members()) == 2 })
	assert.Equal(t, []string{"worker-a", "worker-b"}, members())

	require.NoError(t, b.Leave(ctx, "workers", "worker-b"))
	assert.Equal(t, []string{"worker-a"}, members())
	require.NoError(t, b.Leave(ctx, "workers", "worker-b"), "leaving twice is harmless")

	other, err := b.Members(ctx, "others")
	require.NoError(t, err)
	assert.Empty(t, other, "groups are independent")
}
