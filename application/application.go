// Package application gathers the use cases behind the service's ports.
package application

import (
	"go.uber.org/fx"

	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/application/query"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/ports"
)

// Commands are the use cases that change state.
type Commands struct {
	IngestReadings   *command.IngestReadingsHandler
	ProcessReadings  *command.ProcessReadingsHandler
	UpsertEquipment  *command.UpsertEquipmentHandler
	AcknowledgeAlarm *command.AcknowledgeAlarmHandler
	SetMaintenance   *command.SetMaintenanceHandler
	EndMaintenance   *command.EndMaintenanceHandler

	CreateSubscription *command.CreateSubscriptionHandler
	DeleteSubscription *command.DeleteSubscriptionHandler
	Redeliver          *command.RedeliverHandler
}

// Queries are the use cases that read state.
type Queries struct {
	Equipment         *query.EquipmentHandler
	EquipmentStatus   *query.EquipmentStatusHandler
	SensorHistory     *query.SensorHistoryHandler
	AlertHistory      *query.AlertHistoryHandler
	ProductionMetrics *query.ProductionMetricsHandler
	Alarms            *query.AlarmsHandler
	Subscriptions     *query.SubscriptionsHandler
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
	AcknowledgeAlarm  *command.AcknowledgeAlarmHandler
	Alarms            *query.AlarmsHandler
	SetMaintenance    *command.SetMaintenanceHandler
	EndMaintenance    *command.EndMaintenanceHandler

	CreateSubscription *command.CreateSubscriptionHandler
	DeleteSubscription *command.DeleteSubscriptionHandler
	Redeliver          *command.RedeliverHandler
	Subscriptions      *query.SubscriptionsHandler
}

func newApplication(p params) Application {
	return Application{
		Commands: Commands{IngestReadings: p.IngestReadings, ProcessReadings: p.ProcessReadings, UpsertEquipment: p.UpsertEquipment,
			AcknowledgeAlarm: p.AcknowledgeAlarm, SetMaintenance: p.SetMaintenance, EndMaintenance: p.EndMaintenance,
			CreateSubscription: p.CreateSubscription, DeleteSubscription: p.DeleteSubscription, Redeliver: p.Redeliver},
		Queries: Queries{Equipment: p.Equipment, EquipmentStatus: p.EquipmentStatus, SensorHistory: p.SensorHistory,
			AlertHistory: p.AlertHistory, ProductionMetrics: p.ProductionMetrics, Alarms: p.Alarms, Subscriptions: p.Subscriptions},
	}
}

// Module provides every handler and the Application. It needs the ports implemented, an
// anomaly.Config, an equipment.Rules and the sensor types' rules.Set.
var Module = fx.Module("application",
	fx.Provide(
		newIngestReadingsHandler,
		newProcessReadingsHandler,
		command.NewUpsertEquipmentHandler,
		newEquipmentHandler,
		newEquipmentStatusHandler,
		query.NewSensorHistoryHandler,
		query.NewAlertHistoryHandler,
		newProductionMetricsHandler,
		newAcknowledgeAlarmHandler,
		newAnnounceStatusHandler,
		query.NewAlarmsHandler,
		command.NewSetMaintenanceHandler,
		command.NewEndMaintenanceHandler,
		command.NewCreateSubscriptionHandler,
		command.NewDeleteSubscriptionHandler,
		command.NewRedeliverHandler,
		query.NewSubscriptionsHandler,
		newApplication,
	),
)

func newIngestReadingsHandler(p ports.ReadingsPublisher, c ports.Clock, ids ports.IDGenerator, sensors rules.Set) *command.IngestReadingsHandler {
	return command.NewIngestReadingsHandler(p, c, ids).WithTypes(sensors.Knows)
}

func newEquipmentHandler(repo ports.EquipmentRepository, a ports.AlarmRepository, m ports.MaintenanceRepository,
	c ports.Clock, rules equipment.Rules) *query.EquipmentHandler {
	return query.NewEquipmentHandler(repo, c, rules).WithAlarms(a).WithMaintenance(m)
}

type statusParams struct {
	fx.In
	Equipment   ports.EquipmentRepository
	Readings    ports.ReadingRepository
	Anomalies   ports.AnomalyRepository
	Alarms      ports.AlarmRepository
	Maintenance ports.MaintenanceRepository
	Live        ports.LiveStore `optional:"true"`
	Clock       ports.Clock
	Rules       equipment.Rules
}

func newEquipmentStatusHandler(p statusParams) *query.EquipmentStatusHandler {
	return query.NewEquipmentStatusHandler(p.Equipment, p.Readings, p.Anomalies, p.Live, p.Clock, p.Rules).
		WithAlarms(p.Alarms).WithMaintenance(p.Maintenance)
}

type processParams struct {
	fx.In
	Readings    ports.ReadingRepository
	Equipment   ports.EquipmentRepository
	Writer      ports.BatchWriter
	Alarms      ports.AlarmRepository
	Maintenance ports.MaintenanceRepository
	Clock       ports.Clock
	IDs         ports.IDGenerator
	Detector    anomaly.Config
	Rules       equipment.Rules
	Sensors     rules.Set
	Events      ports.EventLog `optional:"true"`
}

func newProcessReadingsHandler(p processParams) *command.ProcessReadingsHandler {
	return command.NewProcessReadingsHandler(p.Readings, p.Equipment, p.Writer, p.Clock, p.IDs, p.Detector, p.Rules).
		WithAlarms(p.Alarms, p.Sensors).WithMaintenance(p.Maintenance, command.DefaultMaintenanceTTL).WithEvents(p.Events)
}

type eventParams struct {
	fx.In
	Alarms ports.AlarmRepository
	Clock  ports.Clock
	IDs    ports.IDGenerator
	Events ports.EventLog `optional:"true"`
}

func newAcknowledgeAlarmHandler(p eventParams) *command.AcknowledgeAlarmHandler {
	return command.NewAcknowledgeAlarmHandler(p.Alarms, p.Clock).WithEvents(p.IDs, p.Events)
}

type announceParams struct {
	fx.In
	Equipment *query.EquipmentHandler
	Ledger    ports.StatusLedger
	Events    ports.EventLog `optional:"true"`
	IDs       ports.IDGenerator
	Clock     ports.Clock
	Rules     equipment.Rules
}

func newAnnounceStatusHandler(p announceParams) *command.AnnounceStatusHandler {
	return command.NewAnnounceStatusHandler(p.Equipment, p.Ledger, p.Events, p.IDs, p.Clock, p.Rules)
}

func newProductionMetricsHandler(r ports.ReadingRepository, an ports.AnomalyRepository, eq ports.EquipmentRepository,
	al ports.AlarmRepository, c ports.Clock, rules equipment.Rules) *query.ProductionMetricsHandler {
	return query.NewProductionMetricsHandler(r, an, eq, c, rules).WithAlarms(al)
}
