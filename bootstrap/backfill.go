package bootstrap

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/dig"
	"go.uber.org/fx"

	"github.com/production-line-monitor/plm/adapters/simulator"
	"github.com/production-line-monitor/plm/adapters/system"
	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// BackfillConfig says what history to seed.
type BackfillConfig struct {
	From, To time.Time     // the span of the history
	Every    time.Duration // each sensor reads once per Every
	Progress io.Writer     // a progress line every 5 s, when not nil
}

// BackfillResult says what a backfill stored.
type BackfillResult struct {
	Readings  int // readings stored
	Anomalies int // of them, judged anomalous
	Elapsed   time.Duration
}

// backfillBatch is how many readings go through detection and into storage together.
const backfillBatch = 1000

// Backfill stores the plant's history from bf.From to bf.To directly in the storage cfg
// names, through detection as the workers do: each reading is received at its own
// timestamp, so uptime and the hourly counts read as if the line had been running. Readings
// already stored (the same plant and span twice) are skipped.
func Backfill(ctx context.Context, cfg Config, log *slog.Logger, p *simulator.Plant, bf BackfillConfig) (BackfillResult, error) {
	if !bf.From.Before(bf.To) || bf.Every <= 0 {
		return BackfillResult{}, fmt.Errorf("%w: the history needs a span and a positive interval", simulator.ErrConfig)
	}
	if cfg.Database.Embedded() {
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return BackfillResult{}, fmt.Errorf("create data directory: %w", err)
		}
	}
	var deps struct {
		fx.In
		Readings    ports.ReadingRepository
		Equipment   ports.EquipmentRepository
		Writer      ports.BatchWriter
		Alarms      ports.AlarmRepository
		Maintenance ports.MaintenanceRepository
		Folder      ports.RollupFolder `optional:"true"`
	}
	app := fx.New(
		fx.NopLogger,
		fx.Supply(log),
		fx.Provide(func() prometheus.Registerer { return prometheus.NewRegistry() }),
		storage(cfg),
		fx.Populate(&deps),
	)
	if err := app.Err(); err != nil {
		return BackfillResult{}, dig.RootCause(err)
	}
	if err := app.Start(ctx); err != nil {
		return BackfillResult{}, err
	}
	defer func() { _ = app.Stop(context.Background()) }()

	sensors, err := LoadRules(cfg)
	if err != nil {
		return BackfillResult{}, err
	}
	h := command.NewProcessReadingsHandler(deps.Readings, deps.Equipment, deps.Writer,
		system.Clock{}, system.IDs{}, cfg.Detector, cfg.Rules).WithAlarms(deps.Alarms, sensors).
		WithMaintenance(deps.Maintenance, command.DefaultMaintenanceTTL)
	var res BackfillResult
	began := time.Now()
	lastLine := began
	step := bf.Every / time.Duration(p.Sensors())
	batch := make([]sensor.Reading, 0, backfillBatch)
	flush := func() error {
		out, err := h.Handle(ctx, ports.ReadingsReceived{Readings: batch})
		if err != nil {
			return err
		}
		res.Readings += out.Stored
		res.Anomalies += len(out.Anomalies)
		batch = batch[:0]
		return nil
	}
	for at := bf.From; at.Before(bf.To); at = at.Add(step) {
		r, ok := p.Next(at)
		if !ok {
			continue
		}
		sr, err := sensor.NewReading(r.ID, r.EquipmentID, r.Type, "", r.Value, r.Unit, r.Timestamp, r.Timestamp)
		if err != nil {
			return res, err
		}
		batch = append(batch, sr)
		if len(batch) < backfillBatch {
			continue
		}
		if err := flush(); err != nil {
			return res, err
		}
		if bf.Progress != nil && time.Since(lastLine) >= 5*time.Second {
			lastLine = time.Now()
			fmt.Fprintf(bf.Progress, "%s  %d readings stored  %.0f readings/s\n",
				at.UTC().Format("2006-01-02 15:04"), res.Readings, float64(res.Readings)/time.Since(began).Seconds())
		}
	}
	if len(batch) > 0 {
		if err := flush(); err != nil {
			return res, err
		}
	}
	if deps.Folder != nil {
		if _, err := deps.Folder.FoldRollups(ctx); err != nil {
			return res, fmt.Errorf("fold the hourly counts: %w", err)
		}
	}
	res.Elapsed = time.Since(began)
	return res, nil
}
