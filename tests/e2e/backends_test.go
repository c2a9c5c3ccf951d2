package e2e

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/production-line-monitor/plm/bootstrap"
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
		admin := postgresAdmin(t)
		f(t, func(env map[string]string) bootstrap.Config {
			vars := map[string]string{"PLM_DATABASE_URL": createDatabase(t, admin)}
			for k, v := range env {
				vars[k] = v
			}
			return config(t, t.TempDir(), vars)
		})
	})
}

// serverURL is the PostgreSQL server the tests use.
func serverURL() string {
	if u := os.Getenv("PLM_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

func postgresAdmin(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", serverURL())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		err = db.PingContext(ctx)
	}
	if err != nil {
		if os.Getenv("PLM_REQUIRE_SERVICES") == "1" {
			t.Fatalf("PostgreSQL is required (PLM_REQUIRE_SERVICES=1) but does not answer at %s: %v", serverURL(), err)
		}
		t.Skipf("SKIPPED: PostgreSQL does not answer at %s (%v); set PLM_REQUIRE_SERVICES=1 to make this a failure", serverURL(), err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// createDatabase makes an empty database, dropped when the test ends, and returns its URL.
func createDatabase(t *testing.T, admin *sql.DB) string {
	t.Helper()
	raw := make([]byte, 6)
	_, _ = rand.Read(raw)
	name := "plm_e2e_" + hex.EncodeToString(raw)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(serverURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
