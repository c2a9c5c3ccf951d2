// Package application gathers the use cases behind the service's ports.
package application

import (
	"go.uber.org/fx"

	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/application/query"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/ports"
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
		newEquipmentStatusHandler,
		query.NewSensorHistoryHandler,
		query.NewAlertHistoryHandler,
		query.NewProductionMetricsHandler,
		newApplication,
	),
)

type statusParams struct {
	fx.In
	Equipment ports.EquipmentRepository
	Readings  ports.ReadingRepository
	Anomalies ports.AnomalyRepository
	Live      ports.LiveStore `optional:"true"`
	Clock     ports.Clock
	Rules     equipment.Rules
}

func newEquipmentStatusHandler(p statusParams) *query.EquipmentStatusHandler {
	return query.NewEquipmentStatusHandler(p.Equipment, p.Readings, p.Anomalies, p.Live, p.Clock, p.Rules)
}
