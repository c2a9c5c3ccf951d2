package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/production-line-monitor/plm/adapters/postgres"
	"github.com/production-line-monitor/plm/ports/portstest"
)

// defaultServerURL is the server the integration tests use when PLM_TEST_DATABASE_URL is unset.
const defaultServerURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// server is the PostgreSQL server of the integration tests. TestMain creates a database of
// its own on it for the run, and drops it, with every other database the run created, at the
// end.
var server struct {
	url     string // of the server's database named in the configured URL
	reach   error  // why the server cannot be reached, if it cannot
	name    string // of the run's database
	created atomic.Int64
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	server.url = os.Getenv("PLM_TEST_DATABASE_URL")
	if server.url == "" {
		server.url = defaultServerURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := connectAdmin(ctx)
	if err != nil {
		server.reach = err
		fmt.Fprintf(os.Stderr, "\n*** PostgreSQL not reachable at %s: %v\n*** The integration tests will be skipped; "+
			"set PLM_REQUIRE_SERVICES=1 to make them fail.\n\n", redacted(server.url), err)
		return m.Run()
	}
	_ = admin.Close(ctx)
	server.name = "plm_test_" + randomHex(6)
	if err := createDatabase(ctx, server.name); err != nil {
		fmt.Fprintf(os.Stderr, "create the test database: %v\n", err)
		return 1
	}
	code := m.Run()
	if shared.db != nil {
		_ = shared.db.Close()
	}
	if metricsData.db != nil {
		_ = metricsData.db.Close()
	}
	for i := range server.created.Load() {
		dropDatabase(fmt.Sprintf("%s_%d", server.name, i+1))
	}
	dropDatabase(server.name)
	return code
}

func connectAdmin(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(server.url)
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = 5 * time.Second
	return pgx.ConnectConfig(ctx, cfg)
}

func createDatabase(ctx context.Context, name string) error {
	admin, err := connectAdmin(ctx)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}

func dropDatabase(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := connectAdmin(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "drop database %s: %v\n", name, err)
		return
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		fmt.Fprintf(os.Stderr, "drop database %s: %v\n", name, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redacted is u without its password.
func redacted(u string) string {
	if parsed, err := url.Parse(u); err == nil && parsed.User != nil {
		return parsed.Redacted()
	}
	return u
}

// databaseURL is the configured URL with its database replaced by name.
func databaseURL(name string) string {
	if strings.HasPrefix(server.url, "postgres://") || strings.HasPrefix(server.url, "postgresql://") {
		u, err := url.Parse(server.url)
		if err == nil {
			u.Path = "/" + name
			return u.String()
		}
	}
	return server.url + " dbname=" + name // keyword/value form: the last setting wins
}

// requireServer skips t, or fails it under PLM_REQUIRE_SERVICES=1, when no server answers.
func requireServer(t testing.TB) {
	t.Helper()
	if server.reach == nil {
		return
	}
	if os.Getenv("PLM_REQUIRE_SERVICES") == "1" {
		t.Fatalf("PostgreSQL not reachable at %s: %v (PLM_REQUIRE_SERVICES=1)", redacted(server.url), server.reach)
	}
	t.Skipf("PostgreSQL not reachable at %s: set PLM_REQUIRE_SERVICES=1 to make this a failure", redacted(server.url))
}

// newDatabase creates an empty database for t alone and returns its URL; it is dropped when
// t ends (on TimescaleDB each database holds one of the server's background workers while
// it exists, for its job scheduler), or else at the end of the run.
func newDatabase(t testing.TB) string {
	t.Helper()
	requireServer(t)
	name, url, err := createRunDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropDatabase(name) })
	return url
}

// createRunDatabase creates an empty database, which the run drops, and returns its name and
// URL.
func createRunDatabase(ctx context.Context) (name, url string, err error) {
	name = fmt.Sprintf("%s_%d", server.name, server.created.Add(1))
	if err := createDatabase(ctx, name); err != nil {
		return "", "", fmt.Errorf("create database %s: %w", name, err)
	}
	return name, databaseURL(name), nil
}

// shared is the run's database, migrated, opened once and kept open for the whole run.
var shared struct {
	once sync.Once
	db   *postgres.DB
	err  error
}

// sharedURL is the URL of the run's database, migrated.
func sharedURL(t testing.TB) string {
	t.Helper()
	requireServer(t)
	shared.once.Do(func() {
		shared.db, shared.err = postgres.Open(context.Background(),
			postgres.Config{URL: databaseURL(server.name), MigrateOnStart: true}, nil)
	})
	if shared.err != nil {
		t.Fatalf("open the test database: %v", shared.err)
	}
	return databaseURL(server.name)
}

// sharedDB returns the run's database with every table emptied.
func sharedDB(t testing.TB) *postgres.DB {
	t.Helper()
	sharedURL(t)
	err := postgres.Exec(t.Context(), shared.db,
		"TRUNCATE equipment, sensor_readings, reading_keys, anomalies, alarms, equipment_sessions, reading_counts, reading_count_deltas, "+
			"sensor_reading_counts, "+
			"partition_epochs, equipment_maintenance, subscriptions, deliveries, equipment_status RESTART IDENTITY")
	if err != nil {
		t.Fatalf("empty the test database: %v", err)
	}
	return shared.db
}

// open opens the database at url, migrated, closed when t ends.
func open(t testing.TB, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), postgres.Config{URL: url, MigrateOnStart: true}, nil)
	if err != nil {
		t.Fatalf("open %s: %v", redacted(url), err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// wantTimescaleDB says whether the server under test is expected to run TimescaleDB:
// PLM_TEST_STORE=timescaledb or postgres says so (task test sets it, so that a server without
// the extension cannot pass for one with it); unset, the server's own answer decides.
func wantTimescaleDB(t testing.TB, db *postgres.DB) bool {
	t.Helper()
	switch store := os.Getenv("PLM_TEST_STORE"); store {
	case "timescaledb":
		return true
	case "postgres":
		return false
	case "":
		available, err := postgres.QueryInt64(t.Context(), db, `SELECT count(*) FROM pg_available_extensions
			WHERE name = 'timescaledb' AND current_setting('shared_preload_libraries') ~ 'timescaledb'`)
		if err != nil {
			t.Fatal(err)
		}
		return available == 1
	default:
		t.Fatalf("PLM_TEST_STORE=%q: want timescaledb or postgres", store)
		return false
	}
}

func stores(db *postgres.DB) portstest.Stores {
	return portstest.Stores{
		Readings:    postgres.NewReadingRepository(db),
		Anomalies:   postgres.NewAnomalyRepository(db),
		Equipment:   postgres.NewEquipmentRepository(db),
		Writer:      postgres.NewBatchWriter(db),
		Fencer:      postgres.NewPartitionFencer(db),
		Rollups:     postgres.NewRollupFolder(db),
		Alarms:      postgres.NewAlarmRepository(db),
		Maintenance: postgres.NewMaintenanceRepository(db),

		Subscriptions: postgres.NewSubscriptionRepository(db),
		Deliveries:    postgres.NewDeliveryQueue(db),
		Ledger:        postgres.NewStatusLedger(db),
	}
}
