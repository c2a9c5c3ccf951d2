package bootstrap_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/production-line-monitor/plm/bootstrap"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestDefaults(t *testing.T) {
	cfg, err := bootstrap.LoadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":8080" || cfg.DataDir != "data" || len(cfg.APIKeys) != 0 || cfg.LogFormat != "text" ||
		cfg.LogLevel != slog.LevelInfo || cfg.MaxBodyBytes != 1<<20 || cfg.MaxConns != 10000 || cfg.RateLimit != (bootstrap.RateLimit{}) ||
		cfg.ShutdownTimeout != 30*time.Second || !cfg.Database.Embedded() || cfg.Database.MaxConns != 10 ||
		cfg.Database.StatementTimeout != 30*time.Second || !cfg.Database.MigrateOnStart ||
		cfg.Database.CompressAfter != 7*24*time.Hour || cfg.Database.Retention != 0 || cfg.Database.ChunkInterval != 24*time.Hour ||
		cfg.Queue != (bootstrap.Queue{Prefix: "plm", Partitions: 16, MaxRetries: 5, ClaimIdle: 15 * time.Second,
			MonitorInterval: 30 * time.Second, MemoryLimit: 200 << 20}) {
		t.Fatalf("defaults = %+v", cfg)
	}
	if cfg.Detector != anomaly.DefaultConfig {
		t.Errorf("detector = %+v, want the contract's defaults", cfg.Detector)
	}
	if cfg.Rules != equipment.DefaultRules {
		t.Errorf("rules = %+v, want the contract's defaults", cfg.Rules)
	}
	if cfg.Alarm != alarm.DefaultRules || cfg.RulesFile != "" {
		t.Errorf("alarm rules = %+v, rules file %q, want alarm.DefaultRules and none", cfg.Alarm, cfg.RulesFile)
	}
}

func TestEveryVariableIsRead(t *testing.T) {
	vars := map[string]string{
		"PLM_ADDR": "127.0.0.1:9000", "PLM_DATA_DIR": "/var/lib/plm/", "PLM_API_KEYS": " key-aaaaaaaaaaaaaaaa , key-bbbbbbbbbbbbbbbb,",
		"PLM_LOG_LEVEL": "DEBUG", "PLM_LOG_FORMAT": "json", "PLM_WINDOW_SIZE": "50", "PLM_MIN_SAMPLES": "10",
		"PLM_SEVERITY_LOW": "2.5", "PLM_SEVERITY_MEDIUM": "3.5", "PLM_SEVERITY_CRITICAL": "6",
		"PLM_OFFLINE_AFTER": "1m", "PLM_ANOMALY_WINDOW": "2m", "PLM_ANOMALY_STATUS_FROM": "low", "PLM_MAX_BODY_BYTES": "2048",
		"PLM_RATE_LIMIT": "600/m", "PLM_READ_TIMEOUT": "5s", "PLM_WRITE_TIMEOUT": "6s",
		"PLM_IDLE_TIMEOUT": "7s", "PLM_MAX_CONNS": "500", "PLM_SHUTDOWN_TIMEOUT": "8s",
		"PLM_DATABASE_URL": "postgres://plm@db:5432/plm", "PLM_DB_MAX_CONNS": "25",
		"PLM_DB_STATEMENT_TIMEOUT": "9s", "PLM_MIGRATE_ON_START": "false",
		"PLM_COMPRESS_AFTER": "72h", "PLM_RETENTION": "8760h", "PLM_CHUNK_INTERVAL": "6h",
		"PLM_REDIS_URL": "redis://cache:6379/2", "PLM_REDIS_PREFIX": "plant-a", "PLM_PARTITIONS": "32",
		"PLM_MAX_RETRIES": "7", "PLM_CLAIM_IDLE": "20s", "PLM_WORKER_CONCURRENCY": "4", "PLM_WORKER_ID": "w-1",
		"PLM_MONITOR_INTERVAL": "10s", "PLM_WORKER_MEMORY_LIMIT": "1GiB", "PLM_PPROF_ADDR": "127.0.0.1:6060",
		"PLM_RULES_FILE": " /etc/plm/rules.yaml ", "PLM_ALARM_DEBOUNCE": "2/4", "PLM_ALARM_DEBOUNCE_Z": "4.5", "PLM_ALARM_OPEN_AT_Z": "0",
		"PLM_ALARM_CLEAR_BELOW": "1.5", "PLM_ALARM_CLEAR_AFTER": "20", "PLM_ALARM_CLEAR_AFTER_TIME": "15m",
		"PLM_ALARM_FLAPPING": "3/1h",
		"PLM_EVENT_LOG_SIZE": "500", "PLM_STREAM_KEEPALIVE": "20s", "PLM_STREAM_MAX_CLIENTS": "50",
		"PLM_SESSION_TTL": "1h", "PLM_STATUS_INTERVAL": "2s", "PLM_DELIVERY_TIMEOUT": "3s",
		"PLM_DELIVERY_MAX_ATTEMPTS": "4", "PLM_DELIVERY_BACKOFF": "250ms", "PLM_BREAKER_FAILURES": "6",
		"PLM_BREAKER_COOLDOWN": "45s",
	}
	if len(vars) != len(bootstrap.Variables) {
		t.Fatalf("the test sets %d variables but %d are documented", len(vars), len(bootstrap.Variables))
	}
	cfg, err := bootstrap.LoadConfig(env(vars))
	if err != nil {
		t.Fatal(err)
	}
	want := bootstrap.Config{
		Addr: "127.0.0.1:9000", DataDir: "/var/lib/plm", APIKeys: []string{"key-aaaaaaaaaaaaaaaa", "key-bbbbbbbbbbbbbbbb"},
		LogLevel: slog.LevelDebug, LogFormat: "json", PprofAddr: "127.0.0.1:6060",
		Detector: anomaly.Config{WindowSize: 50, MinSamples: 10, Bands: anomaly.Bands{Low: 2.5, Medium: 3.5, Critical: 6},
			Checks: anomaly.DefaultChecks},
		Alarm: alarm.Rules{DebounceK: 2, DebounceM: 4, DebounceZ: 4.5, OpenAtZ: 0, ClearBelow: 1.5, ClearAfter: 20,
			ClearAfterTime: 15 * time.Minute, FlapCount: 3, FlapWindow: time.Hour},
		RulesFile:    "/etc/plm/rules.yaml",
		Rules:        equipment.Rules{OfflineAfter: time.Minute, AnomalyWindow: 2 * time.Minute, AnomalyFrom: anomaly.SeverityLow},
		MaxBodyBytes: 2048, RateLimit: bootstrap.RateLimit{Limit: 600, Per: time.Minute},
		ReadTimeout: 5 * time.Second, WriteTimeout: 6 * time.Second, IdleTimeout: 7 * time.Second, MaxConns: 500, ShutdownTimeout: 8 * time.Second,
		Database: bootstrap.Database{URL: "postgres://plm@db:5432/plm", MaxConns: 25, StatementTimeout: 9 * time.Second,
			CompressAfter: 72 * time.Hour, Retention: 8760 * time.Hour, ChunkInterval: 6 * time.Hour},
		Queue: bootstrap.Queue{RedisURL: "redis://cache:6379/2", Prefix: "plant-a", Partitions: 32, MaxRetries: 7,
			ClaimIdle: 20 * time.Second, Concurrency: 4, WorkerID: "w-1", MonitorInterval: 10 * time.Second,
			MemoryLimit: 1 << 30},
		Events: bootstrap.Events{LogSize: 500, StreamKeepAlive: 20 * time.Second, StreamMaxClients: 50, SessionTTL: time.Hour,
			StatusInterval: 2 * time.Second, Delivery: bootstrap.Delivery{Timeout: 3 * time.Second, MaxAttempts: 4,
				Backoff: 250 * time.Millisecond, BreakerFailures: 6, BreakerCooldown: 45 * time.Second}},
	}
	if got, w := cfg, want; got.Addr != w.Addr || got.DataDir != w.DataDir || strings.Join(got.APIKeys, ",") != strings.Join(w.APIKeys, ",") ||
		got.LogLevel != w.LogLevel || got.LogFormat != w.LogFormat || got.Detector != w.Detector || got.Rules != w.Rules ||
		got.MaxBodyBytes != w.MaxBodyBytes || got.RateLimit != w.RateLimit || got.ReadTimeout != w.ReadTimeout ||
		got.WriteTimeout != w.WriteTimeout || got.IdleTimeout != w.IdleTimeout || got.MaxConns != w.MaxConns || got.ShutdownTimeout != w.ShutdownTimeout ||
		got.Database != w.Database || got.Queue != w.Queue || got.Alarm != w.Alarm || got.RulesFile != w.RulesFile ||
		got.Events != w.Events {
		t.Fatalf("got  %+v\nwant %+v", got, w)
	}
}

// Every bad variable is named at once, one line each.
func TestBadValuesAreAllNamed(t *testing.T) {
	vars := map[string]string{
		"PLM_WINDOW_SIZE": "ten", "PLM_MIN_SAMPLES": "1", "PLM_SEVERITY_LOW": "NaN", "PLM_OFFLINE_AFTER": "30",
		"PLM_ANOMALY_WINDOW": "-1s", "PLM_RATE_LIMIT": "100/fortnight", "PLM_LOG_LEVEL": "loud", "PLM_LOG_FORMAT": "xml",
		"PLM_MAX_BODY_BYTES": "12", "PLM_API_KEYS": "short", "PLM_DATABASE_URL": "mysql://x", "PLM_DB_MAX_CONNS": "0",
		"PLM_DB_STATEMENT_TIMEOUT": "soon", "PLM_MIGRATE_ON_START": "maybe", "PLM_REDIS_URL": "http://localhost",
		"PLM_COMPRESS_AFTER": "0s", "PLM_RETENTION": "forever", "PLM_PARTITIONS": "0", "PLM_MAX_RETRIES": "-1",
		"PLM_CLAIM_IDLE": "100ms", "PLM_WORKER_CONCURRENCY": "many", "PLM_MONITOR_INTERVAL": "0", "PLM_REDIS_PREFIX": "a b",
		"PLM_WORKER_MEMORY_LIMIT": "200MB",
		"PLM_MAX_CONNS":           "0", "PLM_ALARM_DEBOUNCE": "5/3", "PLM_ALARM_OPEN_AT_Z": "-1", "PLM_ALARM_CLEAR_BELOW": "0",
		"PLM_ALARM_CLEAR_AFTER": "0", "PLM_ALARM_CLEAR_AFTER_TIME": "-5m", "PLM_ALARM_FLAPPING": "1/30m",
	}
	_, err := bootstrap.LoadConfig(env(vars))
	if !errors.Is(err, bootstrap.ErrInvalidConfig) {
		t.Fatalf("err = %v", err)
	}
	for name := range vars {
		if !strings.Contains(err.Error(), name+"=") {
			t.Errorf("%s is not named in:\n%v", name, err)
		}
	}
	if n := strings.Count(err.Error(), "\n"); n != len(vars) {
		t.Errorf("%d lines for %d bad variables:\n%v", n, len(vars), err)
	}
}

// A configuration error names the bad variable but never shows a key or a password.
func TestConfigErrorsHideSecrets(t *testing.T) {
	_, err := bootstrap.LoadConfig(env(map[string]string{
		"PLM_API_KEYS":     "short-secret",
		"PLM_DATABASE_URL": "mysql://plm:db-password-1@db/plm",
		"PLM_REDIS_URL":    "http://:redis-password-2@cache:6379",
	}))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, secret := range []string{"short-secret", "db-password-1", "redis-password-2"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error shows %q:\n%v", secret, err)
		}
	}
	for _, name := range []string{"PLM_API_KEYS=", "PLM_DATABASE_URL=\"mysql://plm:xxxxx@db/plm\"", "PLM_REDIS_URL="} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not name %s:\n%v", name, err)
		}
	}
}

func TestBoundaries(t *testing.T) {
	cases := []struct {
		name string
		vars map[string]string
		ok   bool
	}{
		{"min samples equal to window", map[string]string{"PLM_WINDOW_SIZE": "30", "PLM_MIN_SAMPLES": "30"}, true},
		{"min samples above window", map[string]string{"PLM_WINDOW_SIZE": "30", "PLM_MIN_SAMPLES": "31"}, false},
		{"bands out of order", map[string]string{"PLM_SEVERITY_MEDIUM": "6"}, false},
		{"equal bands", map[string]string{"PLM_SEVERITY_LOW": "4", "PLM_SEVERITY_MEDIUM": "4", "PLM_SEVERITY_CRITICAL": "4"}, true},
		{"rate limit off", map[string]string{"PLM_RATE_LIMIT": "off"}, true},
		{"rate limit zero count", map[string]string{"PLM_RATE_LIMIT": "0/s"}, false},
		{"rate limit per hour", map[string]string{"PLM_RATE_LIMIT": "5/h"}, true},
		{"key of 16 characters", map[string]string{"PLM_API_KEYS": "0123456789abcdef"}, true},
		{"key of 15 characters", map[string]string{"PLM_API_KEYS": "0123456789abcde"}, false},
		{"scoped keys", map[string]string{"PLM_API_KEYS": "ingest:0123456789abcdef,read:fedcba9876543210,admin:00112233445566778899"}, true},
		{"scoped key of 15 characters", map[string]string{"PLM_API_KEYS": "read:0123456789abcde"}, false},
		{"unknown scope", map[string]string{"PLM_API_KEYS": "write:0123456789abcdef"}, false},
		{"one key in two scopes", map[string]string{"PLM_API_KEYS": "ingest:0123456789abcdef,read:0123456789abcdef"}, false},
		{"redis without a database", map[string]string{"PLM_REDIS_URL": "redis://localhost"}, false},
		{"redis with a database", map[string]string{"PLM_REDIS_URL": "redis://localhost:6379/0", "PLM_DATABASE_URL": "postgres://localhost/plm"}, true},
		{"redis over tls", map[string]string{"PLM_REDIS_URL": "rediss://localhost", "PLM_DATABASE_URL": "postgres://localhost/plm"}, true},
		{"redis wrong scheme", map[string]string{"PLM_REDIS_URL": "localhost:6379", "PLM_DATABASE_URL": "postgres://localhost/plm"}, false},
		{"one partition", map[string]string{"PLM_PARTITIONS": "1"}, true},
		{"claim idle of a second", map[string]string{"PLM_CLAIM_IDLE": "1s"}, true},
		{"no retries", map[string]string{"PLM_MAX_RETRIES": "0"}, true},
		{"postgresql scheme", map[string]string{"PLM_DATABASE_URL": "postgresql://localhost/plm"}, true},
		{"sqlite file url", map[string]string{"PLM_DATABASE_URL": "file:plm.db"}, false},
		{"debounce 1 of 1", map[string]string{"PLM_ALARM_DEBOUNCE": "1/1"}, true},
		{"debounce 64 of 64", map[string]string{"PLM_ALARM_DEBOUNCE": "64/64"}, true},
		{"debounce over 64", map[string]string{"PLM_ALARM_DEBOUNCE": "3/65"}, false},
		{"debounce 0 of 5", map[string]string{"PLM_ALARM_DEBOUNCE": "0/5"}, false},
		{"debounce without m", map[string]string{"PLM_ALARM_DEBOUNCE": "3"}, false},
		{"open at z never", map[string]string{"PLM_ALARM_OPEN_AT_Z": "0"}, true},
		{"open at z NaN", map[string]string{"PLM_ALARM_OPEN_AT_Z": "NaN"}, false},
		{"clear after time off", map[string]string{"PLM_ALARM_CLEAR_AFTER_TIME": "off"}, true},
		{"clear after time without unit", map[string]string{"PLM_ALARM_CLEAR_AFTER_TIME": "300"}, false},
		{"flapping count 2", map[string]string{"PLM_ALARM_FLAPPING": "2/1m"}, true},
		{"flapping zero window", map[string]string{"PLM_ALARM_FLAPPING": "5/0s"}, false},
		{"flapping without window", map[string]string{"PLM_ALARM_FLAPPING": "5"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := bootstrap.LoadConfig(env(c.vars))
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestAPIKeyIsGeneratedOnceAndKept(t *testing.T) {
	cfg, err := bootstrap.LoadConfig(env(map[string]string{"PLM_DATA_DIR": filepath.Join(t.TempDir(), "new")}))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	first, err := bootstrap.EnsureAPIKeys(cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.APIKeys) != 1 || len(first.APIKeys[0]) < 32 || !strings.Contains(out.String(), first.APIKeys[0]) {
		t.Fatalf("generated %v, printed %q", first.APIKeys, out.String())
	}
	out.Reset()
	second, err := bootstrap.EnsureAPIKeys(cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	if second.APIKeys[0] != first.APIKeys[0] || strings.Contains(out.String(), first.APIKeys[0]) {
		t.Fatalf("second start: key %v (first %v), printed %q", second.APIKeys, first.APIKeys, out.String())
	}
	// Keys from the environment win, and nothing is written.
	cfg.APIKeys = []string{"from-the-environment-0001"}
	third, err := bootstrap.EnsureAPIKeys(cfg, io.Discard)
	if err != nil || third.APIKeys[0] != "from-the-environment-0001" {
		t.Fatalf("got %v, %v", third.APIKeys, err)
	}
}

func TestAPIKeyFileThatHoldsNoKeyIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, bootstrap.APIKeyFile), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _ := bootstrap.LoadConfig(env(map[string]string{"PLM_DATA_DIR": dir}))
	if _, err := bootstrap.EnsureAPIKeys(cfg, io.Discard); err == nil {
		t.Fatal("an empty key file was accepted")
	}
}

func TestServiceGraphsAreComplete(t *testing.T) {
	for name, url := range map[string]string{"embedded": "", "postgres": "postgres://postgres@127.0.0.1:1/none"} {
		t.Run(name, func(t *testing.T) {
			cfg, err := bootstrap.LoadConfig(env(map[string]string{"PLM_DATA_DIR": t.TempDir(),
				"PLM_API_KEYS": "0123456789abcdef", "PLM_DATABASE_URL": url}))
			if err != nil {
				t.Fatal(err)
			}
			if err := fx.ValidateApp(bootstrap.Service(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), bootstrap.RoleAll)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
