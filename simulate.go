package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	httpadapter "github.com/production-line-monitor/plm/adapters/http"
	"github.com/production-line-monitor/plm/adapters/simulator"
	"github.com/production-line-monitor/plm/bootstrap"
)

const simulateUsage = `Usage:
  plm simulate [flags]            drive a running service over HTTP, then check what it stored
  plm simulate backfill [flags]   store days of history directly, through detection, in the
                                  storage that PLM_DATABASE_URL (or PLM_DATA_DIR) names
  plm simulate saturate [flags]   find the highest rate the service takes with p99 < 50 ms
                                  and no errors
  plm simulate chart -out F.svg NAME=TIMELINE.csv ...
                                  draw the readings stored per second of runs (their
                                  -timeline files) as one SVG line chart

The plant: equipment ids <prefix>-0001 …, each with the four sensor types, normal levels with
noise and a slow daily cycle, and the scenarios: spike, drop, drift, silent, burst.
`

// plantFlags are the flags every simulate command shares.
type plantFlags struct {
	seed      uint64
	equipment int
	prefix    string
	scenarios string
}

func (pf *plantFlags) register(fs *flag.FlagSet, scenarios string) {
	fs.Uint64Var(&pf.seed, "seed", 1, "seed of the plant: the same seed plays the same values and faults")
	fs.IntVar(&pf.equipment, "equipment", 0, "pieces of equipment, four sensors each (0: one per 8 readings/s, 4 to 2500)")
	fs.StringVar(&pf.prefix, "prefix", "", "equipment id prefix (default sim<seed>-<time>, new each run)")
	fs.StringVar(&pf.scenarios, "scenarios", scenarios, "comma list of spike, drop, drift, silent, burst; all; none")
}

func (pf *plantFlags) plant(rate float64, start time.Time, silentFrom, silentFor time.Duration) (*simulator.Plant, error) {
	sc, err := simulator.ParseScenarios(pf.scenarios)
	if err != nil {
		return nil, err
	}
	n := pf.equipment
	if n == 0 {
		n = min(max(int(rate/8), 4), 2500)
	}
	prefix := pf.prefix
	if prefix == "" {
		prefix = fmt.Sprintf("sim%d-%s", pf.seed, start.UTC().Format("0102T150405"))
	}
	return simulator.NewPlant(simulator.Config{Seed: pf.seed, Equipment: n, Prefix: prefix, Scenarios: sc,
		Start: start, SilentFrom: silentFrom, SilentFor: silentFor})
}

// loadFlags registers the rate, batch size and concurrency flags.
func loadFlags(fs *flag.FlagSet, rate float64, rateHelp string, concurrency int) (*float64, *int, *int) {
	return fs.Float64("rate", rate, rateHelp),
		fs.Int("batch", 1, "readings per request (1 to 1000)"),
		fs.Int("concurrency", concurrency, "requests in flight at most")
}

// targetFlags say where the service is.
type targetFlags struct {
	url, apiKey string
	metricsURLs multiFlag
	spawn       bool
	keep        bool
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (tf *targetFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&tf.url, "url", "", "the service's base URL (default http://127.0.0.1 at PLM_ADDR's port)")
	fs.StringVar(&tf.apiKey, "api-key", "", "API key (default the first full-access key of PLM_API_KEYS, or PLM_DATA_DIR/api-key)")
	fs.Var(&tf.metricsURLs, "metrics-url", "/metrics of a process that stores readings, for the delay and memory (repeatable; default <url>/metrics)")
	fs.BoolVar(&tf.spawn, "spawn", false, "start the service from this binary for the run (plm serve and plm worker with PLM_REDIS_URL, else plm run), in a new database, and stop it after")
	fs.BoolVar(&tf.keep, "keep", false, "with -spawn: keep the new database")
}

// resolve fills in the URL, key and metrics URLs, starting the service if asked.
func (tf *targetFlags) resolve(ctx context.Context, stderr io.Writer) (stop func(), err error) {
	stop = func() {}
	if tf.spawn {
		d, err := spawnDeployment(ctx, stderr, tf.keep)
		if err != nil {
			return stop, err
		}
		tf.url, tf.apiKey, tf.metricsURLs = d.url, d.apiKey, []string{d.metricsURL}
		return d.stop, nil
	}
	if tf.url == "" {
		addr := os.Getenv("PLM_ADDR")
		if addr == "" {
			addr = ":8080"
		}
		if strings.HasPrefix(addr, ":") {
			addr = "127.0.0.1" + addr
		}
		tf.url = "http://" + addr
	}
	tf.url = strings.TrimRight(tf.url, "/")
	if tf.apiKey == "" {
		tf.apiKey = defaultAPIKey()
	}
	if tf.apiKey == "" {
		return stop, errors.New("no API key with full access (the simulator posts readings and reads them back): pass -api-key, or put a bare or admin: key in PLM_API_KEYS")
	}
	if len(tf.metricsURLs) == 0 {
		tf.metricsURLs = multiFlag{tf.url + "/metrics"}
	}
	return stop, nil
}

// defaultAPIKey is the first configured key with full access (the simulator both posts
// readings and reads them back), or the one the embedded service generated.
func defaultAPIKey() string {
	cfg, err := bootstrap.LoadConfig(os.Getenv)
	if err != nil {
		return ""
	}
	for _, entry := range cfg.APIKeys {
		if k, err := httpadapter.ParseAPIKey(entry); err == nil && k.Scope == httpadapter.ScopeAdmin {
			return k.Key
		}
	}
	key, err := os.ReadFile(filepath.Join(cfg.DataDir, bootstrap.APIKeyFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(key))
}

func simulate(args []string, stdout, stderr io.Writer) int {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	cmd, rest := "run", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, rest = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = simulateRun(ctx, rest, stdout, stderr)
	case "backfill":
		err = simulateBackfill(ctx, rest, stdout, stderr)
	case "saturate":
		err = simulateSaturate(ctx, rest, stdout, stderr)
	case "chart":
		err = simulateChart(rest, stderr)
	case "help":
		fmt.Fprint(stdout, simulateUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "plm simulate: unknown command %q\n\n%s", cmd, simulateUsage)
		return 2
	}
	return exitCode("plm simulate", err, stderr)
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	return nil
}

func simulateRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plm simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf plantFlags
	var tf targetFlags
	pf.register(fs, "all")
	tf.register(fs)
	rate, batch, conc := loadFlags(fs, 100, "readings per second", 32)
	dur := fs.Duration("duration", time.Minute, "how long to send")
	settle := fs.Duration("settle", time.Minute, "how long to wait after the run for every accepted reading to be stored")
	offline := fs.Duration("offline-after", 30*time.Second, "the service's PLM_OFFLINE_AFTER")
	check := fs.Bool("check", true, "check the service's answers after the run")
	timeline := fs.String("timeline", "", "write the readings stored per second, once a second from the start to the end of the check, to this CSV file")
	maxGrowth := fs.Float64("max-rss-growth", 0, "fail when a process's resident memory grows more than this many percent from the end of the warm-up (a fifth of the run, at most a minute) to the end; 0: not checked")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *maxGrowth < 0 {
		return fmt.Errorf("-max-rss-growth %g: must not be negative", *maxGrowth)
	}
	stop, err := tf.resolve(ctx, stderr)
	defer stop()
	if err != nil {
		return err
	}
	start := time.Now()
	p, err := pf.plant(*rate, start, *dur/3, 0)
	if err != nil {
		return err
	}
	lc := simulator.LoadConfig{URL: tf.url, APIKey: tf.apiKey, Rate: *rate, Batch: *batch,
		Concurrency: *conc, Duration: *dur, Progress: stderr}
	if err := lc.Validate(p.Sensors()); err != nil {
		return err
	}
	// The process the load is sent to is watched for its memory too, when it stores nothing.
	var others []string
	if front := tf.url + "/metrics"; !slices.Contains(tf.metricsURLs, front) {
		others = append(others, front)
	}
	w, err := simulator.StartWatch(ctx, tf.metricsURLs, others, tf.apiKey, min(time.Minute, *dur/5))
	if err != nil {
		return fmt.Errorf("read the service's metrics: %w", err)
	}
	fmt.Fprintf(stdout, "plant      %d equipment (%d sensors), prefix %s, seed %d, scenarios %s\n",
		len(p.EquipmentIDs()), p.Sensors(), p.Prefix(), pf.seed, pf.scenarios)
	fmt.Fprintf(stdout, "load       %.0f readings/s, %d per request, %d in flight, for %s, to %s\n",
		*rate, *batch, *conc, *dur, tf.url)
	res, err := simulator.Drive(ctx, p, lc)
	if err != nil {
		return err
	}
	simulator.WriteLoad(stdout, res)
	ok := res.Errors() == 0
	if *check {
		cr, err := simulator.Check(ctx, p, res.Accepted, simulator.CheckConfig{
			URL: tf.url, APIKey: tf.apiKey, From: start.Add(-time.Minute), To: time.Now().Add(time.Minute),
			Settle: *settle, OfflineAfter: *offline, Watch: w})
		if err != nil {
			return fmt.Errorf("check: %w", err)
		}
		watch, err := w.Stop(ctx)
		if err != nil {
			return fmt.Errorf("read the service's metrics: %w", err)
		}
		simulator.WriteCheck(stdout, p.Truth(), cr, watch)
		ok = ok && cr.OK()
		if *dur >= 2*time.Minute {
			first := simulator.StoredRate(watch.Timeline, start, start.Add(time.Minute))
			last := simulator.StoredRate(watch.Timeline, start.Add(*dur-time.Minute), start.Add(*dur))
			change := 0.0
			if first > 0 {
				change = 100 * (last/first - 1)
			}
			fmt.Fprintf(stdout, "rate       stored %.0f readings/s in the first minute of sending, %.0f/s in the last (%+.0f%%), %.0f/s over the whole run\n",
				first, last, change, simulator.StoredRate(watch.Timeline, start, start.Add(*dur)))
		}
		if *timeline != "" {
			if err := writeTimeline(*timeline, start, watch.Timeline); err != nil {
				return err
			}
		}
		for u, r := range watch.RSS {
			if *maxGrowth > 0 && 100*r.Growth() > *maxGrowth {
				fmt.Fprintf(stdout, "memory     %s grew %.0f%%, over -max-rss-growth %g%%\n", u, 100*r.Growth(), *maxGrowth)
				ok = false
			}
		}
	}
	if !ok {
		return simulator.ErrIncomplete
	}
	fmt.Fprintln(stdout, "result     OK")
	return nil
}

func simulateBackfill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plm simulate backfill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf plantFlags
	pf.register(fs, "spike,drop,drift,silent")
	days := fs.Float64("days", 7, "days of history, ending now")
	every := fs.Duration("every", 10*time.Second, "each sensor reads once per this interval")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if pf.equipment == 0 {
		pf.equipment = 10
	}
	if *days <= 0 || *days > 3650 {
		return fmt.Errorf("%w: -days must be above 0 and at most 3650", simulator.ErrConfig)
	}
	cfg, err := bootstrap.LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	to := time.Now().Truncate(time.Second)
	from := to.Add(-time.Duration(*days * float64(24*time.Hour)))
	span := to.Sub(from)
	// Silent equipment is off for two hours in the middle of the history.
	p, err := pf.plant(0, from, span/2, 2*time.Hour)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backfill   %d equipment (%d sensors), prefix %s, from %s to %s, a reading per sensor every %s\n",
		len(p.EquipmentIDs()), p.Sensors(), p.Prefix(),
		from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), *every)
	log := bootstrap.NewLogger(cfg, stderr)
	res, err := bootstrap.Backfill(ctx, cfg, log, p, bootstrap.BackfillConfig{From: from, To: to, Every: *every, Progress: stderr})
	if err != nil {
		return err
	}
	t := p.Truth()
	fmt.Fprintf(stdout, "stored     %d readings, %d anomalies, in %s (%.0f readings/s)\n",
		res.Readings, res.Anomalies, res.Elapsed.Round(time.Millisecond), float64(res.Readings)/res.Elapsed.Seconds())
	fmt.Fprintf(stdout, "planted    %d spikes and drops, %d drifting sensors, %d silent equipment (2 h, mid-span)\n",
		len(t.Events), len(t.Drifts), len(t.Silent))
	return nil
}

func simulateSaturate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plm simulate saturate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf plantFlags
	var tf targetFlags
	pf.register(fs, "none")
	tf.register(fs)
	rate, batch, conc := loadFlags(fs, 1000, "the first rate tried, in readings per second", 64)
	maxRate := fs.Float64("max-rate", 0, "try no rate above this (0: no bound)")
	step := fs.Duration("step", 10*time.Second, "how long each rate is held")
	steps := fs.Int("steps", 8, "rates tried at most")
	p99 := fs.Duration("p99", 50*time.Millisecond, "the latency bound")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if pf.equipment == 0 {
		pf.equipment = 2500
	}
	stop, err := tf.resolve(ctx, stderr)
	defer stop()
	if err != nil {
		return err
	}
	p, err := pf.plant(*rate, time.Now(), 0, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "saturate   %d per request, %d in flight, %s per step, p99 < %s, no errors; %d equipment (%d sensors), to %s\n",
		*batch, *conc, *step, *p99, len(p.EquipmentIDs()), p.Sensors(), tf.url)
	_, best, err := simulator.Saturate(ctx, p, simulator.SaturateConfig{
		Load: simulator.LoadConfig{URL: tf.url, APIKey: tf.apiKey, Rate: *rate, Batch: *batch,
			Concurrency: *conc, Duration: *step},
		MaxP99: *p99, Steps: *steps, Log: stdout, MaxRate: *maxRate})
	if err != nil {
		return err
	}
	if best.Target == 0 {
		fmt.Fprintln(stdout, "result     no rate tried met the bound")
		return simulator.ErrIncomplete
	}
	r := best.Result
	fmt.Fprintf(stdout, "result     %.0f readings/s (%.0f requests/s), p99 %s\n",
		r.Rate(), float64(r.Requests)/r.Elapsed.Seconds(), r.Latency.P99)
	return nil
}

// writeTimeline writes the readings stored over time to the CSV file at path.
func writeTimeline(path string, start time.Time, tl []simulator.Stored) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("-timeline: %w", err)
	}
	if err := simulator.WriteTimeline(f, start, tl); err != nil {
		_ = f.Close()
		return fmt.Errorf("-timeline: %w", err)
	}
	return f.Close()
}

// simulateChart draws the timelines named on the command line (NAME=FILE each) as one chart.
func simulateChart(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("plm simulate chart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "the SVG file to write (required)")
	title := fs.String("title", "Readings stored per second", "the chart's title")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if *out == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "plm simulate chart: want -out FILE and one or more NAME=TIMELINE.csv")
		return errUsage
	}
	c := simulator.Chart{Title: *title, XLabel: "seconds since the load started", YLabel: "readings stored per second"}
	for _, arg := range fs.Args() {
		name, path, ok := strings.Cut(arg, "=")
		if !ok || name == "" || path == "" {
			fmt.Fprintf(stderr, "plm simulate chart: %q is not NAME=TIMELINE.csv\n", arg)
			return errUsage
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		series, err := simulator.ReadTimeline(f, name)
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		c.Series = append(c.Series, series)
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := c.WriteSVG(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
