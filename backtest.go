package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/production-line-monitor/plm/adapters/backtest"
	"github.com/production-line-monitor/plm/bootstrap"
	"github.com/production-line-monitor/plm/domain/sensor"
)

const backtestUsage = `Usage:
  plm backtest --input readings.csv [--sensor-type temperature] [--rules rules.yaml] [--output out.csv]

Replays recorded readings of one sensor through the service's detection and alarm rules, one
reading at a time in file order, and writes each reading's verdict and alarm state as CSV:
timestamp,value,z_score,anomalous,severity,alarm_opened,alarm_state. The input needs a header
row with timestamp and value columns (other columns are ignored); timestamps are RFC 3339 with
an offset, YYYY-MM-DD HH:MM:SS[.fff] in UTC, or epoch seconds. The rules are those of
--rules, else of PLM_RULES_FILE, else of the PLM_* variables. A summary follows on stderr
(on stdout when --output names a file).

Flags:
`

// runBacktest runs 'plm backtest'.
func runBacktest(args []string, stdout, stderr io.Writer) int {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	return exitCode("plm backtest", backtestCommand(ctx, args, stdout, stderr), stderr)
}

func backtestCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("plm backtest", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), backtestUsage)
		flags.PrintDefaults()
	}
	input := flags.String("input", "", "CSV `file` of readings (- for stdin)")
	typeName := flags.String("sensor-type", string(sensor.Temperature), "sensor `type` whose rules apply: temperature, vibration, pressure or voltage")
	rulesFile := flags.String("rules", "", "rules `file` (YAML or JSON); default PLM_RULES_FILE, or none")
	output := flags.String("output", "-", "CSV `file` to write (- for stdout)")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if *input == "" {
		fmt.Fprintln(stderr, "plm backtest: --input is required")
		flags.Usage()
		return errUsage
	}
	typ, err := sensor.ParseType(*typeName)
	if err != nil {
		fmt.Fprintf(stderr, "plm backtest: --sensor-type: %v\n", err)
		return errUsage
	}
	cfg, err := bootstrap.LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	if *rulesFile != "" {
		cfg.RulesFile = *rulesFile
	}
	set, err := bootstrap.LoadRules(cfg)
	if err != nil {
		return err
	}

	in, name := io.Reader(os.Stdin), "stdin"
	if *input != "-" {
		f, err := os.Open(*input)
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, *input
	}
	out, report := io.Writer(stdout), stderr
	var commit func() error
	if *output != "-" {
		// Written beside the destination and renamed at the end: a failed run leaves no
		// half-written file behind.
		f, err := os.CreateTemp(filepath.Dir(*output), "."+filepath.Base(*output)+".*")
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			return fmt.Errorf("create %s: %w", *output, pe.Err) // not the temporary name
		}
		if err != nil {
			return err
		}
		defer func() {
			_ = f.Close()
			_ = os.Remove(f.Name()) // gone already after a rename
		}()
		out, report = f, stdout
		commit = func() error {
			if err := f.Chmod(0o644); err != nil { // CreateTemp's 0600 is for secrets
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			return os.Rename(f.Name(), *output)
		}
	}

	sum, err := backtest.Run(ctx, in, out, typ, set)
	if ie := (*backtest.InputError)(nil); errors.As(err, &ie) || errors.Is(err, backtest.ErrEmpty) {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err != nil {
		return err
	}
	if commit != nil {
		if err := commit(); err != nil {
			return err
		}
	}
	if sum.OutOfOrder > 0 {
		fmt.Fprintf(stderr, "plm backtest: warning: %s: line %d is timestamped before the line above it (%s out of time order in all); "+
			"readings are judged in file order, as the service judges them in arrival order\n",
			name, sum.FirstOutOfOrderLine, backtest.Readings(sum.OutOfOrder))
	}
	return sum.Report(report)
}
