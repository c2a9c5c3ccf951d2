// Package pgtest gives tests a database of their own on the PostgreSQL server named by
// PLM_TEST_DATABASE_URL (default: the local server). Without a server the test is skipped
// with a loud message, or fails when PLM_REQUIRE_SERVICES=1, so that CI cannot pass by
// skipping.
package pgtest

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
)

// ServerURL is the PostgreSQL server the tests use.
func ServerURL() string {
	if u := os.Getenv("PLM_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Admin connects to the server, or skips (fails under PLM_REQUIRE_SERVICES=1) t when it
// does not answer. The connection is closed when t ends.
func Admin(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", ServerURL())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		err = db.PingContext(ctx)
	}
	if err != nil {
		if os.Getenv("PLM_REQUIRE_SERVICES") == "1" {
			t.Fatalf("PostgreSQL is required (PLM_REQUIRE_SERVICES=1) but does not answer at %s: %v", ServerURL(), err)
		}
		t.Skipf("SKIPPED: PostgreSQL does not answer at %s (%v); set PLM_REQUIRE_SERVICES=1 to make this a failure", ServerURL(), err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// NewDatabase creates an empty database through admin, dropped when t ends, and returns its
// URL.
func NewDatabase(t testing.TB, admin *sql.DB) string {
	t.Helper()
	raw := make([]byte, 6)
	_, _ = rand.Read(raw)
	name := "plm_test_" + hex.EncodeToString(raw)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
