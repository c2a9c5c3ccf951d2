package postgres_test

import (
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/postgres"
)

// The compression and retention ages reach the sessions that run the migrations, where the
// TimescaleDB migration reads them, and those sessions have no statement timeout.
func TestIntegrationMigrationSessionSettings(t *testing.T) {
	url := sharedURL(t)
	cases := []struct {
		name             string
		cfg              postgres.Config
		compress, retain string
	}{
		{"unset", postgres.Config{URL: url}, "", ""},
		{"set", postgres.Config{URL: url, StatementTimeout: time.Second, CompressAfter: 48 * time.Hour,
			RetainFor: 90 * 24 * time.Hour}, "48:00:00", "2160:00:00"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			compress, retain, timeout, err := postgres.MigrationSettings(t.Context(), c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if compress != c.compress || retain != c.retain || timeout != "0" {
				t.Fatalf("compress_after %q, retain_for %q, statement_timeout %q; want %q, %q, 0",
					compress, retain, timeout, c.compress, c.retain)
			}
		})
	}
}
