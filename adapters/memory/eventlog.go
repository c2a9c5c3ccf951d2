package memory

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/production-line-monitor/plm/adapters/eventwire"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
)

// DefaultEventLogCapacity is how many entries an EventLog keeps when its constructor is
// given no capacity.
const DefaultEventLogCapacity = 10000

// EventLog is the live event stream of the embedded mode (one process): a ring that keeps
// the newest entries, up to its capacity. Cursors follow the clock's milliseconds, and
// strictly increase even when the clock stalls or goes back (the sequence number then
// counts on from the last cursor). A Read that waits is woken by the next append.
type EventLog struct {
	now func() time.Time

	mu       sync.Mutex
	ring     []ports.EventEntry
	head     int // the index of the oldest entry in ring
	size     int // how many entries ring holds
	last     event.Cursor
	appended chan struct{} // closed, and replaced, by every append
	err      error
}

var _ ports.EventLog = (*EventLog)(nil)

// NewEventLog returns an empty log that keeps the newest capacity entries
// (DefaultEventLogCapacity when capacity is not positive); now tells the time.
func NewEventLog(capacity int, now func() time.Time) *EventLog {
	if capacity <= 0 {
		capacity = DefaultEventLogCapacity
	}
	return &EventLog{now: now, ring: make([]ports.EventEntry, capacity), appended: make(chan struct{})}
}

// SetErr makes every later call fail with err (nil: succeed again).
func (l *EventLog) SetErr(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.err = err
}

// Append implements ports.EventLog. Either every event is appended or, when one cannot be
// written in its wire form, none is.
func (l *EventLog) Append(_ context.Context, events []event.Event) error {
	if len(events) == 0 {
		return nil
	}
	entries := make([]ports.EventEntry, len(events))
	for i, e := range events {
		data, err := eventwire.Encode(e)
		if err != nil {
			return fmt.Errorf("append events: %w", err)
		}
		entries[i] = ports.EventEntry{Type: e.Type, EquipmentID: e.EquipmentID, Data: data}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return fmt.Errorf("append events: %w", l.err)
	}
	for _, e := range entries {
		e.Cursor = l.nextCursor()
		l.last = e.Cursor
		l.ring[(l.head+l.size)%len(l.ring)] = e
		if l.size < len(l.ring) {
			l.size++
		} else {
			l.head = (l.head + 1) % len(l.ring)
		}
	}
	close(l.appended)
	l.appended = make(chan struct{})
	return nil
}

// nextCursor is the cursor of the next entry: the clock's millisecond, or the last cursor's
// when the clock has not passed it, with the next sequence number.
func (l *EventLog) nextCursor() event.Cursor {
	ms := uint64(max(l.now().UnixMilli(), 0))
	if ms > l.last.Ms {
		return event.Cursor{Ms: ms}
	}
	return event.Cursor{Ms: l.last.Ms, Seq: l.last.Seq + 1}
}

// Read implements ports.EventLog. The entries' Data are shared: callers must not change
// them.
func (l *EventLog) Read(ctx context.Context, after event.Cursor, limit int, wait time.Duration) ([]ports.EventEntry, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("read events: limit %d is not positive", limit)
	}
	var timeout <-chan time.Time
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		l.mu.Lock()
		if l.err != nil {
			l.mu.Unlock()
			return nil, fmt.Errorf("read events: %w", l.err)
		}
		entries := l.after(after, limit)
		appended := l.appended
		l.mu.Unlock()
		if len(entries) > 0 || wait <= 0 {
			return entries, nil
		}
		if timeout == nil {
			timer := time.NewTimer(wait)
			defer timer.Stop()
			timeout = timer.C
		}
		select {
		case <-appended:
		case <-timeout:
			return nil, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("read events: %w", ctx.Err())
		}
	}
}

// after returns up to limit entries after the cursor, oldest first. l.mu is held.
func (l *EventLog) after(after event.Cursor, limit int) []ports.EventEntry {
	at := func(i int) ports.EventEntry { return l.ring[(l.head+i)%len(l.ring)] }
	first := sort.Search(l.size, func(i int) bool { return after.Less(at(i).Cursor) })
	n := min(limit, l.size-first)
	if n <= 0 {
		return nil
	}
	out := make([]ports.EventEntry, n)
	for i := range out {
		out[i] = at(first + i)
	}
	return out
}

// Tail implements ports.EventLog.
func (l *EventLog) Tail(context.Context) (event.Cursor, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return event.Cursor{}, fmt.Errorf("read the tail of the events: %w", l.err)
	}
	return l.last, nil
}
