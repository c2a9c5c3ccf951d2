package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/production-line-monitor/plm/adapters/sqlite"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/ports"
)

type provided struct {
	fx.In
	DB            *sqlite.DB
	Readings      ports.ReadingRepository
	Anomalies     ports.AnomalyRepository
	Equipment     ports.EquipmentRepository
	Maintenance   ports.MaintenanceRepository
	Writer        ports.BatchWriter
	Subscriptions ports.SubscriptionRepository
	Deliveries    ports.DeliveryQueue
	Ledger        ports.StatusLedger
	Pingers       []ports.Pinger `group:"pingers"`
}

func TestModuleProvidesThePortsAndClosesOnStop(t *testing.T) {
	var got provided
	app := fxtest.New(t,
		sqlite.Module,
		fx.Supply(sqlite.Config{Path: filepath.Join(t.TempDir(), "plm.db")}),
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
	assert.NotNil(t, got.Readings)
	assert.NotNil(t, got.Anomalies)
	assert.NotNil(t, got.Writer)
	assert.IsType(t, &sqlite.SubscriptionRepository{}, got.Subscriptions)
	assert.IsType(t, &sqlite.DeliveryQueue{}, got.Deliveries)
	assert.IsType(t, &sqlite.StatusLedger{}, got.Ledger)

	app.RequireStop()
	assert.ErrorIs(t, got.DB.Ping(t.Context()), ports.ErrUnavailable, "closed on stop")
}

func TestModuleFailsToStartOnABadPath(t *testing.T) {
	app := fx.New(sqlite.Module, fx.Supply(sqlite.Config{}), fx.Invoke(func(*sqlite.DB) {}), fx.NopLogger)
	assert.ErrorIs(t, app.Err(), sqlite.ErrBadPath)
}

func TestModuleIsValid(t *testing.T) {
	require.NoError(t, fx.ValidateApp(sqlite.Module, fx.Supply(sqlite.Config{Path: "unused.db"}),
		fx.Invoke(func(provided) {})))
}
