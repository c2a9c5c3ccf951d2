// Package sqlite keeps readings, anomalies, equipment and sessions in an embedded SQLite
// database file, through GORM and a pure-Go driver (no cgo). The schema comes from the goose
// migrations in migrations/sqlite, applied by Open; times are stored as INTEGER microseconds
// since the Unix epoch, UTC.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	gosqlite "github.com/glebarez/go-sqlite"
	gormsqlite "github.com/glebarez/sqlite"
	"github.com/pressly/goose/v3"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/production-line-monitor/plm/migrations"
	"github.com/production-line-monitor/plm/ports"
)

// Config says where the database lives.
type Config struct {
	// Path is the database file. Its directory is created when missing.
	Path string
}

// busyTimeout is how long a statement waits for another connection's write lock.
const busyTimeout = 5 * time.Second

// maxConns bounds the open connections: one writes at a time, the others read.
const maxConns = 8

// ErrBadPath is returned by Open for a path it cannot use.
var ErrBadPath = errors.New("database path must be a non-empty file path without '?'")

// DB is an open database with its schema migrated. It answers readiness as "storage".
type DB struct {
	gorm   *gorm.DB
	sql    *sql.DB
	closed atomic.Bool
}

var _ ports.Pinger = (*DB)(nil)

// Open creates the file's directory if needed, opens the database (write-ahead log,
// synchronous=NORMAL, a busy timeout, foreign keys enforced, temporary data in memory) and
// applies every pending migration.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Path == "" || strings.ContainsRune(cfg.Path, '?') || cfg.Path == ":memory:" {
		return nil, fmt.Errorf("open sqlite %q: %w", cfg.Path, ErrBadPath)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o750); err != nil {
		return nil, fmt.Errorf("open sqlite %s: create directory: %w", cfg.Path, err)
	}
	gdb, err := gorm.Open(gormsqlite.Open(dsn(cfg.Path)), &gorm.Config{
		Logger:                 logger.Discard, // errors are returned, never logged here
		SkipDefaultTransaction: true,           // every write that needs one opens its own
	})
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", cfg.Path, classify(err))
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", cfg.Path, err)
	}
	// Readers run side by side under the write-ahead log; keep their connections open, since
	// opening one reads the schema and runs the pragmas again.
	sqlDB.SetMaxOpenConns(maxConns)
	sqlDB.SetMaxIdleConns(maxConns)
	db := &DB{gorm: gdb, sql: sqlDB}
	if err := db.migrate(ctx); err != nil {
		_ = sqlDB.Close() // the migration error is the one worth reporting
		return nil, fmt.Errorf("open sqlite %s: %w", cfg.Path, err)
	}
	return db, nil
}

// dsn is the driver's data source name: the path, then the pragmas that the driver runs on
// every new connection. temp_store keeps the statement journals of multi-row upserts in
// memory rather than in temporary files.
func dsn(path string) string {
	q := url.Values{"_pragma": {
		fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
		"journal_mode(WAL)",
		"synchronous(NORMAL)",
		"foreign_keys(1)",
		"temp_store(MEMORY)",
	}}
	return path + "?" + q.Encode()
}

// migrations is the goose provider of migrations/sqlite over d. It is never closed: that
// would close d.sql, which it only borrows.
func (d *DB) migrations() (*goose.Provider, error) {
	fsys, err := fs.Sub(migrations.SQLite, "sqlite")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, d.sql, fsys)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return p, nil
}

// migrate applies the pending migrations.
func (d *DB) migrate(ctx context.Context) error {
	p, err := d.migrations()
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", classify(err))
	}
	return nil
}

// Close closes the database. Later calls on it fail with ports.ErrUnavailable.
func (d *DB) Close() error {
	d.closed.Store(true)
	if err := d.sql.Close(); err != nil {
		return fmt.Errorf("close sqlite: %w", err)
	}
	return nil
}

// Name implements ports.Pinger.
func (d *DB) Name() string { return "storage" }

// Ping implements ports.Pinger: it reads the schema, which touches the file.
func (d *DB) Ping(ctx context.Context) error {
	var n int64
	err := d.sql.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n)
	return d.fail(ctx, "ping sqlite", err)
}

// fail turns err, met while doing op, into the error the ports promise: ErrNotFound for a
// missing row, ErrUnavailable when the database cannot serve (closed, busy, I/O), ErrConflict
// for a broken constraint. A nil err stays nil.
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
	if errors.Is(err, gorm.ErrRecordNotFound) || errors.Is(err, sql.ErrNoRows) {
		return ports.ErrNotFound
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("%w: %w", ports.ErrUnavailable, err)
	}
	var se *gosqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff { // the primary result code
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY,
		sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL,
		sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
		return fmt.Errorf("%w: %w", ports.ErrUnavailable, err)
	case sqlite3.SQLITE_CONSTRAINT:
		return fmt.Errorf("%w: %w", ports.ErrConflict, err)
	}
	return err
}

// micros is t as stored: microseconds since the Unix epoch.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros is the UTC time stored as us.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullMicros stores the zero time ("never") as NULL.
func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// fromNullMicros reads NULL back as the zero time.
func fromNullMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMicros(n.Int64)
}
