// Package migrations holds the database schemas as goose migrations (NNNN_name.sql, each
// with its "-- +goose Up" and "-- +goose Down" sections), one folder per database engine.
package migrations

import "embed"

// SQLite holds the migrations of the embedded SQLite database, under "sqlite/".
//
//go:embed sqlite/*.sql
var SQLite embed.FS

// Postgres holds the migrations of the production PostgreSQL database, under "postgres/".
//
//go:embed postgres/*.sql
var Postgres embed.FS
