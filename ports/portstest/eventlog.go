package portstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
)

// EventLog is the contract of ports.EventLog. newLog returns an empty log of its own that
// keeps at least the newest capacity entries: exactly that many in memory, about that many
// in a Redis stream trimmed with MAXLEN ~, which may keep more.
func EventLog(t *testing.T, newLog func(t *testing.T, capacity int) ports.EventLog) {
	t.Helper()
	const capacity = 1000
	t.Run("AppendThenRead", func(t *testing.T) { eventLogAppendThenRead(t, newLog(t, capacity)) })
	t.Run("ReadAfterCursor", func(t *testing.T) { eventLogReadAfter(t, newLog(t, capacity)) })
	t.Run("Limit", func(t *testing.T) { eventLogLimit(t, newLog(t, capacity)) })
	t.Run("Tail", func(t *testing.T) { eventLogTail(t, newLog(t, capacity)) })
	t.Run("CursorsIncrease", func(t *testing.T) { eventLogCursorsIncrease(t, newLog(t, capacity)) })
	t.Run("WaitReturnsOnAppend", func(t *testing.T) { eventLogWaitReturnsOnAppend(t, newLog(t, capacity)) })
	t.Run("WaitTimesOut", func(t *testing.T) { eventLogWaitTimesOut(t, newLog(t, capacity)) })
	t.Run("CanceledWhileWaiting", func(t *testing.T) { eventLogCanceled(t, newLog(t, capacity)) })
	t.Run("TrimKeepsTheNewest", func(t *testing.T) { eventLogTrim(t, newLog(t, 50)) })
	t.Run("RefusesAnEmptyEvent", func(t *testing.T) { eventLogRefusesEmpty(t, newLog(t, capacity)) })
}

// statusEvent is the i-th fixture event: an equipment status change of eq.
func statusEvent(i int, eq string) event.Event {
	return event.ForStatus(fmt.Sprintf("ev-%04d", i),
		event.StatusChange{EquipmentID: eq, Previous: equipment.StatusOnline, Status: equipment.StatusAnomaly, Reason: "test"},
		at(time.Duration(i)*time.Second))
}

// alarmEvent is the i-th fixture event: the opening of an alarm of eq.
func alarmEvent(i int, eq string) event.Event {
	a := alarm.Alarm{ID: fmt.Sprintf("alarm-%d", i), EquipmentID: eq, State: alarm.StateActive,
		OpenedAt: at(0), FirstAt: at(0), LastAt: at(0)}
	e, ok := event.ForAlarm(fmt.Sprintf("ev-%04d", i), alarm.Opened, a, at(time.Duration(i)*time.Second))
	if !ok {
		panic("an opening is an event")
	}
	return e
}

// events are the fixture events first to first+n-1, alternating equipment and type.
func events(first, n int) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		if (first+i)%2 == 0 {
			out[i] = statusEvent(first+i, press1)
		} else {
			out[i] = alarmEvent(first+i, press2)
		}
	}
	return out
}

// wire is the part of an entry's data the suite checks.
type wire struct {
	ID          string     `json:"id"`
	Type        event.Type `json:"type"`
	EquipmentID string     `json:"equipmentId"`
	Data        any        `json:"data"`
}

// checkEntries checks that got holds want, in order: each entry's type and equipment as the
// event's, its data the event's wire form, and cursors strictly increasing.
func checkEntries(t *testing.T, want []event.Event, got []ports.EventEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d: %s", len(got), len(want), describeEntries(got))
	}
	for i, e := range got {
		w := want[i]
		var d wire
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatalf("entry %d: data is not JSON: %v: %s", i, err, e.Data)
		}
		if d.ID != w.ID || d.Type != w.Type || d.EquipmentID != w.EquipmentID || d.Data == nil {
			t.Errorf("entry %d: data %s, want the wire form of %s (%s, %s)", i, e.Data, w.ID, w.Type, w.EquipmentID)
		}
		if e.Type != w.Type || e.EquipmentID != w.EquipmentID {
			t.Errorf("entry %d: type %s, equipment %s; want %s, %s", i, e.Type, e.EquipmentID, w.Type, w.EquipmentID)
		}
		if i > 0 && !got[i-1].Cursor.Less(e.Cursor) {
			t.Errorf("entry %d: cursor %s does not follow %s", i, e.Cursor, got[i-1].Cursor)
		}
	}
}

func describeEntries(entries []ports.EventEntry) string {
	s := "["
	for i, e := range entries {
		if i > 0 {
			s += ", "
		}
		s += e.Cursor.String() + " " + string(e.Type)
	}
	return s + "]"
}

// readAll reads every entry after from, page by page, without waiting.
func readAll(t *testing.T, l ports.EventLog, from event.Cursor) []ports.EventEntry {
	t.Helper()
	var out []ports.EventEntry
	for {
		page, err := l.Read(t.Context(), from, 100, 0)
		must(t, err)
		out = append(out, page...)
		if len(page) < 100 {
			return out
		}
		from = page[len(page)-1].Cursor
	}
}

func eventLogAppendThenRead(t *testing.T, l ports.EventLog) {
	ctx := t.Context()
	got, err := l.Read(ctx, event.Cursor{}, 10, 0)
	must(t, err)
	equal(t, 0, len(got), "entries of an empty log")
	must(t, l.Append(ctx, nil))

	must(t, l.Append(ctx, events(0, 3)))
	must(t, l.Append(ctx, events(3, 2)))
	checkEntries(t, events(0, 5), readAll(t, l, event.Cursor{}))
}

func eventLogReadAfter(t *testing.T, l ports.EventLog) {
	ctx := t.Context()
	must(t, l.Append(ctx, events(0, 5)))
	all := readAll(t, l, event.Cursor{})
	checkEntries(t, events(0, 5), all)

	got, err := l.Read(ctx, all[1].Cursor, 10, 0)
	must(t, err)
	checkEntries(t, events(2, 3), got)
	equal(t, all[2:], got, "the entries after the second")

	got, err = l.Read(ctx, all[4].Cursor, 10, 0)
	must(t, err)
	equal(t, 0, len(got), "entries after the last")

	// A cursor between two entries (none has it) reads from the next one.
	between := event.Cursor{Ms: all[2].Cursor.Ms, Seq: all[2].Cursor.Seq + 1}
	if between.Less(all[3].Cursor) {
		got, err = l.Read(ctx, between, 10, 0)
		must(t, err)
		checkEntries(t, events(3, 2), got)
	}
}

func eventLogLimit(t *testing.T, l ports.EventLog) {
	ctx := t.Context()
	must(t, l.Append(ctx, events(0, 5)))
	first, err := l.Read(ctx, event.Cursor{}, 2, 0)
	must(t, err)
	checkEntries(t, events(0, 2), first)
	next, err := l.Read(ctx, first[1].Cursor, 2, time.Second)
	must(t, err)
	checkEntries(t, events(2, 2), next)
	last, err := l.Read(ctx, next[1].Cursor, 2, 0)
	must(t, err)
	checkEntries(t, events(4, 1), last)

	for _, limit := range []int{0, -1} {
		if _, err := l.Read(ctx, event.Cursor{}, limit, 0); err == nil {
			t.Errorf("Read with limit %d: no error", limit)
		}
	}
}

func eventLogTail(t *testing.T, l ports.EventLog) {
	ctx := t.Context()
	tail, err := l.Tail(ctx)
	must(t, err)
	equal(t, event.Cursor{}, tail, "the tail of an empty log")

	must(t, l.Append(ctx, events(0, 3)))
	all := readAll(t, l, event.Cursor{})
	tail, err = l.Tail(ctx)
	must(t, err)
	equal(t, all[2].Cursor, tail, "the tail: the newest entry's cursor")
	got, err := l.Read(ctx, tail, 10, 0)
	must(t, err)
	equal(t, 0, len(got), "entries after the tail")

	must(t, l.Append(ctx, events(3, 1)))
	got, err = l.Read(ctx, tail, 10, 0)
	must(t, err)
	checkEntries(t, events(3, 1), got)
}

// Appends of one process, and of several at once, get cursors that increase in the order
// the log keeps them, and no entry is lost.
func eventLogCursorsIncrease(t *testing.T, l ports.EventLog) {
	ctx := t.Context()
	for i := range 20 { // one at a time, faster than the clock's milliseconds
		must(t, l.Append(ctx, events(i, 1)))
	}
	checkEntries(t, events(0, 20), readAll(t, l, event.Cursor{}))

	const writers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := l.Append(ctx, events(100+w*each+i, 1)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent append: %v", err)
	}
	all := readAll(t, l, event.Cursor{})
	equal(t, 20+writers*each, len(all), "entries after the concurrent appends")
	seen := make(map[string]bool)
	for i, e := range all {
		var d wire
		must(t, json.Unmarshal(e.Data, &d))
		if seen[d.ID] {
			t.Errorf("event %s kept twice", d.ID)
		}
		seen[d.ID] = true
		if i > 0 && !all[i-1].Cursor.Less(e.Cursor) {
			t.Errorf("entry %d: cursor %s does not follow %s", i, e.Cursor, all[i-1].Cursor)
		}
	}
}

// readResult is what a Read in a goroutine of its own came to.
type readResult struct {
	entries []ports.EventEntry
	err     error
}

func readAsync(ctx context.Context, l ports.EventLog, after event.Cursor, wait time.Duration) <-chan readResult {
	done := make(chan readResult, 1)
	go func() {
		entries, err := l.Read(ctx, after, 10, wait)
		done <- readResult{entries, err}
	}()
	return done
}

// awaitRead waits for a Read started by readAsync, failing t if it has not returned within
// limit.
func awaitRead(t *testing.T, done <-chan readResult, limit time.Duration) readResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(limit):
		t.Fatalf("Read has not returned within %s", limit)
		return readResult{}
	}
}

// A Read that waits returns as soon as an entry comes, with it.
func eventLogWaitReturnsOnAppend(t *testing.T, l ports.EventLog) {
	ctx := t.Context()
	must(t, l.Append(ctx, events(0, 1)))
	tail, err := l.Tail(ctx)
	must(t, err)

	// The wait is far longer than the test allows the Read: it must be woken by the
	// append, whether the append comes before it blocks or while it does.
	done := readAsync(ctx, l, tail, time.Minute)
	appended := make(chan error, 1)
	time.AfterFunc(20*time.Millisecond, func() { appended <- l.Append(ctx, events(1, 2)) })
	r := awaitRead(t, done, 10*time.Second)
	must(t, <-appended)
	must(t, r.err)
	if len(r.entries) == 0 {
		t.Fatal("the waiting Read returned no entry")
	}
	// It may have returned with the first of the two only; the rest follows at once.
	rest, err := l.Read(ctx, r.entries[len(r.entries)-1].Cursor, 10, 0)
	must(t, err)
	checkEntries(t, events(1, 2), append(r.entries, rest...))
}

// A Read that waits and sees nothing returns none, without error, once the wait is over.
func eventLogWaitTimesOut(t *testing.T, l ports.EventLog) {
	ctx := t.Context()
	must(t, l.Append(ctx, events(0, 1)))
	tail, err := l.Tail(ctx)
	must(t, err)

	const wait = 200 * time.Millisecond
	start := time.Now()
	r := awaitRead(t, readAsync(ctx, l, tail, wait), 10*time.Second)
	elapsed := time.Since(start)
	must(t, r.err)
	equal(t, 0, len(r.entries), "entries after the tail")
	if elapsed < wait-5*time.Millisecond {
		t.Errorf("Read returned after %s, before its wait of %s was over", elapsed, wait)
	}

	got, err := l.Read(ctx, tail, 10, 0)
	must(t, err)
	equal(t, 0, len(got), "entries after the tail, without waiting")
}

// A Read that waits ends with its context, with the context's error.
func eventLogCanceled(t *testing.T, l ports.EventLog) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := readAsync(ctx, l, event.Cursor{}, time.Minute)
	time.AfterFunc(20*time.Millisecond, cancel)
	r := awaitRead(t, done, 10*time.Second)
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("Read ended with %v, want context.Canceled", r.err)
	}
	equal(t, 0, len(r.entries), "entries of a canceled Read")

	// The log still serves others.
	must(t, l.Append(t.Context(), events(0, 1)))
	checkEntries(t, events(0, 1), readAll(t, l, event.Cursor{}))
}

// Past its capacity the log drops the oldest entries and keeps (at least) the newest
// capacity ones; reading after a cursor no longer kept starts at the oldest kept.
func eventLogTrim(t *testing.T, l ports.EventLog) {
	const capacity, total = 50, 400
	ctx := t.Context()
	must(t, l.Append(ctx, events(0, 1)))
	first, err := l.Tail(ctx)
	must(t, err)
	for i := 1; i < total; i += 33 {
		must(t, l.Append(ctx, events(i, min(33, total-i))))
	}
	all := readAll(t, l, event.Cursor{})
	if len(all) < capacity || len(all) >= total {
		t.Fatalf("%d entries kept of %d, want from %d to fewer than %d", len(all), total, capacity, total)
	}
	checkEntries(t, events(total-len(all), len(all)), all)

	got, err := l.Read(ctx, first, 1, 0)
	must(t, err)
	equal(t, all[:1], got, "the entry after a cursor no longer kept")
	tail, err := l.Tail(ctx)
	must(t, err)
	equal(t, all[len(all)-1].Cursor, tail, "the tail")
}

// An event that carries nothing cannot be written: the append fails, and keeps none of its
// events.
func eventLogRefusesEmpty(t *testing.T, l ports.EventLog) {
	ctx := t.Context()
	empty := event.Event{ID: "ev-empty", Type: event.AlarmOpened, At: at(0), EquipmentID: press1}
	if err := l.Append(ctx, append(events(0, 2), empty)); err == nil {
		t.Fatal("an event without payload was appended")
	}
	equal(t, 0, len(readAll(t, l, event.Cursor{})), "entries kept of the refused append")
}
