package sqlite

import (
	"context"

	"go.uber.org/fx"

	"github.com/production-line-monitor/plm/ports"
)

// Module provides, from a Config that the caller supplies, the *DB (closed when the
// application stops), the storage ports over it, and the DB as a ports.Pinger in the
// "pingers" group.
var Module = fx.Module("sqlite",
	fx.Provide(
		newLifecycleDB,
		fx.Annotate(NewReadingRepository, fx.As(new(ports.ReadingRepository))),
		fx.Annotate(NewAnomalyRepository, fx.As(new(ports.AnomalyRepository))),
		fx.Annotate(NewAlarmRepository, fx.As(new(ports.AlarmRepository))),
		fx.Annotate(NewEquipmentRepository, fx.As(new(ports.EquipmentRepository))),
		fx.Annotate(NewMaintenanceRepository, fx.As(new(ports.MaintenanceRepository))),
		fx.Annotate(NewBatchWriter, fx.As(new(ports.BatchWriter))),
		fx.Annotate(NewSubscriptionRepository, fx.As(new(ports.SubscriptionRepository))),
		fx.Annotate(NewDeliveryQueue, fx.As(new(ports.DeliveryQueue))),
		fx.Annotate(NewStatusLedger, fx.As(new(ports.StatusLedger))),
		fx.Annotate(pinger, fx.ResultTags(`group:"pingers"`)),
	),
)

// newLifecycleDB opens the database while the application is built, so that a bad path or a
// failed migration stops it there, and closes it when the application stops.
func newLifecycleDB(lc fx.Lifecycle, cfg Config) (*DB, error) {
	db, err := Open(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{OnStop: func(context.Context) error { return db.Close() }})
	return db, nil
}

func pinger(db *DB) ports.Pinger { return db }
