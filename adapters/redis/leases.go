package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// acquireLease takes a lease that is free or already held by the owner. KEYS[1] is the
// lease, ARGV[1] the owner, ARGV[2] the time to live in milliseconds. The answer is 1 when
// the owner holds the lease afterwards, 0 otherwise.
var acquireLease = newScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// renewLease extends a lease the owner holds. KEYS[1] is the lease, ARGV[1] the owner,
// ARGV[2] the time to live in milliseconds. The answer is 1 when the lease was extended.
var renewLease = newScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// releaseLease frees a lease the owner holds. KEYS[1] is the lease, ARGV[1] the owner.
var releaseLease = newScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// joinGroup adds a member to a group, alive for a time by the server's clock, and drops the
// members whose time is over. KEYS[1] is the group, a sorted set of members scored by when
// they expire (server microseconds); ARGV[1] is the member, ARGV[2] its time to live in
// microseconds. The group expires with its last member.
var joinGroup = newScript(`
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[2])), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(last[2]) - now) / 1000))
return 0
`)

// groupMembers drops the members of a group whose time is over, by the server's clock, and
// returns the others. KEYS[1] is the group (see joinGroup).
var groupMembers = newScript(`
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
return redis.call('ZRANGE', KEYS[1], 0, -1)
`)

// Leases are exclusive, expiring claims shared by every process, such as a worker's claim
// on a partition of the readings queue, and groups of members that stay alive while they
// keep joining. A lease is "<prefix>:lease:<name>", holding its owner and expiring with its
// time to live; a group is "<prefix>:members:<group>". Times to live are counted by the
// server, so that the clocks of the processes do not matter.
type Leases struct {
	c *Client
}

// NewLeases keeps leases and groups through c.
func NewLeases(c *Client) *Leases { return &Leases{c: c} }

// Acquire takes lease name for owner for ttl when it is free or already owner's (then it
// renews it), and reports whether owner holds it. ttl is rounded up to the millisecond.
func (l *Leases) Acquire(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	op := "acquire lease " + name
	if err := checkClaim(owner, ttl); err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	return l.decide(ctx, op, acquireLease, name, owner, millis(ttl))
}

// Renew extends lease name by ttl from now while owner holds it, and reports whether it
// did; false when the lease is free or another's.
func (l *Leases) Renew(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	op := "renew lease " + name
	if err := checkClaim(owner, ttl); err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	return l.decide(ctx, op, renewLease, name, owner, millis(ttl))
}

// Release frees lease name if owner holds it, and does nothing otherwise.
func (l *Leases) Release(ctx context.Context, name, owner string) error {
	_, err := l.decide(ctx, "release lease "+name, releaseLease, name, owner)
	return err
}

// decide runs a lease script over lease name and reports whether it answered 1.
func (l *Leases) decide(ctx context.Context, op string, sc *script, name string, args ...string) (bool, error) {
	n, err := sc.run(ctx, l.c.rc, []string{l.c.key("lease", name)}, args).AsInt64()
	if err != nil {
		return false, fail(ctx, op, err)
	}
	return n == 1, nil
}

// Holder returns the owner of lease name, "" when it is free.
func (l *Leases) Holder(ctx context.Context, name string) (string, error) {
	owner, err := l.c.rc.Do(ctx, l.c.rc.B().Get().Key(l.c.key("lease", name)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return "", nil
	}
	if err != nil {
		return "", fail(ctx, "read lease "+name, err)
	}
	return owner, nil
}

// Join registers member of group as alive for ttl from now; members renew by joining
// again. ttl is rounded up to the microsecond.
func (l *Leases) Join(ctx context.Context, group, member string, ttl time.Duration) error {
	op := "join group " + group
	if err := checkClaim(member, ttl); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	us := strconv.FormatInt(int64((ttl+time.Microsecond-1)/time.Microsecond), 10)
	err := joinGroup.run(ctx, l.c.rc, []string{l.c.key("members", group)}, []string{member, us}).Error()
	return fail(ctx, op, err)
}

// Leave removes member from group at once.
func (l *Leases) Leave(ctx context.Context, group, member string) error {
	err := l.c.rc.Do(ctx, l.c.rc.B().Zrem().Key(l.c.key("members", group)).Member(member).Build()).Error()
	return fail(ctx, "leave group "+group, err)
}

// Members lists the members of group that are alive, sorted.
func (l *Leases) Members(ctx context.Context, group string) ([]string, error) {
	members, err := groupMembers.run(ctx, l.c.rc, []string{l.c.key("members", group)}, nil).AsStrSlice()
	if err != nil {
		return nil, fail(ctx, "list group "+group, err)
	}
	slices.Sort(members)
	return members, nil
}

// checkClaim checks the owner (or member) and time to live of a claim.
func checkClaim(owner string, ttl time.Duration) error {
	if owner == "" {
		return errors.New("the owner is empty")
	}
	if ttl <= 0 {
		return fmt.Errorf("the time to live %s is not positive", ttl)
	}
	return nil
}

// millis is d in milliseconds, rounded up, as the script argument.
func millis(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Millisecond-1)/time.Millisecond), 10)
}
