package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"

	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// Exec runs a statement on one of db's connections, its error translated as the
// repositories' are.
func Exec(ctx context.Context, db *DB, sql string, args ...any) error {
	return db.fail(ctx, "exec", db.gorm.WithContext(ctx).Exec(sql, args...).Error)
}

// QueryInt64 answers a query of one bigint.
func QueryInt64(ctx context.Context, db *DB, sql string, args ...any) (int64, error) {
	var n int64
	err := db.gorm.WithContext(ctx).Raw(sql, args...).Row().Scan(&n)
	return n, db.fail(ctx, "query", err)
}

// QueryString answers a query of one text.
func QueryString(ctx context.Context, db *DB, sql string, args ...any) (string, error) {
	var s string
	err := db.gorm.WithContext(ctx).Raw(sql, args...).Row().Scan(&s)
	return s, db.fail(ctx, "query", err)
}

// PoolSize is the configured size of db's pool.
func PoolSize(db *DB) (minConns, maxConns int32) {
	c := db.pool.Config()
	return c.MinConns, c.MaxConns
}

// Statement is one of the repositories' queries: SQL with "?" placeholders and arguments.
type Statement struct {
	Name string
	SQL  string
	Args []any
}

func exported(name string, s statement) Statement {
	return Statement{Name: name, SQL: s.sql, Args: s.args}
}

// HistoryStatement is what History runs for q.
func HistoryStatement(q ports.HistoryQuery) Statement {
	return exported("History", historyStatement(q))
}

// LatestStatement is what Latest runs.
func LatestStatement(equipmentID string) Statement {
	return exported("Latest", latestStatement(equipmentID))
}

// RecentValuesStatement is what RecentValues runs.
func RecentValuesStatement(k sensor.Key, n int) Statement {
	return exported("RecentValues", recentValuesStatement(k, n))
}

// AveragesStatement is what Averages runs for q and interval.
func AveragesStatement(q ports.HistoryQuery, interval time.Duration) Statement {
	return exported("Averages", averagesStatement(q, interval))
}

// CountByBucketStatement is what CountByBucket runs.
func CountByBucketStatement(s ports.SensorScope, from, to time.Time, bucket time.Duration) Statement {
	return exported("CountByBucket", countByBucketStatement(s, from, to, bucket))
}

// FindStatements are what Find runs for q: the count, then the page.
func FindStatements(q ports.AnomalyQuery) (count, page Statement) {
	c, p := findStatements(q)
	return exported("Find count", c), exported("Find page", p)
}

// NewBatchWriterCopyingFrom is NewBatchWriter writing batches of n readings or more by COPY.
func NewBatchWriterCopyingFrom(db *DB, n int) *BatchWriter { return &BatchWriter{db: db, copyFrom: n} }

// Explain answers EXPLAIN (FORMAT JSON) of s, planned for its arguments.
func Explain(ctx context.Context, db *DB, s Statement) ([]byte, error) {
	var plan []byte
	err := db.gorm.WithContext(ctx).Raw("EXPLAIN (FORMAT JSON) "+s.SQL, s.Args...).Row().Scan(&plan)
	if err != nil {
		return nil, fmt.Errorf("explain %s: %w", s.Name, err)
	}
	return plan, nil
}

// ExplainGeneric answers EXPLAIN (FORMAT JSON) of the generic plan of s: the plan that a
// prepared statement may settle on after a few executions, made without its arguments.
func ExplainGeneric(ctx context.Context, db *DB, s Statement) ([]byte, error) {
	dry := db.gorm.Session(&gorm.Session{DryRun: true}).Raw(s.SQL, s.Args...)
	sql, nargs := dry.Statement.SQL.String(), len(dry.Statement.Vars)
	var plan []byte
	err := db.gorm.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		if err := conn.Exec("SET plan_cache_mode = force_generic_plan").Error; err != nil {
			return err
		}
		defer conn.Exec("RESET plan_cache_mode")
		if err := conn.Exec("PREPARE plm_explain AS " + sql).Error; err != nil {
			return err
		}
		defer conn.Exec("DEALLOCATE plm_explain")
		// The arguments as literals: the plan stays the generic one, and TimescaleDB's
		// exclusion of chunks at the executor's start keeps the chunks they select.
		params := ""
		for i := range nargs {
			if i > 0 {
				params += ", "
			}
			params += literal(s.Args[i])
		}
		if params != "" {
			params = "(" + params + ")"
		}
		return conn.Raw("EXPLAIN (FORMAT JSON) EXECUTE plm_explain" + params).Row().Scan(&plan)
	})
	if err != nil {
		return nil, fmt.Errorf("explain generic %s: %w", s.Name, err)
	}
	return plan, nil
}

// literal writes v as an SQL literal, or NULL for a type it does not know.
func literal(v any) string {
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	switch v := v.(type) {
	case string:
		return quote(v)
	case int, int32, int64:
		return fmt.Sprint(v)
	case time.Time:
		return quote(v.Format(time.RFC3339Nano)) + "::timestamptz"
	case pgtype.Array[string]:
		elems := make([]string, len(v.Elements))
		for i, e := range v.Elements {
			elems[i] = quote(e)
		}
		return "ARRAY[" + strings.Join(elems, ", ") + "]::text[]"
	}
	return "NULL"
}

// CopyReadings copies rs into sensor_readings with COPY, and nothing else: no conflict
// handling, no rollup, no anomalies. It is the yardstick of the batch writer's speed.
func CopyReadings(ctx context.Context, db *DB, rs []ports.StoredReading) error {
	_, err := db.pool.CopyFrom(ctx, pgx.Identifier{"sensor_readings"}, readingCopyColumns, readingRows(rs, false))
	return db.fail(ctx, "copy readings", err)
}

var readingCopyColumns = []string{"equipment_id", "reading_id", "sensor_type", "sensor_id", "value", "unit", "ts", "received_at",
	"anomalous"}

func readingRows(rs []ports.StoredReading, numbered bool) pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(rs), func(i int) ([]any, error) {
		r := rs[i]
		row := []any{r.EquipmentID, r.ID, string(r.Type), r.SensorID, r.Value, r.Unit, r.Timestamp, r.ReceivedAt, r.Anomalous}
		if numbered {
			row = append([]any{int64(i + 1)}, row...)
		}
		return row, nil
	})
}

// WriteBatchThroughStaging is the batch writer's other design, kept to measure against it:
// the readings are copied (COPY) into a temporary table, then inserted from it with the same
// conflict handling, rollup and anomalies as WriteBatch.
func WriteBatchThroughStaging(ctx context.Context, db *DB, b ports.ProcessedBatch) error {
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, upsertSightingsSQL, sightingArgs(b.Sightings)...); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS staged_readings (
				n bigint, equipment_id text COLLATE "C", reading_id text COLLATE "C", sensor_type text COLLATE "C",
				sensor_id text COLLATE "C",
				value float8, unit text, ts timestamptz, received_at timestamptz, anomalous bool
			) ON COMMIT DELETE ROWS`); err != nil {
			return err
		}
		cols := append([]string{"n"}, readingCopyColumns...)
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"staged_readings"}, cols, readingRows(b.Readings, true)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, stagedReadingsSQL, anomalyArgs(b.Anomalies)...); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, upsertSessionsSQL, sessionArgs(b.Sessions)...)
		return err
	})
	return db.fail(ctx, "write batch through staging", err)
}

// stagedReadingsSQL is insertReadingsSQL reading the readings from staged_readings.
var stagedReadingsSQL = func() string {
	s := insertReadingsSQL
	from := s[strings.Index(s, "FROM unnest($1"):strings.Index(s, "ORDER BY equipment_id, reading_id, n")]
	s = strings.Replace(s, from, "FROM staged_readings\n\t\t", 1)
	for i := 10; i <= 22; i++ { // the anomalies' parameters become $1-$13
		s = strings.ReplaceAll(s, fmt.Sprintf("$%d:", i), fmt.Sprintf("$%d:", i-9))
	}
	return s
}()

// QueryStrings answers a query of one text column.
func QueryStrings(ctx context.Context, db *DB, sql string, args ...any) ([]string, error) {
	var out []string
	err := db.gorm.WithContext(ctx).Raw(sql, args...).Scan(&out).Error
	return out, db.fail(ctx, "query", err)
}

// MigrationSettings opens a database/sql handle the way the migrations get theirs for cfg
// and returns the settings the TimescaleDB migration reads, with the statement timeout.
func MigrationSettings(ctx context.Context, cfg Config) (compress, retain, timeout string, err error) {
	pcfg, err := poolConfig(cfg)
	if err != nil {
		return "", "", "", err
	}
	db := stdlib.OpenDB(*migrationConnConfig(cfg, pcfg.ConnConfig))
	defer db.Close()
	err = db.QueryRowContext(ctx, `SELECT coalesce(current_setting('plm.compress_after', true)::interval::text, ''),
		coalesce(current_setting('plm.retain_for', true)::interval::text, ''), current_setting('statement_timeout')`).
		Scan(&compress, &retain, &timeout)
	return compress, retain, timeout, err
}

// FoldRollupsSQL is the statement of FoldRollups, for tests that run it in a transaction of
// their own.
const FoldRollupsSQL = foldRollupsSQL
