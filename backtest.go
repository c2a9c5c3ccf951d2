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
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/domain/sensor"
)

const backtestUsage = `Usage:
  plm backtest --input readings.csv [--sensor-type temperature] [--rules rules.yaml] [--output out.csv]
  plm backtest --input machine.csv --column 'header=type [sensor-id]'... | --columns map.txt [--rules rules.yaml] [--output out.csv]
  plm backtest score --columns map.txt [--rules rules.yaml] file-or-folder...

Replays recorded readings of one sensor through the service's detection and alarm rules, one
reading at a time in file order, and writes each reading's verdict and alarm state as CSV:
timestamp,value,z_score,anomalous,severity,alarm_opened,alarm_state. The input needs a header
row with timestamp and value columns (other columns are ignored); timestamps are RFC 3339 with
an offset, YYYY-MM-DD HH:MM:SS[.fff] in UTC, or epoch seconds. The rules are those of
--rules, else of PLM_RULES_FILE, else of the PLM_* variables. A summary follows on stderr
(on stdout when --output names a file).

With --column or --columns the input holds one machine: a time column (timestamp or datetime),
one column a sensor, fields separated by ',' or ';' (SKAB's layout). Each mapping names a
header, the sensor type whose rules judge it (the contract's four or a type the rules file
declares) and optionally the sensor's id (else the header, made an id). The output has a row
a reading: timestamp,sensor_id,sensor_type,value,z_score,anomalous,severity,alarm_opened,alarm_state.

'plm backtest score' replays each file as a machine and scores the machine's alarm openings
against the files' anomaly and changepoint labels: NAB's rules (a 60 s window to the right of
each changepoint, the first 15% of a file probationary, the standard, low-FP and low-FN
profiles, 0 for never alarming and 100 for perfect), the rows in alarm against the anomaly
labels (F1, false-alarm and missed-alarm rates), and the alarms per machine-hour of files
without labels.

Flags:
`

// runBacktest runs 'plm backtest'.
func runBacktest(args []string, stdout, stderr io.Writer) int {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	return exitCode("plm backtest", backtestCommand(ctx, args, stdout, stderr), stderr)
}

// columnFlags collects repeated --column flags.
type columnFlags []backtest.Column

func (c *columnFlags) String() string { return "" }

func (c *columnFlags) Set(s string) error {
	col, err := backtest.ParseColumn(s)
	if err != nil {
		return err
	}
	*c = append(*c, col)
	return nil
}

// addFile adds the mappings of a file (none for an empty path).
func (c *columnFlags) addFile(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	cols, err := backtest.ReadColumns(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	*c = append(*c, cols...)
	return nil
}

// loadBacktestRules loads the rules of file, else of PLM_RULES_FILE, else of the variables.
func loadBacktestRules(file string) (rules.Set, error) {
	cfg, err := bootstrap.LoadConfig(os.Getenv)
	if err != nil {
		return rules.Set{}, err
	}
	if file != "" {
		cfg.RulesFile = file
	}
	return bootstrap.LoadRules(cfg)
}

func backtestCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "score" {
		return backtestScore(ctx, args[1:], stdout, stderr)
	}
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
	var columns columnFlags
	flags.Var(&columns, "column", "a column of a multi-sensor `mapping` 'header=type [sensor-id]' (repeat it)")
	columnsFile := flags.String("columns", "", "`file` of column mappings, one a line")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if err := columns.addFile(*columnsFile); err != nil {
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
	set, err := loadBacktestRules(*rulesFile)
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

	// finish names the input in its errors and, once the run went well, keeps the output.
	finish := func(err error) error {
		if ie := (*backtest.InputError)(nil); errors.As(err, &ie) || errors.Is(err, backtest.ErrEmpty) {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err != nil || commit == nil {
			return err
		}
		return commit()
	}
	if len(columns) > 0 {
		sum, err := backtest.RunMachine(ctx, in, out, columns, set)
		if err := finish(err); err != nil {
			return err
		}
		return sum.Report(report)
	}
	sum, err := backtest.Run(ctx, in, out, typ, set)
	if err := finish(err); err != nil {
		return err
	}
	if sum.OutOfOrder > 0 {
		fmt.Fprintf(stderr, "plm backtest: warning: %s: line %d is timestamped before the line above it (%s out of time order in all); "+
			"readings are judged in file order, as the service judges them in arrival order\n",
			name, sum.FirstOutOfOrderLine, backtest.Readings(sum.OutOfOrder))
	}
	return sum.Report(report)
}

// backtestScore runs 'plm backtest score'.
func backtestScore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("plm backtest score", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), backtestUsage)
		flags.PrintDefaults()
	}
	var columns columnFlags
	flags.Var(&columns, "column", "a column `mapping` 'header=type [sensor-id]' (repeat it)")
	columnsFile := flags.String("columns", "", "`file` of column mappings, one a line")
	rulesFile := flags.String("rules", "", "rules `file` (YAML or JSON); default PLM_RULES_FILE, or none")
	perFile := flags.Bool("files", false, "also list each file's figures")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if err := columns.addFile(*columnsFile); err != nil {
		return err
	}
	if len(columns) == 0 || flags.NArg() == 0 {
		fmt.Fprintln(stderr, "plm backtest score: give the columns (--column or --columns) and at least one file or folder")
		flags.Usage()
		return errUsage
	}
	set, err := loadBacktestRules(*rulesFile)
	if err != nil {
		return err
	}
	if err := backtest.CheckColumns(columns, set); err != nil {
		return err
	}
	files, err := backtest.CSVFiles(flags.Args())
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no .csv files in %v", flags.Args())
	}
	var scores backtest.Scores
	for _, f := range files {
		s, err := backtest.ScoreFile(ctx, f, columns, set)
		if err != nil {
			return err
		}
		scores = append(scores, s)
		if *perFile {
			fmt.Fprintf(stdout, "%s: rows %d, openings %d, windows %d, detected %d, false %d, NAB %.1f/%.1f/%.1f, F1 %.2f\n",
				f, s.Rows, s.Openings, s.NAB.Windows, s.NAB.Detected, s.NAB.FalsePositives,
				s.NAB.Score(0), s.NAB.Score(1), s.NAB.Score(2), s.Rows2x2.F1())
		}
	}
	fmt.Fprintf(stdout, "rules version %s, %d files\n\n", set.Version(), len(files))
	return scores.Report(stdout)
}
