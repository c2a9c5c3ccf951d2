package memory_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
	"github.com/production-line-monitor/plm/ports/portstest"
)

func TestEventLogContract(t *testing.T) {
	portstest.EventLog(t, func(_ *testing.T, capacity int) ports.EventLog {
		return memory.NewEventLog(capacity, time.Now)
	})
}

var logStart = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

func statusChange(id string) event.Event {
	return event.ForStatus(id, event.StatusChange{EquipmentID: "press-01", Status: equipment.StatusOffline}, logStart)
}

// cursors appends one event at each clock reading and returns the cursors given.
func cursors(t *testing.T, clock *memory.Clock, l *memory.EventLog, times ...time.Time) []event.Cursor {
	t.Helper()
	var out []event.Cursor
	for i, at := range times {
		clock.Set(at)
		require.NoError(t, l.Append(t.Context(), []event.Event{statusChange(string(rune('a' + i)))}))
		tail, err := l.Tail(t.Context())
		require.NoError(t, err)
		out = append(out, tail)
	}
	return out
}

func TestEventLog_cursors_follow_the_clock_and_always_increase(t *testing.T) {
	ms := uint64(logStart.UnixMilli())
	tests := []struct {
		name  string
		times []time.Time
		want  []event.Cursor
	}{
		{"clock_moves_on", []time.Time{logStart, logStart.Add(time.Millisecond), logStart.Add(time.Second)},
			[]event.Cursor{{Ms: ms}, {Ms: ms + 1}, {Ms: ms + 1000}}},
		{"clock_stalls", []time.Time{logStart, logStart, logStart.Add(time.Microsecond)},
			[]event.Cursor{{Ms: ms}, {Ms: ms, Seq: 1}, {Ms: ms, Seq: 2}}},
		{"clock_goes_back", []time.Time{logStart, logStart.Add(-time.Hour), logStart.Add(-time.Minute), logStart.Add(time.Millisecond)},
			[]event.Cursor{{Ms: ms}, {Ms: ms, Seq: 1}, {Ms: ms, Seq: 2}, {Ms: ms + 1}}},
		{"clock_before_1970", []time.Time{time.Unix(-10, 0), time.Unix(-5, 0)},
			[]event.Cursor{{Ms: 0, Seq: 1}, {Ms: 0, Seq: 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := memory.NewClock(logStart)
			l := memory.NewEventLog(10, clock.Now)
			assert.Equal(t, tt.want, cursors(t, clock, l, tt.times...))
		})
	}
}

// Appends in one batch get consecutive sequence numbers of one millisecond.
func TestEventLog_one_batch_in_one_millisecond(t *testing.T) {
	clock := memory.NewClock(logStart)
	l := memory.NewEventLog(10, clock.Now)
	require.NoError(t, l.Append(t.Context(), []event.Event{statusChange("a"), statusChange("b"), statusChange("c")}))
	got, err := l.Read(t.Context(), event.Cursor{}, 10, 0)
	require.NoError(t, err)
	ms := uint64(logStart.UnixMilli())
	require.Len(t, got, 3)
	assert.Equal(t, []event.Cursor{{Ms: ms}, {Ms: ms, Seq: 1}, {Ms: ms, Seq: 2}},
		[]event.Cursor{got[0].Cursor, got[1].Cursor, got[2].Cursor})
}

// The ring keeps exactly its capacity, and the default capacity when given none.
func TestEventLog_capacity(t *testing.T) {
	clock := memory.NewClock(logStart)
	for _, tt := range []struct {
		capacity, want int
	}{{3, 3}, {0, memory.DefaultEventLogCapacity}, {-1, memory.DefaultEventLogCapacity}} {
		l := memory.NewEventLog(tt.capacity, clock.Now)
		batch := make([]event.Event, tt.want+5)
		for i := range batch {
			batch[i] = statusChange("e")
		}
		require.NoError(t, l.Append(t.Context(), batch))
		got, err := l.Read(t.Context(), event.Cursor{}, tt.want+10, 0)
		require.NoError(t, err)
		require.Len(t, got, tt.want, "capacity %d", tt.capacity)
		assert.Equal(t, event.Cursor{Ms: uint64(logStart.UnixMilli()), Seq: 5}, got[0].Cursor, "the oldest 5 are dropped")
	}
}

func TestEventLog_SetErr_fails_every_call(t *testing.T) {
	l := memory.NewEventLog(10, time.Now)
	down := errors.New("down")
	l.SetErr(down)
	assert.ErrorIs(t, l.Append(t.Context(), []event.Event{statusChange("a")}), down)
	_, err := l.Read(t.Context(), event.Cursor{}, 1, time.Minute)
	assert.ErrorIs(t, err, down)
	_, err = l.Tail(t.Context())
	assert.ErrorIs(t, err, down)
	l.SetErr(nil)
	got, err := l.Read(t.Context(), event.Cursor{}, 1, 0)
	require.NoError(t, err)
	assert.Empty(t, got, "nothing was appended while failing")
}
