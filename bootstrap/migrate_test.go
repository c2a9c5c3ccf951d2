package bootstrap_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/production-line-monitor/plm/bootstrap"
	"github.com/production-line-monitor/plm/tests/pgtest"
)

func TestMigrateUpStatusDown(t *testing.T) {
	cfg, err := bootstrap.LoadConfig(env(map[string]string{"PLM_DATABASE_URL": pgtest.NewDatabase(t, pgtest.Admin(t))}))
	if err != nil {
		t.Fatal(err)
	}
	run := func(command string) string {
		t.Helper()
		var out bytes.Buffer
		if err := bootstrap.Migrate(t.Context(), cfg, command, &out); err != nil {
			t.Fatalf("migrate %s: %v", command, err)
		}
		return out.String()
	}
	if out := run("status"); strings.Count(out, "pending") != 11 || strings.Contains(out, "applied") {
		t.Fatalf("status of an empty database:\n%s", out)
	}
	if out := run("up"); strings.Count(out, "applied ") != 11 || !strings.Contains(out, "0001_init.sql") {
		t.Fatalf("up:\n%s", out)
	}
	if out := run("up"); !strings.Contains(out, "up to date") {
		t.Fatalf("second up:\n%s", out)
	}
	if out := run("down"); !strings.Contains(out, "rolled back 0011_sensor_ids.sql") {
		t.Fatalf("down:\n%s", out)
	}
	if out := run("status"); strings.Count(out, "applied ") != 10 || strings.Count(out, "pending") != 1 {
		t.Fatalf("status after down:\n%s", out)
	}
}

func TestMigrateRefusals(t *testing.T) {
	cfg, _ := bootstrap.LoadConfig(env(nil))
	if err := bootstrap.Migrate(t.Context(), cfg, "sideways", &bytes.Buffer{}); !errors.Is(err, bootstrap.ErrMigrateUsage) {
		t.Errorf("unknown command: %v", err)
	}
	if err := bootstrap.Migrate(t.Context(), cfg, "up", &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "PLM_DATABASE_URL") {
		t.Errorf("without PLM_DATABASE_URL: %v", err)
	}
}
