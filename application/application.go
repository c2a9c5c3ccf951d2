// Package application gathers the use cases behind the service's ports.
package application

import (
	"go.uber.org/fx"

	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/application/query"
)

// Commands are the use cases that change state.
type Commands struct {
	IngestReadings  *command.IngestReadingsHandler
	ProcessReadings *command.ProcessReadingsHandler
	UpsertEquipment *command.UpsertEquipmentHandler
}

// Queries are the use cases that read state.
type Queries struct {
	Equipment         *query.EquipmentHandler
	EquipmentStatus   *query.EquipmentStatusHandler
	SensorHistory     *query.SensorHistoryHandler
	AlertHistory      *query.AlertHistoryHandler
	ProductionMetrics *query.ProductionMetricsHandler
}

// Application is every use case, as the adapters see them.
type Application struct {
	Commands Commands
	Queries  Queries
}

type params struct {
	fx.In
	IngestReadings    *command.IngestReadingsHandler
	ProcessReadings   *command.ProcessReadingsHandler
	UpsertEquipment   *command.UpsertEquipmentHandler
	Equipment         *query.EquipmentHandler
	EquipmentStatus   *query.EquipmentStatusHandler
	SensorHistory     *query.SensorHistoryHandler
	AlertHistory      *query.AlertHistoryHandler
	ProductionMetrics *query.ProductionMetricsHandler
}

func newApplication(p params) Application {
	return Application{
		Commands: Commands{IngestReadings: p.IngestReadings, ProcessReadings: p.ProcessReadings, UpsertEquipment: p.UpsertEquipment},
		Queries: Queries{Equipment: p.Equipment, EquipmentStatus: p.EquipmentStatus, SensorHistory: p.SensorHistory,
			AlertHistory: p.AlertHistory, ProductionMetrics: p.ProductionMetrics},
	}
}

// Module provides every handler and the Application. It needs the ports implemented, an
// anomaly.Config and an equipment.Rules.
var Module = fx.Module("application",
	fx.Provide(
		command.NewIngestReadingsHandler,
		command.NewProcessReadingsHandler,
		command.NewUpsertEquipmentHandler,
		query.NewEquipmentHandler,
		query.NewEquipmentStatusHandler,
		query.NewSensorHistoryHandler,
		query.NewAlertHistoryHandler,
		query.NewProductionMetricsHandler,
		newApplication,
	),
)
