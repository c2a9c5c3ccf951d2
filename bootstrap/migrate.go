package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/production-line-monitor/plm/adapters/postgres"
)

// ErrMigrateUsage is returned for a migrate command that is not up, down or status.
var ErrMigrateUsage = errors.New("usage: plm migrate up|down|status")

// Migrate runs a schema migration command against the PostgreSQL database of cfg:
// "up" applies every pending migration, "down" rolls back the latest one, "status" lists them.
// The embedded SQLite database needs none: it is migrated at every start.
func Migrate(ctx context.Context, cfg Config, command string, out io.Writer) error {
	if command != "up" && command != "down" && command != "status" {
		return ErrMigrateUsage
	}
	if cfg.Database.Embedded() {
		return errors.New("migrate: PLM_DATABASE_URL is not set; the embedded database is migrated at every start")
	}
	p, err := postgres.OpenMigrator(postgresConfig(cfg.Database))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer p.Close()
	switch command {
	case "up":
		res, err := p.Up(ctx)
		for _, r := range res {
			fmt.Fprintf(out, "applied %s (%s)\n", r.Source.Path, r.Duration.Round(1e6))
		}
		if err != nil {
			return fmt.Errorf("migrate up: %w", err)
		}
		if len(res) == 0 {
			fmt.Fprintln(out, "the schema is up to date")
		}
	case "down":
		r, err := p.Down(ctx)
		if err != nil {
			return fmt.Errorf("migrate down: %w", err)
		}
		fmt.Fprintf(out, "rolled back %s\n", r.Source.Path)
	case "status":
		st, err := p.Status(ctx)
		if err != nil {
			return fmt.Errorf("migrate status: %w", err)
		}
		for _, s := range st {
			applied := "pending"
			if s.State == "applied" {
				applied = "applied " + s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
			}
			fmt.Fprintf(out, "%-40s %s\n", s.Source.Path, applied)
		}
	}
	return nil
}
