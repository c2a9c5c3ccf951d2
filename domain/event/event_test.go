package event_test

import (
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/event"
)

func TestCursors(t *testing.T) {
	c, err := event.ParseCursor("1795787250628-7")
	if err != nil || c != (event.Cursor{Ms: 1795787250628, Seq: 7}) || c.String() != "1795787250628-7" {
		t.Fatalf("%v %v", c, err)
	}
	for _, bad := range []string{"", "1", "-1", "1-", "a-1", "1-1-1", "18446744073709551616-0"} {
		if _, err := event.ParseCursor(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if !(event.Cursor{Ms: 1, Seq: 9}).Less(event.Cursor{Ms: 2}) || (event.Cursor{Ms: 2}).Less(event.Cursor{Ms: 1, Seq: 9}) ||
		!(event.Cursor{Ms: 2, Seq: 1}).Less(event.Cursor{Ms: 2, Seq: 2}) {
		t.Fatal("cursors out of order")
	}
}

func TestTypes(t *testing.T) {
	for _, typ := range event.Types {
		got, err := event.ParseType(string(typ))
		if err != nil || got != typ {
			t.Errorf("%s: %v %v", typ, got, err)
		}
		if typ.Transition() == (typ == event.AnomalyDetected) {
			t.Errorf("%s: transition %v", typ, typ.Transition())
		}
	}
	for _, bad := range []string{"", "ALARM.OPENED", "alarm", "anomaly ", "alarm.opened,alarm.cleared"} {
		if _, err := event.ParseType(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// Each alarm transition has its event; an alarm that only grew, or an opening held back, has
// none.
func TestForAlarm(t *testing.T) {
	a := alarm.Alarm{ID: "al-1", EquipmentID: "press-01"}
	at := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	for ev, want := range map[alarm.Event]event.Type{
		alarm.Opened: event.AlarmOpened, alarm.Escalated: event.AlarmEscalated, alarm.Cleared: event.AlarmCleared,
		alarm.Grew: "", alarm.HeldBack: "", alarm.Nothing: "",
	} {
		got, ok := event.ForAlarm("ev-1", ev, a, at)
		if ok != (want != "") || got.Type != want {
			t.Errorf("alarm event %d: %v %v, want %q", ev, got.Type, ok, want)
			continue
		}
		if ok && (got.Alarm == nil || got.Alarm.ID != "al-1" || got.EquipmentID != "press-01" || !got.At.Equal(at)) {
			t.Errorf("alarm event %d: %+v", ev, got)
		}
	}
}
