// Package bootstrap reads the configuration and composes the adapters into the service.
package bootstrap

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	httpadapter "github.com/production-line-monitor/plm/adapters/http"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
)

// Config is the whole configuration, read from PLM_* environment variables.
type Config struct {
	Addr            string
	DataDir         string
	APIKeys         []string
	LogLevel        slog.Level
	LogFormat       string         // "text" or "json"
	Detector        anomaly.Config // every sensor type's, unless RulesFile overrides it (LoadRules)
	Alarm           alarm.Rules    // likewise
	RulesFile       string         // YAML or JSON rules per sensor type; empty: none
	Rules           equipment.Rules
	MaxBodyBytes    int
	RateLimit       RateLimit
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	IdleTimeout     time.Duration
	MaxConns        int
	ShutdownTimeout time.Duration
	PprofAddr       string // where to serve net/http/pprof; empty: nowhere
	Database        Database
	Queue           Queue
	Events          Events
}

// Events tunes what the service tells as it happens: the live stream, browser sessions, the
// status sweeper and the outbound notifications.
type Events struct {
	LogSize          int           // events the live stream keeps for clients that come back
	StreamKeepAlive  time.Duration // interval of the stream's keep-alive comments
	StreamMaxClients int           // most live streams per process
	SessionTTL       time.Duration // lifetime of a browser session
	StatusInterval   time.Duration // how often each API process looks for status changes
	Delivery         Delivery
}

// Delivery tunes the outbound notifications.
type Delivery struct {
	Timeout         time.Duration // one attempt's time limit
	MaxAttempts     int           // attempts before a delivery is dead
	Backoff         time.Duration // the longest delay before the first retry; it doubles, to a cap
	BreakerFailures int           // failed attempts in a row that open an endpoint's breaker
	BreakerCooldown time.Duration // how long an open breaker pauses its endpoint
}

// Queue selects and tunes the queue between the webhook and the workers. An empty
// RedisURL means the in-process queue.
type Queue struct {
	RedisURL    string
	Prefix      string
	Partitions  int
	MaxRetries  int
	ClaimIdle   time.Duration
	Concurrency int
	WorkerID    string
	// MonitorInterval is how often a worker logs the state of the queue.
	MonitorInterval time.Duration
	// MemoryLimit is the soft memory limit of a worker process (see SetWorkerMemoryLimit),
	// in bytes; 0: none.
	MemoryLimit int64
}

// Embedded reports whether the queue is the in-process one.
func (q Queue) Embedded() bool { return q.RedisURL == "" }

// Database selects and tunes the storage. An empty URL means the embedded SQLite file.
type Database struct {
	URL              string
	MaxConns         int
	StatementTimeout time.Duration
	MigrateOnStart   bool
	CompressAfter    time.Duration // TimescaleDB only
	Retention        time.Duration // TimescaleDB only; 0: keep readings forever
	ChunkInterval    time.Duration // TimescaleDB only
}

// Embedded reports whether the storage is the embedded SQLite file.
func (d Database) Embedded() bool { return d.URL == "" }

// RateLimit is how many requests one API key may make per period; Limit 0 means no limit.
type RateLimit struct {
	Limit int
	Per   time.Duration
}

// Variable documents one configuration variable.
type Variable struct {
	Name    string
	Default string
	Help    string
}

// Variables lists every variable the service reads, with its default. The README and
// .env.example list the same.
var Variables = []Variable{
	{"PLM_ADDR", ":8080", "address the HTTP server listens on"},
	{"PLM_DATA_DIR", "./data", "where the embedded database and the generated API key are kept"},
	{"PLM_API_KEYS", "", "comma-separated API keys, each bare (full access) or scoped as ingest:<key>, read:<key> or admin:<key>; empty: a key is generated once and kept in PLM_DATA_DIR/api-key"},
	{"PLM_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"PLM_LOG_FORMAT", "text", "text or json"},
	{"PLM_WINDOW_SIZE", "100", "readings in each sensor's rolling window"},
	{"PLM_MIN_SAMPLES", "30", "readings a window needs before any verdict"},
	{"PLM_SEVERITY_LOW", "3", "|z| from which a reading is a LOW anomaly"},
	{"PLM_SEVERITY_MEDIUM", "4", "|z| from which an anomaly is MEDIUM"},
	{"PLM_SEVERITY_CRITICAL", "5", "|z| from which an anomaly is CRITICAL"},
	{"PLM_RULES_FILE", "", "YAML or JSON file of rules per sensor type (window, severity bands, hard limits, alarm rules) over the defaults set by the variables; empty: those defaults for every type"},
	{"PLM_ALARM_DEBOUNCE", "3/5", "an alarm opens when K of the last M readings (K/M, 1 <= K <= M <= 64) are anomalous"},
	{"PLM_ALARM_DEBOUNCE_Z", "5", "|z| from which an anomalous reading counts toward PLM_ALARM_DEBOUNCE; 0: every anomalous reading counts"},
	{"PLM_ALARM_OPEN_AT_Z", "20", "|z| from which a single anomalous reading opens an alarm at once; 0: never"},
	{"PLM_ALARM_CLEAR_BELOW", "2", "|z| under which a reading counts as calm"},
	{"PLM_ALARM_CLEAR_AFTER", "10", "calm readings in a row that clear an open alarm"},
	{"PLM_ALARM_CLEAR_AFTER_TIME", "0", "also clear an open alarm once no reading at or above PLM_ALARM_CLEAR_BELOW has come for this long, e.g. 15m (checked as readings arrive); 0: off"},
	{"PLM_ALARM_FLAPPING", "5/30m", "N/window: a sensor whose alarms opened N times within the window is flapping, and its further openings are held back until fewer than N fall within it (N at least 2)"},
	{"PLM_OFFLINE_AFTER", "30s", "silence after which equipment is OFFLINE"},
	{"PLM_ANOMALY_WINDOW", "60s", "how long after an anomaly equipment stays ANOMALY"},
	{"PLM_ANOMALY_STATUS_FROM", "CRITICAL", "the least severity of an anomalous reading that makes equipment ANOMALY for PLM_ANOMALY_WINDOW (an open alarm always does): LOW, MEDIUM or CRITICAL; LOW is the contract's rule, any anomaly"},
	{"PLM_MAX_BODY_BYTES", "1048576", "largest request body accepted"},
	{"PLM_RATE_LIMIT", "off", "requests per API key, as N/s, N/m or N/h (shared by every process through Redis when PLM_REDIS_URL is set); off for none"},
	{"PLM_READ_TIMEOUT", "10s", "time allowed to read a request"},
	{"PLM_WRITE_TIMEOUT", "10s", "time allowed to write a response"},
	{"PLM_IDLE_TIMEOUT", "60s", "how long an idle keep-alive connection stays open"},
	{"PLM_MAX_CONNS", "10000", "most HTTP connections served at once, idle keep-alive ones included; one more is answered 503 and closed"},
	{"PLM_SHUTDOWN_TIMEOUT", "30s", "how long a graceful shutdown may take"},
	{"PLM_DATABASE_URL", "", "postgres:// URL of the production database; empty: the embedded SQLite file in PLM_DATA_DIR"},
	{"PLM_DB_MAX_CONNS", "10", "PostgreSQL connection pool size"},
	{"PLM_DB_STATEMENT_TIMEOUT", "30s", "longest a PostgreSQL statement may run"},
	{"PLM_MIGRATE_ON_START", "true", "apply pending PostgreSQL migrations at start (false: run 'plm migrate up' yourself)"},
	{"PLM_COMPRESS_AFTER", "168h", "TimescaleDB: compress readings older than this (set when the TimescaleDB migration runs)"},
	{"PLM_RETENTION", "off", "TimescaleDB: drop readings older than this, e.g. 8760h; off keeps them (set when the TimescaleDB migration runs)"},
	{"PLM_CHUNK_INTERVAL", "24h", "TimescaleDB: the time each chunk of readings spans (set when migration 0008 runs)"},
	{"PLM_REDIS_URL", "", "redis:// URL of the production queue (Redis Streams); empty: the in-process queue. Needs PLM_DATABASE_URL"},
	{"PLM_REDIS_PREFIX", "plm", "prefix of every Redis key and stream of this deployment"},
	{"PLM_PARTITIONS", "16", "partitions of the readings queue: at most this many workers share the detection work; the same in every process, fixed once the deployment has run"},
	{"PLM_MAX_RETRIES", "5", "retries of a failing message before it goes to the dead-letter stream"},
	{"PLM_CLAIM_IDLE", "15s", "how long a stopped worker's partitions and pending messages wait before a live worker takes them over"},
	{"PLM_WORKER_CONCURRENCY", "0", "most messages one worker process handles at once; 0: one per partition it holds"},
	{"PLM_WORKER_ID", "", "name of this worker among the workers of the deployment; empty: host name, process id and a random suffix"},
	{"PLM_MONITOR_INTERVAL", "30s", "how often a worker logs queue length, pending, lag, dead letters and processing rate"},
	{"PLM_WORKER_MEMORY_LIMIT", "200MiB", "soft memory limit of a plm worker process, as Go's GOMEMLIMIT takes it (e.g. 512MiB, 1GiB): the garbage collector works harder as the heap nears it; GOMEMLIMIT, when set, wins; off: none"},
	{"PLM_EVENT_LOG_SIZE", "10000", "events the live stream (GET /stream) keeps for clients that reconnect with Last-Event-ID: in memory when embedded, in the Redis stream <prefix>:events:live in production"},
	{"PLM_STREAM_KEEPALIVE", "15s", "interval of the keep-alive comments on GET /stream"},
	{"PLM_STREAM_MAX_CLIENTS", "1000", "most live streams one process serves at once; one more is answered 503"},
	{"PLM_SESSION_TTL", "12h", "lifetime of a browser session (the status page's sign-in cookie)"},
	{"PLM_STATUS_INTERVAL", "1s", "how often each API process looks for equipment status changes to announce (OFFLINE among them)"},
	{"PLM_DELIVERY_TIMEOUT", "5s", "time limit of one notification delivery attempt"},
	{"PLM_DELIVERY_MAX_ATTEMPTS", "10", "attempts at a notification delivery before it is dead (it can then be redelivered through the API)"},
	{"PLM_DELIVERY_BACKOFF", "1s", "longest delay before a delivery's first retry (full jitter: the delay is drawn between 0 and it); it doubles with each failed attempt, up to 5 minutes"},
	{"PLM_BREAKER_FAILURES", "5", "failed deliveries in a row to one endpoint that pause it (its circuit breaker opens)"},
	{"PLM_BREAKER_COOLDOWN", "30s", "how long a paused endpoint waits before one delivery tries it again"},
	{"PLM_PPROF_ADDR", "", "address to serve Go's profiler (net/http/pprof) on, e.g. 127.0.0.1:6060, without authentication; empty: off"},
}

// ErrInvalidConfig wraps every configuration error.
var ErrInvalidConfig = errors.New("invalid configuration")

// LoadConfig reads the configuration through getenv (os.Getenv in production). It reports
// every bad variable at once, one line each.
func LoadConfig(getenv func(string) string) (Config, error) {
	l := loader{getenv: getenv}
	cfg := Config{
		Addr:      l.str("PLM_ADDR"),
		DataDir:   l.str("PLM_DATA_DIR"),
		LogFormat: l.str("PLM_LOG_FORMAT"),
		PprofAddr: strings.TrimSpace(getenv("PLM_PPROF_ADDR")),
		Detector: anomaly.Config{
			WindowSize: l.integer("PLM_WINDOW_SIZE", 2, 100_000),
			MinSamples: l.integer("PLM_MIN_SAMPLES", 2, 100_000),
			Bands: anomaly.Bands{
				Low:      l.float("PLM_SEVERITY_LOW"),
				Medium:   l.float("PLM_SEVERITY_MEDIUM"),
				Critical: l.float("PLM_SEVERITY_CRITICAL"),
			},
			Checks: anomaly.DefaultChecks, // the rules file changes them
		},
		Alarm:     l.alarmRules(),
		RulesFile: strings.TrimSpace(getenv("PLM_RULES_FILE")),
		Rules: equipment.Rules{
			OfflineAfter:  l.duration("PLM_OFFLINE_AFTER"),
			AnomalyWindow: l.duration("PLM_ANOMALY_WINDOW"),
			AnomalyFrom:   l.severity("PLM_ANOMALY_STATUS_FROM"),
		},
		MaxBodyBytes:    l.integer("PLM_MAX_BODY_BYTES", 1024, 1<<30),
		RateLimit:       l.rateLimit("PLM_RATE_LIMIT"),
		ReadTimeout:     l.duration("PLM_READ_TIMEOUT"),
		WriteTimeout:    l.duration("PLM_WRITE_TIMEOUT"),
		IdleTimeout:     l.duration("PLM_IDLE_TIMEOUT"),
		MaxConns:        l.integer("PLM_MAX_CONNS", 1, 1_000_000),
		ShutdownTimeout: l.duration("PLM_SHUTDOWN_TIMEOUT"),
		Database: Database{
			URL:              strings.TrimSpace(getenv("PLM_DATABASE_URL")),
			MaxConns:         l.integer("PLM_DB_MAX_CONNS", 1, 1000),
			StatementTimeout: l.duration("PLM_DB_STATEMENT_TIMEOUT"),
			MigrateOnStart:   l.boolean("PLM_MIGRATE_ON_START"),
			CompressAfter:    l.duration("PLM_COMPRESS_AFTER"),
			Retention:        l.optionalDuration("PLM_RETENTION"),
			ChunkInterval:    l.duration("PLM_CHUNK_INTERVAL"),
		},
		Queue: Queue{
			RedisURL:        strings.TrimSpace(getenv("PLM_REDIS_URL")),
			Prefix:          l.str("PLM_REDIS_PREFIX"),
			Partitions:      l.integer("PLM_PARTITIONS", 1, 1024),
			MaxRetries:      l.integer("PLM_MAX_RETRIES", 0, 100),
			ClaimIdle:       l.duration("PLM_CLAIM_IDLE"),
			Concurrency:     l.integer("PLM_WORKER_CONCURRENCY", 0, 100_000),
			WorkerID:        strings.TrimSpace(getenv("PLM_WORKER_ID")),
			MonitorInterval: l.duration("PLM_MONITOR_INTERVAL"),
			MemoryLimit:     l.byteSize("PLM_WORKER_MEMORY_LIMIT"),
		},
		Events: Events{
			LogSize:          l.integer("PLM_EVENT_LOG_SIZE", 100, 10_000_000),
			StreamKeepAlive:  l.duration("PLM_STREAM_KEEPALIVE"),
			StreamMaxClients: l.integer("PLM_STREAM_MAX_CLIENTS", 1, 1_000_000),
			SessionTTL:       l.duration("PLM_SESSION_TTL"),
			StatusInterval:   l.duration("PLM_STATUS_INTERVAL"),
			Delivery: Delivery{
				Timeout:         l.duration("PLM_DELIVERY_TIMEOUT"),
				MaxAttempts:     l.integer("PLM_DELIVERY_MAX_ATTEMPTS", 1, 1000),
				Backoff:         l.duration("PLM_DELIVERY_BACKOFF"),
				BreakerFailures: l.integer("PLM_BREAKER_FAILURES", 1, 1000),
				BreakerCooldown: l.duration("PLM_BREAKER_COOLDOWN"),
			},
		},
	}
	if u := cfg.Queue.RedisURL; u != "" {
		switch {
		case !strings.HasPrefix(u, "redis://") && !strings.HasPrefix(u, "rediss://"):
			l.fail("PLM_REDIS_URL", "must be a redis:// or rediss:// URL, or empty for the in-process queue")
		case cfg.Database.Embedded():
			l.fail("PLM_REDIS_URL", "needs PLM_DATABASE_URL: with Redis the workers store in PostgreSQL (SQLite serves one process only)")
		}
	}
	if cfg.Queue.ClaimIdle > 0 && cfg.Queue.ClaimIdle < time.Second {
		l.fail("PLM_CLAIM_IDLE", "must be at least 1s")
	}
	if strings.ContainsAny(cfg.Queue.Prefix, " \t{}") {
		l.fail("PLM_REDIS_PREFIX", "must not contain white space or braces")
	}
	if u := cfg.Database.URL; u != "" && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		l.fail("PLM_DATABASE_URL", "must be a postgres:// or postgresql:// URL, or empty for the embedded database")
	}
	if cfg.Addr == "" {
		l.fail("PLM_ADDR", "must not be empty")
	}
	if cfg.DataDir == "" {
		l.fail("PLM_DATA_DIR", "must not be empty")
	} else {
		cfg.DataDir = filepath.Clean(cfg.DataDir)
	}
	for _, k := range strings.Split(getenv("PLM_API_KEYS"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			cfg.APIKeys = append(cfg.APIKeys, k)
		}
	}
	seen := make(map[string]bool, len(cfg.APIKeys))
	for _, entry := range cfg.APIKeys {
		k, err := httpadapter.ParseAPIKey(entry)
		if err != nil {
			l.fail("PLM_API_KEYS", err.Error())
			break
		}
		if len(k.Key) < 16 {
			l.fail("PLM_API_KEYS", "every key must be at least 16 characters (after its scope)")
			break
		}
		if seen[k.Key] {
			l.fail("PLM_API_KEYS", "a key is listed twice; give each key one scope")
			break
		}
		seen[k.Key] = true
	}
	switch lv := strings.ToLower(l.str("PLM_LOG_LEVEL")); lv {
	case "debug", "info", "warn", "error":
		_ = cfg.LogLevel.UnmarshalText([]byte(lv))
	default:
		l.fail("PLM_LOG_LEVEL", "must be debug, info, warn or error")
	}
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		l.fail("PLM_LOG_FORMAT", "must be text or json")
	}
	if cfg.Detector.MinSamples > cfg.Detector.WindowSize {
		l.fail("PLM_MIN_SAMPLES", "must not exceed PLM_WINDOW_SIZE")
	}
	if b := cfg.Detector.Bands; b.Medium < b.Low || b.Critical < b.Medium {
		l.fail("PLM_SEVERITY_MEDIUM", "severity thresholds must satisfy low <= medium <= critical")
	}
	if err := l.err(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

type loader struct {
	getenv func(string) string
	errs   map[string]string
}

func (l *loader) fail(name, msg string) {
	if l.errs == nil {
		l.errs = make(map[string]string)
	}
	if _, ok := l.errs[name]; !ok {
		l.errs[name] = msg
	}
}

func (l *loader) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	names := make([]string, 0, len(l.errs))
	for n := range l.errs {
		names = append(names, n)
	}
	sort.Strings(names)
	lines := make([]string, len(names))
	for i, n := range names {
		lines[i] = fmt.Sprintf("%s=%q: %s", n, shown(n, l.getenv(n)), l.errs[n])
	}
	return fmt.Errorf("%w:\n  %s", ErrInvalidConfig, strings.Join(lines, "\n  "))
}

// shown is the value of variable name as an error message may show it: never an API key,
// and URLs without their password.
func shown(name, value string) string {
	switch name {
	case "PLM_API_KEYS":
		if value == "" {
			return ""
		}
		return "(hidden)"
	case "PLM_DATABASE_URL", "PLM_REDIS_URL":
		u, err := url.Parse(strings.TrimSpace(value))
		if err != nil {
			return "(hidden: not a URL)"
		}
		return u.Redacted()
	}
	return value
}

// str returns the variable, or its default when unset or blank.
func (l *loader) str(name string) string {
	if v := strings.TrimSpace(l.getenv(name)); v != "" {
		return v
	}
	for _, v := range Variables {
		if v.Name == name {
			return v.Default
		}
	}
	return ""
}

func (l *loader) integer(name string, lo, hi int) int {
	n, err := strconv.Atoi(l.str(name))
	if err != nil || n < lo || n > hi {
		l.fail(name, fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
		return 0
	}
	return n
}

func (l *loader) float(name string) float64 {
	f, err := strconv.ParseFloat(l.str(name), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
		l.fail(name, "must be a positive number")
		return 0
	}
	return f
}

func (l *loader) severity(name string) anomaly.Severity {
	s, err := anomaly.ParseSeverity(strings.ToUpper(l.str(name)))
	if err != nil {
		l.fail(name, "must be LOW, MEDIUM or CRITICAL")
	}
	return s
}

func (l *loader) duration(name string) time.Duration {
	d, err := time.ParseDuration(l.str(name))
	if err != nil || d <= 0 {
		l.fail(name, "must be a positive duration such as 30s, 5m or 1h")
		return 0
	}
	return d
}

// optionalDuration is duration, with "off" for zero.
func (l *loader) optionalDuration(name string) time.Duration {
	if strings.EqualFold(l.str(name), "off") {
		return 0
	}
	return l.duration(name)
}

// byteSize reads a size in GOMEMLIMIT's syntax (a whole number of bytes, or with one of the
// suffixes B, KiB, MiB, GiB and TiB), with "off" for zero.
func (l *loader) byteSize(name string) int64 {
	v := l.str(name)
	if strings.EqualFold(v, "off") {
		return 0
	}
	n, ok := parseByteSize(v)
	if !ok {
		l.fail(name, "must be a size such as 200MiB or 1GiB (suffixes B, KiB, MiB, GiB, TiB), or off")
		return 0
	}
	return n
}

func parseByteSize(v string) (int64, bool) {
	unit := int64(1)
	for _, s := range []struct {
		suffix string
		unit   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}} {
		if strings.HasSuffix(v, s.suffix) {
			v, unit = strings.TrimSuffix(v, s.suffix), s.unit
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/unit {
		return 0, false
	}
	return n * unit, true
}

func (l *loader) boolean(name string) bool {
	b, err := strconv.ParseBool(l.str(name))
	if err != nil {
		l.fail(name, "must be true or false")
	}
	return b
}

func (l *loader) rateLimit(name string) RateLimit {
	v := strings.ToLower(l.str(name))
	if v == "off" || v == "0" {
		return RateLimit{}
	}
	n, unit, ok := strings.Cut(v, "/")
	count, err := strconv.Atoi(n)
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	if !ok || err != nil || count <= 0 || per == 0 {
		l.fail(name, "must be off or N/s, N/m or N/h with N a positive whole number")
		return RateLimit{}
	}
	return RateLimit{Limit: count, Per: per}
}

// alarmRules reads the PLM_ALARM_* variables: the alarm rules of every sensor type that the
// rules file does not override.
func (l *loader) alarmRules() alarm.Rules {
	var r alarm.Rules
	k, m, ok := cutInts(l.str("PLM_ALARM_DEBOUNCE"))
	if !ok || k < 1 || m > 64 || k > m {
		l.fail("PLM_ALARM_DEBOUNCE", "must be K/M, whole numbers with 1 <= K <= M <= 64, e.g. 3/5")
	}
	r.DebounceK, r.DebounceM = k, m
	dz, err := strconv.ParseFloat(l.str("PLM_ALARM_DEBOUNCE_Z"), 64)
	if err != nil || math.IsNaN(dz) || math.IsInf(dz, 0) || dz < 0 {
		l.fail("PLM_ALARM_DEBOUNCE_Z", "must be a positive number, or 0 for every anomalous reading")
	}
	r.DebounceZ = dz
	z, err := strconv.ParseFloat(l.str("PLM_ALARM_OPEN_AT_Z"), 64)
	if err != nil || math.IsNaN(z) || math.IsInf(z, 0) || z < 0 {
		l.fail("PLM_ALARM_OPEN_AT_Z", "must be a positive number, or 0 for never")
	}
	r.OpenAtZ = z
	r.ClearBelow = l.float("PLM_ALARM_CLEAR_BELOW")
	r.ClearAfter = l.integer("PLM_ALARM_CLEAR_AFTER", 1, 1_000_000)
	if v := l.str("PLM_ALARM_CLEAR_AFTER_TIME"); !strings.EqualFold(v, "off") {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			l.fail("PLM_ALARM_CLEAR_AFTER_TIME", "must be 0 (off) or a positive duration such as 15m or 1h")
		}
		r.ClearAfterTime = d
	}
	n, window, ok := strings.Cut(l.str("PLM_ALARM_FLAPPING"), "/")
	count, err := strconv.Atoi(strings.TrimSpace(n))
	d, derr := time.ParseDuration(strings.TrimSpace(window))
	if !ok || err != nil || derr != nil || count < 2 || d <= 0 {
		l.fail("PLM_ALARM_FLAPPING", "must be N/window with N a whole number of at least 2 and window a positive duration, e.g. 5/30m")
	}
	r.FlapCount, r.FlapWindow = count, d
	return r
}

// cutInts reads "A/B", two whole numbers.
func cutInts(s string) (a, b int, ok bool) {
	as, bs, ok := strings.Cut(s, "/")
	a, errA := strconv.Atoi(strings.TrimSpace(as))
	b, errB := strconv.Atoi(strings.TrimSpace(bs))
	return a, b, ok && errA == nil && errB == nil
}
