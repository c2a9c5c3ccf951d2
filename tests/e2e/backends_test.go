package e2e

import (
	"testing"

	"github.com/production-line-monitor/plm/bootstrap"
	"github.com/production-line-monitor/plm/tests/pgtest"
)

// configFunc makes the configuration of one test's service: its own data directory and,
// on PostgreSQL, its own database. Calling it again makes a new, empty set-up.
type configFunc func(env map[string]string) bootstrap.Config

// eachStorage runs f on the embedded SQLite storage and on PostgreSQL. Without a reachable
// PostgreSQL server the PostgreSQL run is skipped loudly, or fails when
// PLM_REQUIRE_SERVICES=1.
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
}
