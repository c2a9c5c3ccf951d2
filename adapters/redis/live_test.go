package redis_test

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/adapters/redis"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

// reading is a temperature reading of eq at ts, received a millisecond later.
func reading(t testing.TB, eq, id string, ts time.Time) ports.StoredReading {
	t.Helper()
	return typed(t, eq, id, sensor.Temperature, 21.5, ts)
}

// typed is a reading of the given type and value of eq at ts, received a millisecond later.
func typed(t testing.TB, eq, id string, typ sensor.Type, v float64, ts time.Time) ports.StoredReading {
	t.Helper()
	r, err := sensor.NewReading(id, eq, typ, "", v, "unit", ts, ts.Add(time.Millisecond))
	require.NoError(t, err)
	return ports.StoredReading{Reading: r}
}

// liveStores runs test against the Redis store and, as the reference, the memory one: both
// must answer the same.
func liveStores(t *testing.T, test func(t *testing.T, s ports.LiveStore)) {
	t.Run("memory", func(t *testing.T) { test(t, memory.NewLiveStore()) })
	t.Run("redis", func(t *testing.T) { test(t, redis.NewLiveStore(newServer(t).open(t))) })
}

func live(t *testing.T, s ports.LiveStore, id string) ports.LiveEquipment {
	t.Helper()
	l, err := s.Live(t.Context(), id)
	require.NoError(t, err)
	return l
}

func TestIntegrationLiveUnknownIsNotFound(t *testing.T) {
	liveStores(t, func(t *testing.T, s ports.LiveStore) {
		_, err := s.Live(t.Context(), "press-01")
		assert.ErrorIs(t, err, ports.ErrNotFound)
		require.NoError(t, s.Beat(t.Context(), nil))
		require.NoError(t, s.Record(t.Context(), nil))
		_, err = s.Live(t.Context(), "press-01")
		assert.ErrorIs(t, err, ports.ErrNotFound, "empty batches change nothing")
	})
}

func TestIntegrationLiveBeatMovesForwardOnly(t *testing.T) {
	seen := func(at, anomaly time.Time) ports.Sighting {
		return ports.Sighting{EquipmentID: "press-01", LastSeenAt: at, LastAnomalyAt: anomaly}
	}
	tests := []struct {
		name                    string
		batches                 [][]ports.Sighting
		wantSeen, wantAnomalyAt time.Time
	}{
		{"first", [][]ports.Sighting{{seen(t0, time.Time{})}}, t0, time.Time{}},
		{"later_moves_on", [][]ports.Sighting{{seen(t0, t0)}, {seen(t0.Add(time.Second), t0.Add(time.Second))}},
			t0.Add(time.Second), t0.Add(time.Second)},
		{"earlier_is_ignored", [][]ports.Sighting{{seen(t0.Add(time.Second), t0.Add(time.Second))}, {seen(t0, t0)}},
			t0.Add(time.Second), t0.Add(time.Second)},
		{"one_microsecond_later_moves_on", [][]ports.Sighting{{seen(t0, t0)}, {seen(t0.Add(time.Microsecond), time.Time{})}},
			t0.Add(time.Microsecond), t0},
		{"no_anomaly_keeps_the_last", [][]ports.Sighting{{seen(t0, t0)}, {seen(t0.Add(time.Minute), time.Time{})}},
			t0.Add(time.Minute), t0},
		{"repeated", [][]ports.Sighting{{seen(t0, t0)}, {seen(t0, t0)}, {seen(t0, t0)}}, t0, t0},
		{"one_batch_out_of_order", [][]ports.Sighting{{
			seen(t0.Add(2*time.Second), t0), seen(t0, t0.Add(3*time.Second)), seen(t0.Add(time.Second), time.Time{}),
		}}, t0.Add(2 * time.Second), t0.Add(3 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			liveStores(t, func(t *testing.T, s ports.LiveStore) {
				for _, b := range tt.batches {
					require.NoError(t, s.Beat(t.Context(), b))
				}
				l := live(t, s, "press-01")
				assert.Equal(t, tt.wantSeen, l.LastSeenAt)
				assert.Equal(t, tt.wantAnomalyAt, l.LastAnomalyAt)
				assert.Empty(t, l.Latest)
				assert.False(t, l.Complete, "no reading known")
			})
		})
	}
}

func TestIntegrationLiveRecordKeepsTheNewest(t *testing.T) {
	older := reading(t, "press-01", "r-1", t0)
	newer := reading(t, "press-01", "r-2", t0.Add(time.Second))
	sameTime := reading(t, "press-01", "r-3", t0.Add(time.Second))
	tests := []struct {
		name    string
		batches [][]ports.StoredReading
		want    ports.StoredReading
	}{
		{"first", [][]ports.StoredReading{{older}}, older},
		{"newer_replaces", [][]ports.StoredReading{{older}, {newer}}, newer},
		{"older_is_ignored", [][]ports.StoredReading{{newer}, {older}}, newer},
		{"same_timestamp_last_wins", [][]ports.StoredReading{{newer}, {sameTime}}, sameTime},
		{"repeated", [][]ports.StoredReading{{newer}, {newer}, {older}, {newer}}, newer},
		{"one_batch_newest_first", [][]ports.StoredReading{{newer, older}}, newer},
		{"one_batch_same_timestamp_last_wins", [][]ports.StoredReading{{older, sameTime, newer}}, newer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			liveStores(t, func(t *testing.T, s ports.LiveStore) {
				for _, b := range tt.batches {
					require.NoError(t, s.Record(t.Context(), b))
				}
				l := live(t, s, "press-01")
				assert.Equal(t, []ports.StoredReading{tt.want}, l.Latest)
				assert.True(t, l.LastSeenAt.IsZero(), "Record sets no time")
				assert.False(t, l.Complete, "three sensor types unknown")
			})
		})
	}
}

func TestIntegrationLiveKeepsEachSensorAndEquipment(t *testing.T) {
	liveStores(t, func(t *testing.T, s ports.LiveStore) {
		var batch []ports.StoredReading
		for i, eq := range []string{"press-01", "press-02", "lathe-7"} {
			for j, typ := range sensor.Types {
				at := t0.Add(time.Duration(i*10+j) * time.Second)
				batch = append(batch, typed(t, eq, fmt.Sprintf("r-%d-%d", i, j), typ, float64(i*10+j), at))
			}
		}
		require.NoError(t, s.Record(t.Context(), batch))
		require.NoError(t, s.Beat(t.Context(), []ports.Sighting{
			{EquipmentID: "press-01", LastSeenAt: t0}, {EquipmentID: "lathe-7", LastSeenAt: t0, LastAnomalyAt: t0},
		}))
		for i, eq := range []string{"press-01", "press-02", "lathe-7"} {
			l := live(t, s, eq)
			assert.Equal(t, batch[i*4:i*4+4], l.Latest, "%s: in the order of sensor.Types", eq)
			assert.False(t, l.Complete, "%s: a sensor named by id may not have sent since", eq)
		}
		assert.Equal(t, t0, live(t, s, "press-01").LastSeenAt)
		assert.True(t, live(t, s, "press-02").LastSeenAt.IsZero())
		assert.Equal(t, t0, live(t, s, "lathe-7").LastAnomalyAt)
	})
}

func TestIntegrationLiveKeepsEverySensorOfAType(t *testing.T) {
	liveStores(t, func(t *testing.T, s ports.LiveStore) {
		named := func(id, sensorID string, typ sensor.Type, v float64, at time.Time) ports.StoredReading {
			r := typed(t, "pump-01", id, typ, v, at)
			r.SensorID = sensorID
			return r
		}
		de := named("r-1", "bearing-de", sensor.Vibration, 1, t0)
		nde := named("r-2", "bearing-nde", sensor.Vibration, 2, t0)
		plain := named("r-3", "", sensor.Vibration, 3, t0)
		flow := named("r-4", "flow-1", "flow", 4, t0)
		newerDE := named("r-5", "bearing-de", sensor.Vibration, 5, t0.Add(time.Second))
		require.NoError(t, s.Record(t.Context(), []ports.StoredReading{flow, de, nde}))
		require.NoError(t, s.Warm(t.Context(), "pump-01", []ports.StoredReading{plain}))
		require.NoError(t, s.Record(t.Context(), []ports.StoredReading{newerDE}))
		l := live(t, s, "pump-01")
		assert.Equal(t, []ports.StoredReading{plain, newerDE, nde, flow}, l.Latest)
		assert.True(t, l.Complete)
	})
}

func TestIntegrationLiveWarm(t *testing.T) {
	temp := typed(t, "press-01", "r-1", sensor.Temperature, 20, t0)
	newerTemp := typed(t, "press-01", "r-2", sensor.Temperature, 21, t0.Add(time.Second))
	volt := typed(t, "press-01", "r-3", sensor.Voltage, 230, t0)
	tests := []struct {
		name   string
		before []ports.StoredReading // recorded before warming
		warm   []ports.StoredReading
		after  []ports.StoredReading // recorded after warming
		want   []ports.StoredReading
	}{
		{"nothing_known", nil, nil, nil, nil},
		{"from_the_database", nil, []ports.StoredReading{temp}, nil, []ports.StoredReading{temp}},
		{"older_than_kept", []ports.StoredReading{newerTemp}, []ports.StoredReading{temp}, nil,
			[]ports.StoredReading{newerTemp}},
		{"newer_than_kept", []ports.StoredReading{temp}, []ports.StoredReading{newerTemp}, nil,
			[]ports.StoredReading{newerTemp}},
		{"kept_type_absent_from_the_database", []ports.StoredReading{volt}, []ports.StoredReading{temp}, nil,
			[]ports.StoredReading{temp, volt}},
		{"recorded_afterwards", nil, []ports.StoredReading{temp}, []ports.StoredReading{volt, newerTemp},
			[]ports.StoredReading{newerTemp, volt}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			liveStores(t, func(t *testing.T, s ports.LiveStore) {
				require.NoError(t, s.Beat(t.Context(), []ports.Sighting{{EquipmentID: "press-01", LastSeenAt: t0}}))
				require.NoError(t, s.Record(t.Context(), tt.before))
				assert.False(t, live(t, s, "press-01").Complete, "not warmed yet")
				require.NoError(t, s.Warm(t.Context(), "press-01", tt.warm))
				require.NoError(t, s.Record(t.Context(), tt.after))
				l := live(t, s, "press-01")
				assert.Equal(t, tt.want, l.Latest)
				assert.True(t, l.Complete)
				assert.Equal(t, t0, l.LastSeenAt)
			})
		})
	}
	t.Run("unknown_equipment", func(t *testing.T) {
		liveStores(t, func(t *testing.T, s ports.LiveStore) {
			require.NoError(t, s.Warm(t.Context(), "press-09", nil))
			l := live(t, s, "press-09")
			assert.Equal(t, ports.LiveEquipment{Complete: true}, l, "known to have no reading")
		})
	})
}

func TestIntegrationLiveRoundTripsEveryField(t *testing.T) {
	s := redis.NewLiveStore(newServer(t).open(t))
	paris := time.FixedZone("CET", 3600)
	ts := time.Date(2026, 11, 27, 9, 0, 0, 123456789, paris) // nanoseconds are dropped
	r, err := sensor.NewReading("r-ü/1 \"x\"", "press-01.a:b_c", sensor.Pressure, "", -1.2345678901234567e-7, "°C/m²", ts,
		ts.Add(1500*time.Microsecond+999))
	require.NoError(t, err)
	stored := ports.StoredReading{Reading: r, Anomalous: true}
	require.NoError(t, s.Record(t.Context(), []ports.StoredReading{stored}))
	seen := time.Date(2026, 11, 27, 9, 0, 1, 999999999, paris)
	require.NoError(t, s.Beat(t.Context(), []ports.Sighting{{EquipmentID: "press-01.a:b_c", LastSeenAt: seen, LastAnomalyAt: seen}}))

	l, err := s.Live(t.Context(), "press-01.a:b_c")
	require.NoError(t, err)
	want := stored
	want.Timestamp = time.Date(2026, 11, 27, 8, 0, 0, 123456000, time.UTC)
	want.ReceivedAt = time.Date(2026, 11, 27, 8, 0, 0, 124957000, time.UTC)
	assert.Equal(t, []ports.StoredReading{want}, l.Latest)
	assert.Equal(t, time.Date(2026, 11, 27, 8, 0, 1, 999999000, time.UTC), l.LastSeenAt)
	assert.Equal(t, time.Date(2026, 11, 27, 8, 0, 1, 999999000, time.UTC), l.LastAnomalyAt)
	assert.Equal(t, time.UTC, l.LastSeenAt.Location())
	assert.Equal(t, time.UTC, l.Latest[0].Timestamp.Location())
}

func TestIntegrationLiveConcurrentUpdatesKeepTheNewest(t *testing.T) {
	srv := newServer(t)
	stores := []*redis.LiveStore{redis.NewLiveStore(srv.open(t)), redis.NewLiveStore(srv.open(t))} // two processes
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			at := t0.Add(time.Duration(i) * time.Second)
			s := stores[i%2]
			assert.NoError(t, s.Record(t.Context(), []ports.StoredReading{reading(t, "press-01", fmt.Sprintf("r-%d", i), at)}))
			assert.NoError(t, s.Beat(t.Context(), []ports.Sighting{{EquipmentID: "press-01", LastSeenAt: at}}))
		})
	}
	wg.Wait()
	l, err := stores[0].Live(t.Context(), "press-01")
	require.NoError(t, err)
	last := t0.Add((n - 1) * time.Second)
	assert.Equal(t, []ports.StoredReading{reading(t, "press-01", fmt.Sprintf("r-%d", n-1), last)}, l.Latest)
	assert.Equal(t, last, l.LastSeenAt)
}

func TestIntegrationLiveRejectsWhatItCannotStore(t *testing.T) {
	s := redis.NewLiveStore(newServer(t).open(t))
	bad := reading(t, "press-01", "r-1", t0)
	bad.Value = math.NaN() // NewReading would refuse it
	err := s.Record(t.Context(), []ports.StoredReading{bad})
	assert.Error(t, err)
	assert.NotErrorIs(t, err, ports.ErrUnavailable)
	_, err = s.Live(t.Context(), "press-01")
	assert.ErrorIs(t, err, ports.ErrNotFound, "nothing written")
}
