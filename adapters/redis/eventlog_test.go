package redis_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/redis"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
	"github.com/production-line-monitor/plm/ports/portstest"
	"github.com/production-line-monitor/plm/tests/redistest"
)

func TestIntegrationEventLogContract(t *testing.T) {
	portstest.EventLog(t, func(t *testing.T, capacity int) ports.EventLog {
		return redis.NewEventLog(newServer(t).open(t), capacity)
	})
}

func statusEvent(id, eq string) event.Event {
	return event.ForStatus(id, event.StatusChange{EquipmentID: eq, Status: equipment.StatusOffline, Reason: "silent"}, t0)
}

// The stream is one key under the prefix, with the type, the equipment and the wire form of
// each event, trimmed to about its length.
func TestIntegrationEventLogKeepsOneStream(t *testing.T) {
	s := newServer(t)
	l := redis.NewEventLog(s.open(t), 100)
	require.NoError(t, l.Append(t.Context(), []event.Event{statusEvent("ev-1", "press-01")}))

	c := redistest.Connect(t, s.url)
	key := s.prefix + ":events:live"
	entries, err := c.Do(t.Context(), c.B().Xrange().Key(key).Start("-").End("+").Build()).AsXRange()
	require.NoError(t, err)
	require.Len(t, entries, 1)
	f := entries[0].FieldValues
	assert.Equal(t, "equipment.status_changed", f["type"])
	assert.Equal(t, "press-01", f["equipment"])
	assert.JSONEq(t, `{"id": "ev-1", "type": "equipment.status_changed", "at": "2026-11-27T08:00:00.000Z",
		"equipmentId": "press-01", "data": {"equipmentId": "press-01", "previous": null, "status": "OFFLINE", "reason": "silent"}}`,
		f["data"])
	tail, err := l.Tail(t.Context())
	require.NoError(t, err)
	assert.Equal(t, entries[0].ID, tail.String(), "the cursor is the entry's id")

	batch := make([]event.Event, 1000)
	for i := range batch {
		batch[i] = statusEvent("ev-"+strconv.Itoa(i+2), "press-01")
	}
	require.NoError(t, l.Append(t.Context(), batch))
	n, err := c.Do(t.Context(), c.B().Xlen().Key(key).Build()).AsInt64()
	require.NoError(t, err)
	assert.Less(t, n, int64(1001), "the stream is trimmed")
	assert.GreaterOrEqual(t, n, int64(100), "the stream keeps at least its length")
}

// Processes share the stream: what one appends, another reads, and its wait ends with the
// append.
func TestIntegrationEventLogIsSharedByProcesses(t *testing.T) {
	s := newServer(t)
	writer, reader := redis.NewEventLog(s.open(t), 0), redis.NewEventLog(s.open(t), 0)
	ctx := t.Context()

	done := make(chan []ports.EventEntry, 1)
	go func() {
		entries, _ := reader.Read(ctx, event.Cursor{}, 10, time.Minute)
		done <- entries
	}()
	require.NoError(t, writer.Append(ctx, []event.Event{statusEvent("ev-1", "press-01")}))
	select {
	case entries := <-done:
		require.Len(t, entries, 1)
		assert.Equal(t, "press-01", entries[0].EquipmentID)
	case <-time.After(10 * time.Second):
		t.Fatal("the reader's wait did not end with the other process's append")
	}
}

// A Read blocked in XREAD holds up no other command of its client: while it waits, the same
// client appends the entry that ends its wait.
func TestIntegrationEventLogBlockedReadStallsNothing(t *testing.T) {
	s := newServer(t)
	l := redis.NewEventLog(s.open(t), 0)
	ctx := t.Context()
	before := blockedClients(t, s.url)

	done := make(chan []ports.EventEntry, 1)
	go func() {
		entries, _ := l.Read(ctx, event.Cursor{}, 10, 30*time.Second)
		done <- entries
	}()
	eventually(t, "the read blocks", func() bool { return blockedClients(t, s.url) > before })
	require.NoError(t, l.Append(ctx, []event.Event{statusEvent("ev-1", "press-01")}))
	_, err := l.Tail(ctx)
	require.NoError(t, err)
	select {
	case entries := <-done:
		require.Len(t, entries, 1, "the append was held up behind the blocked read until it timed out")
	case <-time.After(10 * time.Second):
		t.Fatal("the blocked read did not end with the append")
	}
}

// blockedClients is how many clients of the server wait in a blocking command.
func blockedClients(t *testing.T, url string) int {
	t.Helper()
	c := redistest.Connect(t, url)
	info, err := c.Do(t.Context(), c.B().Info().Section("clients").Build()).ToString()
	require.NoError(t, err)
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "blocked_clients:"); ok {
			n, err := strconv.Atoi(v)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("INFO clients has no blocked_clients")
	return 0
}

func TestIntegrationEventLogClosedClientIsUnavailable(t *testing.T) {
	c := newServer(t).open(t)
	l := redis.NewEventLog(c, 0)
	c.Close()
	ctx := t.Context()
	assert.ErrorIs(t, l.Append(ctx, []event.Event{statusEvent("ev-1", "press-01")}), ports.ErrUnavailable)
	_, err := l.Read(ctx, event.Cursor{}, 10, 0)
	assert.ErrorIs(t, err, ports.ErrUnavailable)
	_, err = l.Read(ctx, event.Cursor{}, 10, time.Second)
	assert.ErrorIs(t, err, ports.ErrUnavailable)
	_, err = l.Tail(ctx)
	assert.ErrorIs(t, err, ports.ErrUnavailable)
}
