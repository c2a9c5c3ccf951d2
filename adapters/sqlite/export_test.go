package sqlite

import (
	"context"
	"fmt"
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
