package migrations_test

import (
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/migrations"
)

var fileName = regexp.MustCompile(`^(\d{4})_[a-z0-9_]+\.sql$`)

func TestSQLiteEmbedsTheMigrations(t *testing.T) {
	require.NoError(t, fstest.TestFS(migrations.SQLite, "sqlite/0001_init.sql"))
}

func TestSQLiteMigrationsAreNumberedGooseFiles(t *testing.T) {
	entries, err := fs.ReadDir(migrations.SQLite, "sqlite")
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	for i, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			m := fileName.FindStringSubmatch(e.Name())
			require.NotNil(t, m, "file name must be NNNN_name.sql")
			assert.Equal(t, fmt.Sprintf("%04d", i+1), m[1], "versions must run 0001, 0002, ... without gaps")

			body, err := fs.ReadFile(migrations.SQLite, "sqlite/"+e.Name())
			require.NoError(t, err)
			var annotations []string
			for line := range strings.Lines(string(body)) {
				if l := strings.TrimSpace(line); strings.HasPrefix(l, "--") && strings.Contains(l, "+goose") {
					annotations = append(annotations, l)
				}
			}
			assert.Equal(t, []string{"-- +goose Up", "-- +goose Down"}, annotations,
				"each migration has one Up section followed by one Down section")
		})
	}
}
