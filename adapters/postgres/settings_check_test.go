package postgres_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/postgres"
)

func TestSettingFar(t *testing.T) {
	tests := []struct {
		name string
		s    postgres.Setting
		far  bool
	}{
		{"size_equal", postgres.Setting{Name: "shared_buffers", Recommended: "2GB", Server: "262144", Unit: "8kB"}, false},
		{"size_larger", postgres.Setting{Name: "shared_buffers", Recommended: "2GB", Server: "524288", Unit: "8kB"}, false},
		{"size_half", postgres.Setting{Name: "shared_buffers", Recommended: "2GB", Server: "131072", Unit: "8kB"}, false},
		{"size_stock", postgres.Setting{Name: "shared_buffers", Recommended: "2GB", Server: "16384", Unit: "8kB"}, true},
		{"megabytes", postgres.Setting{Name: "max_wal_size", Recommended: "16GB", Server: "1024", Unit: "MB"}, true},
		{"time_equal", postgres.Setting{Name: "checkpoint_timeout", Recommended: "15min", Server: "900", Unit: "s"}, false},
		{"time_stock", postgres.Setting{Name: "checkpoint_timeout", Recommended: "15min", Server: "300", Unit: "s"}, true},
		{"number_close", postgres.Setting{Name: "checkpoint_completion_target", Recommended: "0.9", Server: "0.9"}, false},
		{"number_far_above", postgres.Setting{Name: "autovacuum_vacuum_insert_scale_factor", Recommended: "0.05", Server: "0.2"}, true},
		{"number_far_below", postgres.Setting{Name: "bgwriter_lru_maxpages", Recommended: "1000", Server: "100"}, true},
		{"switch_same", postgres.Setting{Name: "synchronous_commit", Recommended: "on", Server: "on"}, false},
		{"switch_off", postgres.Setting{Name: "synchronous_commit", Recommended: "on", Server: "off"}, true},
		{"word_other", postgres.Setting{Name: "wal_compression", Recommended: "lz4", Server: "off"}, true},
		{"missing", postgres.Setting{Name: "timescaledb.max_background_workers", Recommended: "8", Missing: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why := tt.s.Far()
			assert.Equal(t, tt.far, why != "", why)
			if tt.far {
				assert.Contains(t, why, tt.s.Name)
			}
		})
	}
}

// TestIntegrationTimescaleDBTestServerRunsTheRecommendedSettings: task timescaledb starts the
// test server with postgresql.conf, so none of its settings is far from the file's.
func TestIntegrationTimescaleDBTestServerRunsTheRecommendedSettings(t *testing.T) {
	db := sharedDB(t)
	requireTimescaleDB(t, db)
	settings, err := db.RecommendedSettings(t.Context())
	require.NoError(t, err)
	require.Greater(t, len(settings), 10)
	var far []string
	for _, s := range settings {
		assert.False(t, s.Missing, s.Name)
		if why := s.Far(); why != "" {
			far = append(far, why)
		}
	}
	assert.Empty(t, far, "the server was started with other settings: %s (stop it, remove its data and start it with task timescaledb)",
		strings.Join(far, "; "))
}
