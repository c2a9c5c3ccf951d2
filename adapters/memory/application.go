package memory

import (
	"fmt"

	"github.com/production-line-monitor/plm/application"
	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/application/query"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/ports"
)

// NewApplication wires every use case over the store, with the default rules: the service
// as the tests of its adapters see it. Readings published to pub are processed only as pub
// delivers them.
func NewApplication(s *Store, clock ports.Clock, pub ports.ReadingsPublisher, ids ports.IDGenerator) application.Application {
	set, err := rules.Uniform(rules.Rules{Detector: anomaly.DefaultConfig, Alarm: alarm.DefaultRules})
	if err != nil {
		panic(fmt.Sprintf("the default rules are invalid: %v", err))
	}
	eq := equipment.DefaultRules
	alarms, maintenance, subs := s.Alarms(), s.Maintenance(), s.Subscriptions()
	return application.Application{
		Commands: application.Commands{
			IngestReadings: command.NewIngestReadingsHandler(pub, clock, ids),
			ProcessReadings: command.NewProcessReadingsHandler(s, s, s, clock, ids, anomaly.DefaultConfig, eq).
				WithAlarms(alarms, set).WithMaintenance(maintenance, command.DefaultMaintenanceTTL),
			UpsertEquipment:  command.NewUpsertEquipmentHandler(s, clock),
			AcknowledgeAlarm: command.NewAcknowledgeAlarmHandler(alarms, clock),
			SetMaintenance:   command.NewSetMaintenanceHandler(maintenance, clock),
			EndMaintenance:   command.NewEndMaintenanceHandler(maintenance, s, clock),

			CreateSubscription: command.NewCreateSubscriptionHandler(subs, clock, ids),
			DeleteSubscription: command.NewDeleteSubscriptionHandler(subs),
			Redeliver:          command.NewRedeliverHandler(subs, clock),
		},
		Queries: application.Queries{
			Equipment:         query.NewEquipmentHandler(s, clock, eq).WithAlarms(alarms).WithMaintenance(maintenance),
			EquipmentStatus:   query.NewEquipmentStatusHandler(s, s, s, nil, clock, eq).WithAlarms(alarms).WithMaintenance(maintenance),
			SensorHistory:     query.NewSensorHistoryHandler(s, s),
			AlertHistory:      query.NewAlertHistoryHandler(s),
			ProductionMetrics: query.NewProductionMetricsHandler(s, s, s, clock, eq).WithAlarms(alarms),
			Alarms:            query.NewAlarmsHandler(alarms, s),
			Subscriptions:     query.NewSubscriptionsHandler(subs, clock),
		},
	}
}
