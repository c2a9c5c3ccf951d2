package e2e

import (
	"testing"

	"github.com/production-line-monitor/plm/bootstrap"
	"github.com/production-line-monitor/plm/tests/pgtest"
	"github.com/production-line-monitor/plm/tests/redistest"
)

// configFunc makes the configuration of one test's service: its own data directory and,
// on PostgreSQL, its own database. Calling it again makes a new, empty set-up.
type configFunc func(env map[string]string) bootstrap.Config

// eachStorage runs f on the embedded SQLite storage, on PostgreSQL, and on PostgreSQL with
// the Redis Streams queue. Without a reachable server a run is skipped loudly, or fails
// when PLM_REQUIRE_SERVICES=1.
func eachStorage(t *testing.T, f func(t *testing.T, newConfig configFunc)) {
	t.Run("sqlite", func(t *testing.T) {
		f(t, func(env map[string]string) bootstrap.Config { return config(t, t.TempDir(), env) })
	})
	t.Run("postgres", func(t *testing.T) {
		admin := pgtest.Admin(t)
		f(t, func(env map[string]string) bootstrap.Config {
			vars := map[string]string{"PLM_DATABASE_URL": pgtest.NewDatabase(t, admin)}
			for k, v := range env {
				vars[k] = v
			}
			return config(t, t.TempDir(), vars)
		})
	})
	t.Run("postgres+redis", func(t *testing.T) {
		f(t, redisConfig(t))
	})
}

// redisConfig makes set-ups on PostgreSQL with the Redis queue: each its own database,
// all of one test under one Redis key prefix, removed when the test ends.
func redisConfig(t *testing.T) configFunc {
	t.Helper()
	admin := pgtest.Admin(t)
	url := redistest.Require(t)
	return func(env map[string]string) bootstrap.Config {
		vars := map[string]string{
			"PLM_DATABASE_URL": pgtest.NewDatabase(t, admin),
			"PLM_REDIS_URL":    url,
			"PLM_REDIS_PREFIX": redistest.Prefix(t, url),
			"PLM_PARTITIONS":   "4",
		}
		for k, v := range env {
			vars[k] = v
		}
		return config(t, t.TempDir(), vars)
	}
}
