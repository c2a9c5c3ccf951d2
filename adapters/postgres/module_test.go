package postgres_test

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/production-line-monitor/plm/adapters/postgres"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/ports"
)

type provided struct {
	fx.In
	DB            *postgres.DB
	Readings      ports.ReadingRepository
	Anomalies     ports.AnomalyRepository
	Equipment     ports.EquipmentRepository
	Maintenance   ports.MaintenanceRepository
	Writer        ports.BatchWriter
	Subscriptions ports.SubscriptionRepository
	Deliveries    ports.DeliveryQueue
	Ledger        ports.StatusLedger
	Fencer        ports.PartitionFencer
	Rollups       ports.RollupFolder
	Pingers       []ports.Pinger `group:"pingers"`
}

func TestIntegrationModuleProvidesThePortsAndClosesOnStop(t *testing.T) {
	sharedDB(t) // empties the tables
	var got provided
	app := fxtest.New(t,
		postgres.Module,
		fx.Supply(postgres.Config{URL: sharedURL(t)}, slog.New(slog.DiscardHandler)),
		fx.Invoke(func(p provided) { got = p }),
	)
	app.RequireStart()

	require.Len(t, got.Pingers, 1)
	assert.Equal(t, "storage", got.Pingers[0].Name())
	require.NoError(t, got.Pingers[0].Ping(t.Context()))
	_, err := got.Equipment.UpsertMetadata(t.Context(), "press-01", equipment.Metadata{Name: "Press"}, t0)
	require.NoError(t, err)
	e, err := got.Equipment.Get(t.Context(), "press-01")
	require.NoError(t, err)
	assert.Equal(t, "Press", e.Name)
	assert.IsType(t, &postgres.ReadingRepository{}, got.Readings)
	assert.IsType(t, &postgres.AnomalyRepository{}, got.Anomalies)
	assert.IsType(t, &postgres.BatchWriter{}, got.Writer)
	assert.IsType(t, &postgres.PartitionFencer{}, got.Fencer)
	assert.IsType(t, &postgres.RollupFolder{}, got.Rollups)
	assert.IsType(t, &postgres.SubscriptionRepository{}, got.Subscriptions)
	assert.IsType(t, &postgres.DeliveryQueue{}, got.Deliveries)
	assert.IsType(t, &postgres.StatusLedger{}, got.Ledger)

	app.RequireStop()
	assert.ErrorIs(t, got.DB.Ping(t.Context()), ports.ErrUnavailable, "closed on stop")
}

func TestModuleFailsToStartWhenNoServerAnswers(t *testing.T) {
	app := fx.New(postgres.Module,
		fx.Supply(postgres.Config{URL: "postgres://postgres@127.0.0.1:1/plm?sslmode=disable"}, slog.New(slog.DiscardHandler)),
		fx.Invoke(func(*postgres.DB) {}), fx.NopLogger)
	assert.ErrorIs(t, app.Err(), ports.ErrUnavailable)
}

func TestModuleIsValid(t *testing.T) {
	require.NoError(t, fx.ValidateApp(postgres.Module,
		fx.Supply(postgres.Config{URL: "postgres://unused/plm"}, slog.New(slog.DiscardHandler)),
		fx.Invoke(func(provided) {})))
}
