package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/postgres"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// planNode is one node of a plan of EXPLAIN (FORMAT JSON).
type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	IndexName    string     `json:"Index Name"`
	Plans        []planNode `json:"Plans"`
}

// nodes lists n and every node under it.
func (n planNode) nodes() []planNode {
	out := []planNode{n}
	for _, c := range n.Plans {
		out = append(out, c.nodes()...)
	}
	return out
}

func parsePlan(t *testing.T, raw []byte) planNode {
	t.Helper()
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	require.NoError(t, json.Unmarshal(raw, &plans))
	require.Len(t, plans, 1)
	return plans[0].Plan
}

// TestIntegrationQueriesUseIndexes loads a million readings and ten thousand anomalies and
// checks that the repositories' queries, exactly as they run them, use the indexes meant for
// them and never scan sensor_readings or anomalies whole: both the plan made for the query's
// arguments and the generic plan that a prepared statement may settle on.
//
// On TimescaleDB the same plans read the chunks, through the chunks' copies of the indexes
// (named _hyper_<n>_<m>_chunk_<index>), under a Custom Scan (ChunkAppend).
//
// The plans seen on PostgreSQL 15, for the arguments (custom) and generic:
//
//	History, one type or every type  per type: Limit > Sort > Bitmap Heap Scan over a Bitmap Index
//	                                 Scan of sensor_readings_sensor_ts (custom); Limit > Incremental
//	                                 Sort > Index Scan of sensor_readings_sensor_ts (generic)
//	Latest                           per type: Limit > Incremental Sort > Index Scan of sensor_readings_sensor_ts
//	RecentValues                     Limit > Incremental Sort > Index Scan of sensor_readings_sensor_ts
//	Find page, no filter             Limit > Index Scan of anomalies_ts
//	Find, equipment                  count: Index Only Scan of anomalies_equipment_detected; page: Bitmap
//	                                 Index Scan of anomalies_equipment_detected and a sort of its few rows
//	                                 (custom), Index Scan of anomalies_equipment_ts (generic)
//	Find, severity CRITICAL          count: Index Only Scan of anomalies_severity_ts; page: Index Scan of
//	                                 anomalies_ts, filtered
//	Find, equipment and severities   as Find, equipment
//	Find, type and time range        Index Scan or Bitmap Index Scan of anomalies_ts
//	Find count, no filter            Seq Scan of anomalies: every row is counted (see below)
func TestIntegrationQueriesUseIndexes(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a million readings")
	}
	db := open(t, newDatabase(t))
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	err := loadInBulk(t.Context(), db, base,
		`INSERT INTO equipment (id, created_at) SELECT 'eq-' || lpad(i::text, 3, '0'), ? FROM generate_series(0, 199) AS i`,
		// 200 machines, 4 sensors each, a reading a second for 11.6 days.
		`INSERT INTO sensor_readings (equipment_id, reading_id, sensor_type, value, unit, ts, received_at, anomalous)
		SELECT 'eq-' || lpad((i % 200)::text, 3, '0'), 'r-' || i,
			(ARRAY['temperature', 'vibration', 'pressure', 'voltage'])[1 + (i / 200) % 4],
			(i % 1000) / 10.0, 'u', ?::timestamptz + i * interval '1 second',
			?::timestamptz + i * interval '1 second' + interval '5 milliseconds', i % 97 = 0
		FROM generate_series(0, 999999) AS i`,
		// Every 97th reading is anomalous.
		insertAnomaliesOfFlaggedReadings,
		// The rollups, as the folds fill them.
		`INSERT INTO reading_counts (equipment_id, hour, readings, attributed)
		SELECT equipment_id, date_bin('1 hour', ts, timestamptz 'epoch'), count(*), count(*)
		FROM sensor_readings GROUP BY 1, 2`,
		`INSERT INTO sensor_reading_counts (equipment_id, sensor_id, sensor_type, hour, readings)
		SELECT equipment_id, sensor_id, sensor_type, date_bin('1 hour', ts, timestamptz 'epoch'), count(*)
		FROM sensor_readings GROUP BY 1, 2, 3, 4`,
	)
	require.NoError(t, err)
	readings, err := postgres.QueryInt64(t.Context(), db, "SELECT count(*) FROM sensor_readings")
	require.NoError(t, err)
	require.Equal(t, int64(1_000_000), readings)
	anomalies, err := postgres.QueryInt64(t.Context(), db, "SELECT count(*) FROM anomalies")
	require.NoError(t, err)
	require.InDelta(t, 10_000, anomalies, 500)
	t.Logf("loaded %d readings and %d anomalies in %s", readings, anomalies, time.Since(start).Round(time.Millisecond))

	day := 24 * time.Hour
	from, to := base.Add(5*day), base.Add(6*day)
	count := func(q ports.AnomalyQuery) postgres.Statement { c, _ := postgres.FindStatements(q); return c }
	page := func(q ports.AnomalyQuery) postgres.Statement { _, p := postgres.FindStatements(q); return p }
	everySeverity := ports.AnomalyQuery{Limit: 50}
	oneEquipment := ports.AnomalyQuery{EquipmentID: "eq-007", Limit: 50}
	critical := ports.AnomalyQuery{Severities: []anomaly.Severity{anomaly.SeverityCritical}, Limit: 50}
	equipmentSeverities := ports.AnomalyQuery{EquipmentID: "eq-007",
		Severities: []anomaly.Severity{anomaly.SeverityLow, anomaly.SeverityMedium}, Limit: 50}
	typeInRange := ports.AnomalyQuery{SensorType: sensor.Vibration, From: from, To: to, Offset: 100, Limit: 50, Ascending: true}
	byEquipment := []string{"anomalies_equipment_ts", "anomalies_equipment_detected"}
	tests := []struct {
		name  string
		s     postgres.Statement
		index []string // the plan uses one of them
		// valueBound: the best plan depends on the values (how many anomalies have a
		// severity), which a generic plan does not know; only the plan for the values is
		// checked.
		valueBound bool
	}{
		{name: "History/one_type", s: postgres.HistoryStatement(ports.HistoryQuery{EquipmentID: "eq-007",
			SensorType: sensor.Temperature, From: from, To: to, Limit: 1000}), index: []string{"sensor_readings_sensor_ts"}},
		{name: "History/every_type", s: postgres.HistoryStatement(ports.HistoryQuery{EquipmentID: "eq-007",
			From: from, To: to, Limit: 1000}), index: []string{"sensor_readings_sensor_ts"}},
		{name: "History/one_sensor", s: postgres.HistoryStatement(ports.HistoryQuery{EquipmentID: "eq-007",
			SensorID: "vibration", From: from, To: to, Limit: 1000}), index: []string{"sensor_readings_sensor_ts"}},
		{name: "Averages/every_type", s: postgres.AveragesStatement(ports.HistoryQuery{EquipmentID: "eq-007",
			From: from, To: to, Limit: 1000}, time.Hour), index: []string{"sensor_readings_sensor_ts"}},
		{name: "Latest", s: postgres.LatestStatement("eq-007"), index: []string{"sensor_readings_sensor_ts"}},
		{name: "CountByBucket/equipment", s: postgres.CountByBucketStatement(ports.SensorScope{EquipmentID: "eq-007"},
			from.Add(17*time.Minute), to.Add(-43*time.Minute), time.Hour), index: []string{"reading_counts_pkey"}},
		{name: "CountByBucket/sensor", s: postgres.CountByBucketStatement(ports.SensorScope{EquipmentID: "eq-007", SensorID: "vibration"},
			from.Add(17*time.Minute), to.Add(-43*time.Minute), time.Hour), index: []string{"sensor_reading_counts_pkey"}},
		{name: "CountByBucket/sensor_of_every_equipment", s: postgres.CountByBucketStatement(ports.SensorScope{SensorID: "vibration"},
			from.Add(17*time.Minute), to.Add(-43*time.Minute), time.Hour), index: []string{"sensor_reading_counts_sensor"}},
		{name: "RecentValues", s: postgres.RecentValuesStatement(sensor.Key{EquipmentID: "eq-007", Type: sensor.Temperature}, 100),
			index: []string{"sensor_readings_sensor_ts"}},
		{name: "Find/page", s: page(everySeverity), index: []string{"anomalies_ts"}},
		{name: "Find/equipment/count", s: count(oneEquipment), index: byEquipment},
		{name: "Find/equipment/page", s: page(oneEquipment), index: byEquipment},
		{name: "Find/severity/count", s: count(critical), index: []string{"anomalies_severity_ts"}, valueBound: true},
		{name: "Find/severity/page", s: page(critical), index: []string{"anomalies_ts", "anomalies_severity_ts"}},
		{name: "Find/equipment_and_severities/count", s: count(equipmentSeverities), index: byEquipment},
		{name: "Find/equipment_and_severities/page", s: page(equipmentSeverities), index: byEquipment},
		{name: "Find/type_in_range/count", s: count(typeInRange), index: []string{"anomalies_ts"}},
		{name: "Find/type_in_range/page", s: page(typeInRange), index: []string{"anomalies_ts"}},
	}
	for _, tt := range tests {
		for _, generic := range []bool{false, true} {
			name := tt.name + "/custom"
			explain := postgres.Explain
			if generic {
				if tt.valueBound {
					continue
				}
				name, explain = tt.name+"/generic", postgres.ExplainGeneric
			}
			t.Run(name, func(t *testing.T) {
				raw, err := explain(t.Context(), db, tt.s)
				require.NoError(t, err)
				var used, shape []string
				for _, n := range parsePlan(t, raw).nodes() {
					shape = append(shape, strings.TrimSpace(n.NodeType+" "+n.RelationName+" "+n.IndexName))
					if n.NodeType == "Seq Scan" && (n.RelationName == "sensor_readings" || n.RelationName == "anomalies" ||
						n.RelationName == "reading_counts" || n.RelationName == "sensor_reading_counts" ||
						strings.HasPrefix(n.RelationName, "_hyper_")) {
						t.Errorf("sequential scan of %s", n.RelationName)
					}
					if n.IndexName != "" {
						used = append(used, chunkIndexParent(n.IndexName))
					}
				}
				t.Log(strings.Join(shape, " > "))
				assert.True(t, slices.ContainsFunc(used, func(ix string) bool { return slices.Contains(tt.index, ix) }),
					"uses %v, want one of %v\n%s", used, tt.index, strings.Join(shape, "\n"))
			})
		}
	}

	// Find without any filter counts every anomaly: the plan reads them all whichever way it
	// goes, a sequential scan of the table or (with random_page_cost set for SSDs, or a
	// larger table) an index-only scan of its smallest index. Only the page must use an index.
	t.Run("Find/count_of_every_anomaly", func(t *testing.T) {
		raw, err := postgres.Explain(t.Context(), db, count(everySeverity))
		require.NoError(t, err)
		var shape []string
		for _, n := range parsePlan(t, raw).nodes() {
			shape = append(shape, strings.TrimSpace(n.NodeType+" "+n.RelationName+" "+n.IndexName))
			if n.RelationName == "sensor_readings" || n.IndexName != "" && strings.HasPrefix(n.IndexName, "sensor_readings") {
				t.Errorf("counting anomalies reads readings: %s", raw)
			}
		}
		t.Log(strings.Join(shape, " > "))
	})
}

// chunkIndexParent is the name of the hypertable's index of which ix is a chunk's copy, or ix.
func chunkIndexParent(ix string) string {
	if strings.HasPrefix(ix, "_hyper_") {
		if _, parent, ok := strings.Cut(ix, "_chunk_"); ok {
			return parent
		}
	}
	return ix
}

// insertAnomaliesOfFlaggedReadings gives every reading marked anomalous its anomaly, detected
// a millisecond after the reading was received: 7 in 10 LOW, 2 MEDIUM, 1 CRITICAL.
const insertAnomaliesOfFlaggedReadings = `INSERT INTO anomalies (id, equipment_id, reading_id, sensor_type,
		value, z_score, mean, std_dev, window_size, severity, ts, detected_at)
	SELECT 'a-' || seq, equipment_id, reading_id, sensor_type, value, 3.5, 40, 10, 100,
		CASE WHEN seq % 10 < 7 THEN 'LOW' WHEN seq % 10 < 9 THEN 'MEDIUM' ELSE 'CRITICAL' END,
		ts, received_at + interval '1 millisecond'
	FROM sensor_readings WHERE anomalous`

// loadInBulk runs the load statements on db, each "?" in them standing for at, then rebuilds
// the indexes and analyzes the tables. The indexes of sensor_readings that the load does not
// need (and any foreign key) are dropped before it and rebuilt, from their own definitions,
// after it: a bulk build takes seconds where millions of inserts into them would take minutes.
func loadInBulk(ctx context.Context, db *postgres.DB, at time.Time, load ...string) error {
	rebuild, err := postgres.QueryStrings(ctx, db, `
		SELECT pg_get_indexdef(indexrelid) FROM pg_index
		WHERE indrelid = 'sensor_readings'::regclass AND NOT indisunique
		UNION ALL
		SELECT format('ALTER TABLE sensor_readings ADD CONSTRAINT %I %s', conname, pg_get_constraintdef(oid))
		FROM pg_constraint WHERE conrelid = 'sensor_readings'::regclass AND contype = 'f'`)
	if err != nil {
		return fmt.Errorf("list the indexes to rebuild: %w", err)
	}
	if len(rebuild) != 2 {
		return fmt.Errorf("found %d indexes of sensor_readings that are not unique, want the schema's 2", len(rebuild))
	}
	drop, err := postgres.QueryStrings(ctx, db, `
		SELECT format('DROP INDEX %s', indexrelid::regclass) FROM pg_index
		WHERE indrelid = 'sensor_readings'::regclass AND NOT indisunique
		UNION ALL
		SELECT format('ALTER TABLE sensor_readings DROP CONSTRAINT %I', conname)
		FROM pg_constraint WHERE conrelid = 'sensor_readings'::regclass AND contype = 'f'`)
	if err != nil {
		return fmt.Errorf("list the indexes to drop: %w", err)
	}
	for _, q := range slices.Concat(drop, load, rebuild, []string{"VACUUM ANALYZE"}) {
		args := make([]any, countPlaceholders(q))
		for i := range args {
			args[i] = at
		}
		if err := postgres.Exec(ctx, db, q, args...); err != nil {
			return fmt.Errorf("load in bulk: %s: %w", q, err)
		}
	}
	return nil
}

// countPlaceholders counts the "?" of q.
func countPlaceholders(q string) int {
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
		}
	}
	return n
}
