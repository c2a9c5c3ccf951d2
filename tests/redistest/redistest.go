// Package redistest gives tests a key prefix of their own on the Redis server named by
// PLM_TEST_REDIS_URL (default: the local server). Without a server the test is skipped with
// a loud message, or fails when PLM_REQUIRE_SERVICES=1, so that CI cannot pass by skipping.
// The server is shared: tests never flush it, they delete their own keys.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

// timeout bounds the check that the server answers.
const timeout = 3 * time.Second

// URL is the Redis server the tests use.
func URL() string {
	if u := os.Getenv("PLM_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Require checks that the server answers PING, or skips (fails under
// PLM_REQUIRE_SERVICES=1) t when it does not. It returns the server's URL.
func Require(t testing.TB) string {
	t.Helper()
	u := URL()
	if err := ping(u); err != nil {
		if os.Getenv("PLM_REQUIRE_SERVICES") == "1" {
			t.Fatalf("Redis is required (PLM_REQUIRE_SERVICES=1) but does not answer at %s: %v", u, err)
		}
		t.Skipf("SKIPPED: Redis does not answer at %s (%v); set PLM_REQUIRE_SERVICES=1 to make this a failure", u, err)
	}
	return u
}

// Prefix returns a key prefix no other test uses ("plmtest-" and 12 hex digits). When t
// ends, every key of the server at url that starts with it is deleted.
func Prefix(t testing.TB, url string) string {
	t.Helper()
	raw := make([]byte, 6)
	_, _ = rand.Read(raw)
	prefix := "plmtest-" + hex.EncodeToString(raw)
	c, err := connect(url)
	if err != nil {
		t.Fatalf("connect to Redis at %s: %v", url, err)
	}
	t.Cleanup(func() {
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := deleteKeys(ctx, c, prefix); err != nil {
			t.Errorf("delete the keys of %s: %v", prefix, err)
		}
	})
	return prefix
}

// Connect opens a client of its own to the server at url, closed when t ends, for tests
// that look at the keys directly.
func Connect(t testing.TB, url string) rueidis.Client {
	t.Helper()
	c, err := connect(url)
	if err != nil {
		t.Fatalf("connect to Redis at %s: %v", url, err)
	}
	t.Cleanup(c.Close)
	return c
}

// connect opens a client of its own to the server at url.
func connect(url string) (rueidis.Client, error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opt.DisableCache = true
	if opt.Dialer.Timeout == 0 {
		opt.Dialer.Timeout = timeout
	}
	return rueidis.NewClient(opt)
}

// ping connects to the server at url and sends it a PING.
func ping(url string) error {
	c, err := connect(url)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Do(ctx, c.B().Ping().Build()).Error()
}

// deleteKeys unlinks every key that starts with prefix.
func deleteKeys(ctx context.Context, c rueidis.Client, prefix string) error {
	return scan(ctx, c, prefix, func(keys []string) error {
		return c.Do(ctx, c.B().Unlink().Key(keys...).Build()).Error()
	})
}

// scan walks the keys that start with prefix, handing each non-empty batch to fn. The
// prefix must hold no glob characters; those of Prefix do not.
func scan(ctx context.Context, c rueidis.Client, prefix string, fn func(keys []string) error) error {
	var cursor uint64
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			return fmt.Errorf("scan %s*: %w", prefix, err)
		}
		if len(e.Elements) > 0 {
			if err := fn(e.Elements); err != nil {
				return err
			}
		}
		if e.Cursor == 0 {
			return nil
		}
		cursor = e.Cursor
	}
}
