package migrations_test

import (
	"embed"
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

// engines are the migration folders, each with the files it must hold.
var engines = []struct {
	name  string
	fsys  embed.FS
	dir   string
	files []string
}{
	{name: "sqlite", fsys: migrations.SQLite, dir: "sqlite", files: []string{"0001_init.sql"}},
	{name: "postgres", fsys: migrations.Postgres, dir: "postgres",
		files: []string{"0001_init.sql", "0002_reading_counts.sql", "0003_timescaledb.sql",
			"0004_fencing_and_rollup_deltas.sql"}},
}

func TestEmbedsTheMigrations(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			want := make([]string, len(e.files))
			for i, f := range e.files {
				want[i] = e.dir + "/" + f
			}
			require.NoError(t, fstest.TestFS(e.fsys, want...))
		})
	}
}

func TestMigrationsAreNumberedGooseFiles(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			entries, err := fs.ReadDir(eng.fsys, eng.dir)
			require.NoError(t, err)
			require.NotEmpty(t, entries)
			for i, e := range entries {
				t.Run(e.Name(), func(t *testing.T) {
					m := fileName.FindStringSubmatch(e.Name())
					require.NotNil(t, m, "file name must be NNNN_name.sql")
					assert.Equal(t, fmt.Sprintf("%04d", i+1), m[1], "versions must run 0001, 0002, ... without gaps")

					body, err := fs.ReadFile(eng.fsys, eng.dir+"/"+e.Name())
					require.NoError(t, err)
					sections, err := gooseSections(string(body))
					require.NoError(t, err)
					assert.Equal(t, []string{"Up", "Down"}, sections,
						"each migration has one Up section followed by one Down section")
				})
			}
		})
	}
}

// gooseSections lists the sections ("Up", "Down") that the goose annotations of a migration
// open, in order, and checks that every StatementBegin is closed by a StatementEnd within
// its section.
func gooseSections(body string) ([]string, error) {
	var sections []string
	open := false // inside StatementBegin ... StatementEnd
	for line := range strings.Lines(body) {
		l := strings.TrimSpace(line)
		if !strings.HasPrefix(l, "--") || !strings.Contains(l, "+goose") {
			continue
		}
		switch l {
		case "-- +goose Up", "-- +goose Down":
			if open {
				return nil, fmt.Errorf("%q inside a statement block", l)
			}
			sections = append(sections, strings.TrimPrefix(l, "-- +goose "))
		case "-- +goose StatementBegin":
			if open || len(sections) == 0 {
				return nil, fmt.Errorf("%q outside a section or inside another block", l)
			}
			open = true
		case "-- +goose StatementEnd":
			if !open {
				return nil, fmt.Errorf("%q without StatementBegin", l)
			}
			open = false
		default:
			return nil, fmt.Errorf("unexpected annotation %q", l)
		}
	}
	if open {
		return nil, fmt.Errorf("statement block left open")
	}
	return sections, nil
}

func TestGooseSectionsRejectsBrokenBlocks(t *testing.T) {
	tests := map[string]string{
		"unclosed_block":       "-- +goose Up\n-- +goose StatementBegin\nDO $$ $$;\n-- +goose Down\n",
		"end_without_begin":    "-- +goose Up\n-- +goose StatementEnd\n-- +goose Down\n",
		"block_before_section": "-- +goose StatementBegin\n-- +goose StatementEnd\n-- +goose Up\n-- +goose Down\n",
		"unknown_annotation":   "-- +goose Up\n-- +goose NO TRANSACTION\n-- +goose Down\n",
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := gooseSections(body)
			assert.Error(t, err)
		})
	}
	got, err := gooseSections("-- +goose Up\n-- +goose StatementBegin\nDO $$ $$;\n-- +goose StatementEnd\n-- +goose Down\n")
	require.NoError(t, err)
	assert.Equal(t, []string{"Up", "Down"}, got)
}
