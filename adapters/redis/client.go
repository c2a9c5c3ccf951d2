// Package redis keeps the state that the serve and worker processes of one deployment share
// in Redis, apart from the Watermill streams: the rate limiter's buckets, the live state of
// each equipment, and the leases and memberships the workers use to share the queue's
// partitions. It talks to Redis (5 or later) through rueidis, which pipelines concurrent
// calls on a few connections. Every key starts with the configured prefix; decisions that
// read and write are Lua scripts, run atomically by the server, and read the server's clock
// (TIME), so that the clocks of the processes do not matter.
package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/redis/rueidis"

	"github.com/production-line-monitor/plm/ports"
)

// Config says which Redis to use and how to name the keys.
type Config struct {
	// URL is the redis:// (or rediss://) URL of the server, with its database number.
	URL string
	// Prefix starts every key ("plm" gives "plm:rate:…"); processes of one deployment share
	// it, deployments sharing a server must not.
	Prefix string
}

// ErrBadConfig is returned by Open for a Config it cannot use.
var ErrBadConfig = errors.New("invalid redis configuration")

// Client is a connection to Redis shared by the stores of this package. It answers
// readiness as "redis".
type Client struct {
	rc     rueidis.Client
	prefix string
}

var _ ports.Pinger = (*Client)(nil)

// Open connects to the server of cfg.URL. A server that cannot be reached gives an error
// wrapping ports.ErrUnavailable.
func Open(cfg Config) (*Client, error) {
	if cfg.URL == "" || cfg.Prefix == "" {
		return nil, fmt.Errorf("open redis: %w: the URL and the key prefix are required", ErrBadConfig)
	}
	opt, err := rueidis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("open redis: %w: %w", ErrBadConfig, err)
	}
	opt.DisableCache = true // no client-side caching: every read asks the server
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		if unavailable(err) {
			return nil, fmt.Errorf("open redis %s: %w: %w", opt.InitAddress[0], ports.ErrUnavailable, err)
		}
		return nil, fmt.Errorf("open redis %s: %w", opt.InitAddress[0], err)
	}
	return &Client{rc: rc, prefix: cfg.Prefix}, nil
}

// Close closes the connections. Later calls fail with ports.ErrUnavailable.
func (c *Client) Close() { c.rc.Close() }

// Name implements ports.Pinger.
func (c *Client) Name() string { return "redis" }

// Ping implements ports.Pinger: a PING to the server. Every failure wraps
// ports.ErrUnavailable.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.rc.Do(ctx, c.rc.B().Ping().Build()).Error(); err != nil {
		return fmt.Errorf("ping redis: %w: %w", ports.ErrUnavailable, err)
	}
	return nil
}

// key is the key of the given kind and name: "<prefix>:<kind>:<name>".
func (c *Client) key(kind, name string) string {
	return c.prefix + ":" + kind + ":" + name
}

// fail turns err, met while doing op, into the error the ports promise: ErrUnavailable when
// the server cannot be reached or cannot serve now. A nil err stays nil; a canceled or
// expired context of the caller is reported as such.
func fail(ctx context.Context, op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", op, err)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w (%w)", op, ctx.Err(), err)
	case unavailable(err):
		return fmt.Errorf("%s: %w: %w", op, ports.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// unavailable tells errors of a connection that could not be made, was lost or timed out,
// and the answers of a server that cannot serve now but may later.
func unavailable(err error) bool {
	var redisErr *rueidis.RedisError
	if errors.As(err, &redisErr) {
		code, _, _ := strings.Cut(redisErr.Error(), " ")
		switch code {
		case "LOADING", // restarting, reading its data
			"BUSY",       // running a long script
			"MASTERDOWN", // a replica that lost its primary
			"READONLY",   // a replica, written to during a fail-over
			"TRYAGAIN",   // a cluster resharding
			"CLUSTERDOWN",
			"NOREPLICAS", // too few replicas to accept writes
			"OOM":        // out of memory
			return true
		}
		return false
	}
	var netErr net.Error
	return errors.Is(err, rueidis.ErrClosing) || errors.Is(err, rueidis.ErrNoAddr) ||
		errors.As(err, &netErr) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Settle records value under the deployment-wide setting name, unless one is recorded
// already, and returns the value recorded: value on the first call of a deployment, and
// whatever the first call recorded on later ones.
func (c *Client) Settle(ctx context.Context, name, value string) (string, error) {
	key := c.key("setting", name)
	err := c.rc.Do(ctx, c.rc.B().Set().Key(key).Value(value).Nx().Build()).Error()
	if err != nil && !rueidis.IsRedisNil(err) {
		return "", fail(ctx, "record setting "+name, err)
	}
	got, err := c.rc.Do(ctx, c.rc.B().Get().Key(key).Build()).ToString()
	if err != nil {
		return "", fail(ctx, "read setting "+name, err)
	}
	return got, nil
}

// DeleteAll unlinks every key under the client's prefix: the end of a throwaway
// deployment's data (a simulation's), never a running one's.
func (c *Client) DeleteAll(ctx context.Context) error {
	var cursor uint64
	for {
		e, err := c.rc.Do(ctx, c.rc.B().Scan().Cursor(cursor).Match(c.prefix+":*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			return fail(ctx, "scan "+c.prefix+":*", err)
		}
		if len(e.Elements) > 0 {
			if err := c.rc.Do(ctx, c.rc.B().Unlink().Key(e.Elements...).Build()).Error(); err != nil {
				return fail(ctx, "unlink", err)
			}
		}
		if e.Cursor == 0 {
			return nil
		}
		cursor = e.Cursor
	}
}
