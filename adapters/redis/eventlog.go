package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/production-line-monitor/plm/adapters/eventwire"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
)

// DefaultEventLogLength is about how many entries an EventLog keeps when its constructor is
// given no length.
const DefaultEventLogLength = 10000

// Fields of an event's entry in the stream.
const (
	fieldEventType      = "type"
	fieldEventEquipment = "equipment"
	fieldEventData      = "data" // the event's wire form (adapters/eventwire)
)

// EventLog is the live event stream of a deployment: one Redis stream, "<prefix>:events:live",
// that every process appends to and reads. Entry ids are the cursors. Each append trims the
// stream to about its length (MAXLEN ~: Redis drops whole nodes of entries, so it may keep a
// few more). A Read that waits is an XREAD BLOCK, which rueidis sends on a connection of its
// pool of blocking connections, so that it holds up no other command.
type EventLog struct {
	c      *Client
	key    string
	maxLen string
}

var _ ports.EventLog = (*EventLog)(nil)

// NewEventLog keeps the event stream through c, trimmed to about maxLen entries
// (DefaultEventLogLength when maxLen is not positive).
func NewEventLog(c *Client, maxLen int) *EventLog {
	if maxLen <= 0 {
		maxLen = DefaultEventLogLength
	}
	return &EventLog{c: c, key: c.key("events", "live"), maxLen: strconv.Itoa(maxLen)}
}

// Append implements ports.EventLog: one XADD per event, sent together and in order. Either
// every event is sent or, when one cannot be written in its wire form, none is.
func (l *EventLog) Append(ctx context.Context, events []event.Event) error {
	if len(events) == 0 {
		return nil
	}
	cmds := make(rueidis.Commands, len(events))
	for i, e := range events {
		data, err := eventwire.Encode(e)
		if err != nil {
			return fmt.Errorf("append events: %w", err)
		}
		cmds[i] = l.c.rc.B().Xadd().Key(l.key).Maxlen().Almost().Threshold(l.maxLen).Id("*").FieldValue().
			FieldValue(fieldEventType, string(e.Type)).
			FieldValue(fieldEventEquipment, e.EquipmentID).
			FieldValue(fieldEventData, string(data)).
			Build()
	}
	for _, res := range l.c.rc.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			return fail(ctx, "append events", err)
		}
	}
	return nil
}

// Read implements ports.EventLog: an XRANGE from the entry after the cursor when it does not
// wait, an XREAD BLOCK when it does. A canceled ctx ends the wait: rueidis then unblocks the
// connection (CLIENT UNBLOCK) and keeps it, or closes it.
func (l *EventLog) Read(ctx context.Context, after event.Cursor, limit int, wait time.Duration) ([]ports.EventEntry, error) {
	const op = "read events"
	if limit <= 0 {
		return nil, fmt.Errorf("%s: limit %d is not positive", op, limit)
	}
	if wait <= 0 {
		raw, err := l.c.rc.Do(ctx, l.c.rc.B().Xrange().Key(l.key).Start(next(after)).End("+").
			Count(int64(limit)).Build()).AsXRange()
		if err != nil {
			return nil, fail(ctx, op, err)
		}
		return decodeEntries(raw)
	}
	block := max(wait.Milliseconds(), 1) // BLOCK 0 would wait for ever
	streams, err := l.c.rc.Do(ctx, l.c.rc.B().Xread().Count(int64(limit)).Block(block).Streams().
		Key(l.key).Id(after.String()).Build().UnblockOnCancel()).AsXRead()
	if rueidis.IsRedisNil(err) {
		return nil, nil // the wait is over, and nothing came
	}
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	return decodeEntries(streams[l.key])
}

// next is the first id after c, the start of an inclusive range (Redis 5 has no exclusive
// one).
func next(c event.Cursor) string {
	if c.Seq == ^uint64(0) {
		return event.Cursor{Ms: c.Ms + 1}.String()
	}
	return event.Cursor{Ms: c.Ms, Seq: c.Seq + 1}.String()
}

// Tail implements ports.EventLog.
func (l *EventLog) Tail(ctx context.Context) (event.Cursor, error) {
	raw, err := l.c.rc.Do(ctx, l.c.rc.B().Xrevrange().Key(l.key).End("+").Start("-").Count(1).Build()).AsXRange()
	if err != nil {
		return event.Cursor{}, fail(ctx, "read the tail of the events", err)
	}
	if len(raw) == 0 {
		return event.Cursor{}, nil
	}
	c, err := event.ParseCursor(raw[0].ID)
	if err != nil {
		return event.Cursor{}, fmt.Errorf("read the tail of the events: %w", err)
	}
	return c, nil
}

// decodeEntries reads the stream's entries.
func decodeEntries(raw []rueidis.XRangeEntry) ([]ports.EventEntry, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	out := make([]ports.EventEntry, len(raw))
	for i, r := range raw {
		c, err := event.ParseCursor(r.ID)
		if err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		data, ok := r.FieldValues[fieldEventData]
		if !ok {
			return nil, fmt.Errorf("read events: entry %s has no %s", r.ID, fieldEventData)
		}
		out[i] = ports.EventEntry{Cursor: c, Type: event.Type(r.FieldValues[fieldEventType]),
			EquipmentID: r.FieldValues[fieldEventEquipment], Data: []byte(data)}
	}
	return out, nil
}
