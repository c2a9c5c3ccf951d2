// Package postgres keeps readings, anomalies, equipment and sessions in PostgreSQL (15 or
// later), with TimescaleDB when the server has it. Queries go through GORM over the pgx
// driver; the batch writer uses pgx directly, on the same pool. The schema comes from the
// goose migrations in migrations/postgres; times are timestamptz, read back in UTC.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	gormpostgres "gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/production-line-monitor/plm/migrations"
	"github.com/production-line-monitor/plm/ports"
)

// Config says which database to use and how.
type Config struct {
	// URL is the postgres:// URL of the database. A connect_timeout in it wins over the
	// default of 5 seconds.
	URL string
	// MaxConns bounds the pool's connections; 0 means 10.
	MaxConns int32
	// MinConns is how many connections the pool keeps open when idle.
	MinConns int32
	// StatementTimeout bounds every statement, set on each connection; 0 means 30s.
	StatementTimeout time.Duration
	// MigrateOnStart makes Open apply pending migrations; otherwise Open refuses a database
	// whose schema is behind this build.
	MigrateOnStart bool
	// CompressAfter and RetainFor reach the TimescaleDB migration (as plm.compress_after and
	// plm.retain_for) when it runs: chunks of readings are compressed after CompressAfter (0
	// means 7 days) and dropped after RetainFor (0 means never). They take effect only on a
	// server with TimescaleDB, and only when that migration is applied.
	CompressAfter time.Duration
	RetainFor     time.Duration
	// ChunkInterval reaches migration 0008 (as plm.chunk_interval): the time each new chunk of
	// readings spans on TimescaleDB; 0 means 1 day.
	ChunkInterval time.Duration
}

// Defaults of Config.
const (
	DefaultMaxConns         int32 = 10
	DefaultStatementTimeout       = 30 * time.Second
	// defaultConnectTimeout bounds each attempt to connect when the URL sets none: a server
	// that does not answer must make calls fail, not hang.
	defaultConnectTimeout = 5 * time.Second
)

// ErrBadConfig is returned by Open for a Config it cannot use.
var ErrBadConfig = errors.New("invalid postgres configuration")

// ErrSchemaBehind is returned by Open, without MigrateOnStart, when migrations are pending.
var ErrSchemaBehind = errors.New("database schema is behind this build")

// DB is an open connection pool to a database with a current schema. It answers readiness as
// "storage".
type DB struct {
	pool   *pgxpool.Pool
	sql    *sql.DB // over pool, for GORM
	gorm   *gorm.DB
	closed atomic.Bool
}

var _ ports.Pinger = (*DB)(nil)

// Open connects to the database of cfg.URL, checks that it answers, and either applies the
// pending migrations (cfg.MigrateOnStart) or checks that none is pending. It logs once
// whether TimescaleDB is active. A server that cannot be reached gives an error wrapping
// ports.ErrUnavailable.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pcfg, err := poolConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", classify(err))
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	gdb, err := gorm.Open(gormpostgres.New(gormpostgres.Config{Conn: sqlDB}), &gorm.Config{
		Logger:                 logger.Discard, // errors are returned, never logged here
		SkipDefaultTransaction: true,           // every write that needs one opens its own
		DisableAutomaticPing:   true,           // Ping below, with the error translated
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db := &DB{pool: pool, sql: sqlDB, gorm: gdb}
	if err := db.start(ctx, cfg, pcfg.ConnConfig, log); err != nil {
		_ = db.Close() // the start error is the one worth reporting
		return nil, fmt.Errorf("open postgres %s/%s: %w", pcfg.ConnConfig.Host, pcfg.ConnConfig.Database, err)
	}
	return db, nil
}

// start pings, migrates or checks the schema, and logs the storage it found.
func (d *DB) start(ctx context.Context, cfg Config, cc *pgx.ConnConfig, log *slog.Logger) error {
	if err := d.Ping(ctx); err != nil {
		return err
	}
	if cfg.MigrateOnStart {
		if err := migrate(ctx, migrationConnConfig(cfg, cc)); err != nil {
			return err
		}
	} else if err := d.checkSchema(ctx); err != nil {
		return err
	}
	ts, err := d.TimescaleDB(ctx)
	if err != nil {
		return err
	}
	log = log.With("component", "postgres")
	log.Info("storage opened", "host", cc.Host, "database", cc.Database,
		"max_conns", d.pool.Config().MaxConns, "timescaledb", ts)
	d.warnOfSettings(ctx, log)
	return nil
}

// warnOfSettings logs a warning for each server setting far from the workload's
// configuration (adapters/postgres/postgresql.conf in the source): the service runs either
// way, slower or with another durability.
func (d *DB) warnOfSettings(ctx context.Context, log *slog.Logger) {
	settings, err := d.RecommendedSettings(ctx)
	if err != nil {
		log.Warn("could not read the server's settings", "error", err)
		return
	}
	for _, s := range settings {
		if why := s.Far(); why != "" {
			log.Warn("server setting far from the recommended configuration (see README, Server settings)", "setting", s.Name,
				"server", s.Server+s.Unit, "recommended", s.Recommended, "why", why)
		}
	}
}

// poolConfig is the pool configuration of cfg: its URL, sizes, timeouts.
func poolConfig(cfg Config) (*pgxpool.Config, error) {
	if cfg.URL == "" {
		return nil, fmt.Errorf("%w: the database URL is empty", ErrBadConfig)
	}
	pcfg, err := pgxpool.ParseConfig(cfg.URL) // its errors hide the password
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	pcfg.MaxConns = DefaultMaxConns
	if cfg.MaxConns != 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	pcfg.MinConns = cfg.MinConns
	if pcfg.MaxConns < 1 || pcfg.MinConns < 0 || pcfg.MinConns > pcfg.MaxConns {
		return nil, fmt.Errorf("%w: want 0 <= MinConns (%d) <= MaxConns (%d) and MaxConns >= 1",
			ErrBadConfig, pcfg.MinConns, pcfg.MaxConns)
	}
	timeout := DefaultStatementTimeout
	if cfg.StatementTimeout != 0 {
		timeout = cfg.StatementTimeout
	}
	if timeout < time.Millisecond {
		return nil, fmt.Errorf("%w: StatementTimeout %s is under a millisecond", ErrBadConfig, timeout)
	}
	cc := pcfg.ConnConfig
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = defaultConnectTimeout
	}
	cc.RuntimeParams["statement_timeout"] = strconv.FormatInt(timeout.Milliseconds(), 10)
	// pgx prepares and caches every statement. PostgreSQL would plan a cached statement once
	// for all parameters (a generic plan) after a few runs, and keep that plan while the
	// table grows: a plan made while sensor_readings was nearly empty (a new deployment)
	// scans it whole, and a look-up of stored readings got slower with every reading stored.
	// Each statement is planned for its parameters instead; planning costs well under a
	// millisecond.
	if cc.RuntimeParams["plan_cache_mode"] == "" {
		cc.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	// The queries are short, and PostgreSQL compiles (JIT) the plan of any query whose
	// estimated cost passes jit_above_cost: a history of one sensor, which the planner
	// expects to read many readings of its type to find few of that sensor, ran in 4 ms and
	// compiled in 25 to 100 ms.
	if cc.RuntimeParams["jit"] == "" {
		cc.RuntimeParams["jit"] = "off"
	}
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = "plm"
	}
	return pcfg, nil
}

// Migrator is the goose provider of the migrations in migrations/postgres over db. Up and
// Down hold a PostgreSQL advisory lock, so that processes starting together migrate once.
// Closing the provider closes db.
func Migrator(db *sql.DB) (*goose.Provider, error) {
	fsys, err := fs.Sub(migrations.Postgres, "postgres")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	// Another process holding the lock is asked again every second, for up to ten minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 600))
	if err != nil {
		return nil, fmt.Errorf("create migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return p, nil
}

// OpenMigrator is Migrator over a database of its own for cfg, set up as migrations need it
// (see migrationConnConfig). Closing the provider closes that database.
func OpenMigrator(cfg Config) (*goose.Provider, error) {
	pcfg, err := poolConfig(cfg)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*migrationConnConfig(cfg, pcfg.ConnConfig))
	p, err := Migrator(db)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return p, nil
}

// migrationConnConfig is cc without the pool's statement timeout (building an index on a
// large table may take longer) and with the settings the TimescaleDB migration reads.
func migrationConnConfig(cfg Config, cc *pgx.ConnConfig) *pgx.ConnConfig {
	own := cc.Copy()
	delete(own.RuntimeParams, "statement_timeout")
	if cfg.CompressAfter > 0 {
		own.RuntimeParams["plm.compress_after"] = intervalOf(cfg.CompressAfter)
	}
	if cfg.RetainFor > 0 {
		own.RuntimeParams["plm.retain_for"] = intervalOf(cfg.RetainFor)
	}
	if cfg.ChunkInterval > 0 {
		own.RuntimeParams["plm.chunk_interval"] = intervalOf(cfg.ChunkInterval)
	}
	return own
}

// intervalOf writes d as a PostgreSQL interval.
func intervalOf(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + " seconds"
}

// migrate applies the pending migrations over a connection of its own.
func migrate(ctx context.Context, cc *pgx.ConnConfig) error {
	db := stdlib.OpenDB(*cc)
	p, err := Migrator(db)
	if err != nil {
		_ = db.Close()
		return err
	}
	defer p.Close() // closes db
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", classify(err))
	}
	return nil
}

// checkSchema fails unless every migration of this build is applied. It changes nothing:
// goose would create its version table in a database that has none.
func (d *DB) checkSchema(ctx context.Context) error {
	p, err := Migrator(d.sql) // never closed: that would close d.sql, which it borrows
	if err != nil {
		return err
	}
	var versioned bool
	err = d.sql.QueryRowContext(ctx, "SELECT to_regclass('goose_db_version') IS NOT NULL").Scan(&versioned)
	if err != nil {
		return fmt.Errorf("read schema version: %w", classify(err))
	}
	if !versioned {
		sources := p.ListSources()
		return fmt.Errorf("%w: database schema is at version 0, this build needs %d: run `plm migrate up`",
			ErrSchemaBehind, sources[len(sources)-1].Version)
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", classify(err))
	}
	if !pending {
		return nil
	}
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", classify(err))
	}
	return fmt.Errorf("%w: database schema is at version %d, this build needs %d: run `plm migrate up`",
		ErrSchemaBehind, current, target)
}

// TimescaleDB reports whether TimescaleDB is active: the extension is installed in the
// database and sensor_readings is a hypertable.
func (d *DB) TimescaleDB(ctx context.Context) (bool, error) {
	active, err := TimescaleDB(ctx, d.sql)
	return active, d.fail(ctx, "check timescaledb", err)
}

// TimescaleDB reports whether TimescaleDB is active in the database of db: the extension is
// installed and sensor_readings is a hypertable.
func TimescaleDB(ctx context.Context, db *sql.DB) (bool, error) {
	var installed bool
	err := db.QueryRowContext(ctx,
		"SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')").Scan(&installed)
	if err != nil || !installed {
		return false, err
	}
	var hyper bool
	err = db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
		WHERE hypertable_schema = current_schema() AND hypertable_name = 'sensor_readings')`).Scan(&hyper)
	return hyper, err
}

// Close closes the pool. Later calls on it fail with ports.ErrUnavailable.
func (d *DB) Close() error {
	d.closed.Store(true)
	err := d.sql.Close()
	d.pool.Close()
	if err != nil {
		return fmt.Errorf("close postgres: %w", err)
	}
	return nil
}

// Name implements ports.Pinger.
func (d *DB) Name() string { return "storage" }

// Ping implements ports.Pinger: a round trip to the server.
func (d *DB) Ping(ctx context.Context) error {
	return d.fail(ctx, "ping postgres", d.pool.Ping(ctx))
}

// fail turns err, met while doing op, into the error the ports promise: ErrNotFound for a
// missing row, ErrUnavailable when the database cannot serve (closed pool, unreachable or
// restarting server, timeout, too many connections), ErrConflict for a broken constraint,
// ErrFenced for a partition held at another epoch. A nil err stays nil; a canceled or expired
// context is reported as such.
func (d *DB) fail(ctx context.Context, op string, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w (%w)", op, ctx.Err(), err)
	case d.closed.Load() && !errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("%s: %w: %w", op, ports.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, classify(err))
}

// classify adds the ports' error that err amounts to, if any.
func classify(err error) error {
	if errors.Is(err, gorm.ErrRecordNotFound) || errors.Is(err, sql.ErrNoRows) || errors.Is(err, pgx.ErrNoRows) {
		return ports.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == fencedCode:
			return fmt.Errorf("%w: %w", ports.ErrFenced, err)
		case unavailableCode(pgErr.Code):
			return fmt.Errorf("%w: %w", ports.ErrUnavailable, err)
		case len(pgErr.Code) == 5 && pgErr.Code[:2] == "23": // integrity constraint violation
			return fmt.Errorf("%w: %w", ports.ErrConflict, err)
		}
		return err
	}
	if unreachable(err) {
		return fmt.Errorf("%w: %w", ports.ErrUnavailable, err)
	}
	return err
}

// fencedCode is the SQLSTATE that plm_hold_partitions (migration 0004) raises for a partition
// that has moved on to another epoch.
const fencedCode = "PLM01"

// unavailableCode tells the SQLSTATEs of a server that cannot serve now but may later.
func unavailableCode(code string) bool {
	switch code {
	case "57014", // query_canceled: the statement timeout
		"57P01", "57P02", "57P03", // admin shutdown, crash shutdown, cannot connect now
		"55P03", // lock_not_available
		"25006": // read_only_sql_transaction: a standby, during a fail-over
		return true
	}
	if len(code) != 5 {
		return false
	}
	switch code[:2] {
	case "08", // connection exception
		"53", // insufficient resources: too many connections, disk full, out of memory
		"58": // system error: I/O
		return true
	}
	return false
}

// unreachable tells errors of a connection that could not be made or was lost.
func unreachable(err error) bool {
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
