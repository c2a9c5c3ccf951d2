package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// AppliedMigrations lists the versions recorded as applied, in the order they were.
func AppliedMigrations(ctx context.Context, db *DB) ([]int64, error) {
	var versions []int64
	err := db.gorm.WithContext(ctx).Raw(
		"SELECT version_id FROM goose_db_version WHERE version_id > 0 AND is_applied ORDER BY id").Scan(&versions).Error
	if err != nil {
		return nil, fmt.Errorf("list applied migrations: %w", err)
	}
	return versions, nil
}

// MigrateDownAll rolls every migration back.
func MigrateDownAll(ctx context.Context, db *DB) error {
	p, err := db.migrations()
	if err != nil {
		return err
	}
	if _, err := p.DownTo(ctx, 0); err != nil {
		return fmt.Errorf("roll migrations back: %w", err)
	}
	return nil
}

// MigrateUp applies the pending migrations.
func MigrateUp(ctx context.Context, db *DB) error { return db.migrate(ctx) }

// Pragma answers "PRAGMA name" on one of db's connections.
func Pragma(ctx context.Context, db *DB, name string) (string, error) {
	var v string
	if err := db.sql.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v); err != nil {
		return "", fmt.Errorf("read pragma %s: %w", name, err)
	}
	return v, nil
}

// Statement is one of the repositories' queries, with its arguments, as they run it.
type Statement = statement

// HistoryStatement is the query of ReadingRepository.History.
func HistoryStatement(q ports.HistoryQuery) Statement { return historyStatement(q) }

// AveragesStatement is the query of ReadingRepository.Averages.
func AveragesStatement(q ports.HistoryQuery, interval time.Duration) Statement {
	return averagesStatement(q, interval)
}

// LatestStatement is the query of ReadingRepository.Latest.
func LatestStatement(equipmentID string) Statement { return latestStatement(equipmentID) }

// RecentValuesStatement is the query of ReadingRepository.RecentValues.
func RecentValuesStatement(k sensor.Key, n int) Statement { return recentValuesStatement(k, n) }

// CountStatement is the query of ReadingRepository.CountByBucket.
func CountStatement(scope ports.SensorScope, from, to time.Time, bucket time.Duration) Statement {
	return countStatement(scope, from, to, bucket)
}

// QueryPlan lists the steps of the plan SQLite makes for s (EXPLAIN QUERY PLAN), one line each,
// indented by depth.
func QueryPlan(ctx context.Context, db *DB, s Statement) ([]string, error) {
	rows, err := db.gorm.WithContext(ctx).Raw("EXPLAIN QUERY PLAN "+s.sql, s.args).Rows()
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	defer rows.Close()
	depth := map[int64]int{}
	var out []string
	for rows.Next() {
		var (
			id, parent, unused int64
			detail             string
		)
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			return nil, fmt.Errorf("explain: %w", err)
		}
		depth[id] = depth[parent] + 1
		out = append(out, strings.Repeat("  ", depth[id]-1)+detail)
	}
	return out, rows.Err()
}

// Exec runs sql on db.
func Exec(ctx context.Context, db *DB, sql string, args ...any) error {
	return db.gorm.WithContext(ctx).Exec(sql, args...).Error
}

// MigrateTo applies or rolls back migrations until version is the last one applied.
func MigrateTo(ctx context.Context, db *DB, version int64) error {
	p, err := db.migrations()
	if err != nil {
		return err
	}
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	if version >= current {
		_, err = p.UpTo(ctx, version)
	} else {
		_, err = p.DownTo(ctx, version)
	}
	if err != nil {
		return fmt.Errorf("migrate to %d: %w", version, err)
	}
	return nil
}

// SQL is the statement's text.
func (s statement) SQL() string { return s.sql }

// Int64s answers the single-column query sql on db.
func Int64s(ctx context.Context, db *DB, sql string, args ...any) ([]int64, error) {
	var out []int64
	if err := db.gorm.WithContext(ctx).Raw(sql, args...).Scan(&out).Error; err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	return out, nil
}
