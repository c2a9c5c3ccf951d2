// Command plm is Production Line Monitor: it takes sensor readings from a production line,
// flags anomalies and answers questions about the line's equipment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"go.uber.org/dig"
	"go.uber.org/fx"

	"github.com/production-line-monitor/plm/bootstrap"
)

const usage = `Production Line Monitor

Usage:
  plm [run]    start the service (webhook, detection and the query API)
  plm serve    start the HTTP API and webhook only (needs PLM_REDIS_URL)
  plm worker   start the queue's workers only: detection, storage, rollups (needs
               PLM_REDIS_URL); it serves /healthz, /readyz and /metrics on PLM_ADDR
  plm migrate up|down|status
               apply, roll back (one step) or list the PostgreSQL schema migrations
  plm simulate [run|backfill|saturate] [flags]
               a simulated production line: drive a service over HTTP and check what it
               stored, seed history directly, or find the highest sustainable rate
               ('plm simulate help', 'plm simulate run -h')
  plm deadletters list [-n N] [-json] | replay -all|ID...
               list the queue's dead letters (messages that failed every retry), or put
               them back on their partitions once the cause is fixed (needs PLM_REDIS_URL;
               'plm deadletters help')
  plm backtest --input readings.csv [--sensor-type T] [--rules rules.yaml] [--output out.csv]
               replay recorded readings of one sensor through the detection and alarm
               rules, and write each reading's verdict and alarm state ('plm backtest -h')
  plm config   list the configuration variables with their defaults
  plm healthcheck
               exit 0 if the service at PLM_ADDR answers /healthz (for container health checks)
  plm help     show this text

Configuration comes from PLM_* environment variables; see 'plm config'.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "run", "serve", "worker":
		if err := serve(bootstrap.Role(cmd), stderr); err != nil {
			fmt.Fprintln(stderr, "plm:", err)
			return 1
		}
		return 0
	case "migrate":
		if err := migrate(args[1:], stdout); err != nil {
			fmt.Fprintln(stderr, "plm:", err)
			return 1
		}
		return 0
	case "simulate":
		return simulate(args[1:], stdout, stderr)
	case "deadletters":
		return deadLetters(args[1:], stdout, stderr)
	case "backtest":
		return runBacktest(args[1:], stdout, stderr)
	case "config":
		w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		for _, v := range bootstrap.Variables {
			fmt.Fprintf(w, "%s\t%s\t%s\n", v.Name, v.Default, v.Help)
		}
		_ = w.Flush()
		return 0
	case "healthcheck":
		if err := healthcheck(os.Getenv("PLM_ADDR")); err != nil {
			fmt.Fprintln(stderr, "plm: unhealthy:", err)
			return 1
		}
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "plm: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// healthcheck asks the local service's /healthz.
func healthcheck(addr string) error {
	if addr == "" {
		addr = ":8080"
	}
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/healthz answered %s", resp.Status)
	}
	return nil
}

func migrate(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return bootstrap.ErrMigrateUsage
	}
	cfg, err := bootstrap.LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return bootstrap.Migrate(ctx, cfg, args[0], stdout)
}

func serve(role bootstrap.Role, stderr io.Writer) error {
	cfg, err := bootstrap.LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	cfg, err = bootstrap.EnsureAPIKeys(cfg, stderr)
	if err != nil {
		return err
	}
	log := bootstrap.NewLogger(cfg, stderr)
	if role == bootstrap.RoleWorker {
		bootstrap.SetWorkerMemoryLimit(cfg, os.Getenv, log)
	}
	app := fx.New(bootstrap.Service(cfg, log, role))
	if err := app.Err(); err != nil {
		// fx wraps a constructor's error in the whole chain of dependencies: say what failed.
		return dig.RootCause(err)
	}
	startCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	sig := <-app.Wait()
	log.Info("shutting down", "signal", sig.Signal.String())
	stopCtx, cancelStop := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancelStop()
	if err := app.Stop(stopCtx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("stop: %w", err)
	}
	log.Info("stopped")
	return nil
}

var errUsage = errors.New("usage")

// exitCode is the exit status of a subcommand that ended with err: 0 for none (or help), 2
// for a usage error (already explained), else 1 after printing err.
func exitCode(command string, err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintln(stderr, command+":", err)
	return 1
}
