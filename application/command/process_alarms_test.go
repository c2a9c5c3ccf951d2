package command_test

import (
	"context"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

func alarmHandler(t *testing.T, f *processFixture, r rules.Rules) *command.ProcessReadingsHandler {
	t.Helper()
	set, err := rules.Uniform(r)
	if err != nil {
		t.Fatal(err)
	}
	return command.NewProcessReadingsHandler(f.store, f.store, f.store, f.clock, f.ids, anomaly.DefaultConfig,
		equipment.DefaultRules).WithAlarms(f.store.Alarms(), set)
}

func alarmsOf(t *testing.T, s *memory.Store) []alarm.Alarm {
	t.Helper()
	as, _, err := s.Alarms().Find(context.Background(), ports.AlarmQuery{Limit: 100, Ascending: true})
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// The alarm a spike opens is stored with the batch; a new process over the same storage
// goes on with it: its calm readings clear that alarm rather than knowing nothing of it, and
// an acknowledgement made meanwhile stays.
func TestProcessAlarmsSurviveARestart(t *testing.T) {
	f := newProcess()
	r := rules.Rules{Detector: anomaly.DefaultConfig, Alarm: alarm.DefaultRules}
	f.handler = alarmHandler(t, f, r)
	var s seq
	f.handle(t, s.normal(t, start, "press-01", sensor.Temperature, 40)...)
	res := f.handle(t, s.reading(t, start.Add(40*time.Second), "press-01", sensor.Temperature, 95))
	if len(res.Alarms) != 1 || res.Alarms[0].Event != alarm.Opened {
		t.Fatalf("result alarms %+v, want one opened", res.Alarms)
	}
	stored := alarmsOf(t, f.store.Store)
	if len(stored) != 1 || stored[0].State != alarm.StateActive || stored[0].Severity != anomaly.SeverityCritical {
		t.Fatalf("stored %+v", stored)
	}
	if _, err := f.store.Alarms().Acknowledge(context.Background(), stored[0].ID, "jo", "", start.Add(time.Minute), nil); err != nil {
		t.Fatal(err)
	}

	f.handler = alarmHandler(t, f, r) // a new process
	for i := range r.Alarm.ClearAfter {
		f.handle(t, s.reading(t, start.Add(time.Duration(41+i)*time.Second), "press-01", sensor.Temperature, 70))
	}
	after := alarmsOf(t, f.store.Store)
	if len(after) != 1 || after[0].ID != stored[0].ID || after[0].State != alarm.StateCleared || after[0].AckBy != "jo" {
		t.Fatalf("after the restart: %+v, want %s cleared, acknowledged by jo", after, stored[0].ID)
	}
}

// A write that fails stores no alarm, and the retry opens it once.
func TestProcessAlarmsAreWrittenOnceWithTheirBatch(t *testing.T) {
	f := newProcess()
	f.handler = alarmHandler(t, f, rules.Rules{Detector: anomaly.DefaultConfig, Alarm: alarm.DefaultRules})
	var s seq
	f.handle(t, s.normal(t, start, "press-01", sensor.Temperature, 40)...)
	spike := s.reading(t, start.Add(40*time.Second), "press-01", sensor.Temperature, 95)
	f.store.failWrite.Store(true)
	if _, err := f.handler.Handle(context.Background(), ports.ReadingsReceived{Readings: []sensor.Reading{spike}}); err == nil {
		t.Fatal("the write did not fail")
	}
	if n := len(alarmsOf(t, f.store.Store)); n != 0 {
		t.Fatalf("%d alarms stored by a failed write", n)
	}
	f.store.failWrite.Store(false)
	f.handle(t, spike)
	if as := alarmsOf(t, f.store.Store); len(as) != 1 || as[0].Count != 1 {
		t.Fatalf("after the retry: %+v, want one alarm of one reading", as)
	}
}

// A machine whose rules override its type's is judged by its own: the same spike opens an
// alarm on one press and not on the other, whose openAtZ is beyond it.
func TestProcessJudgesAMachineByItsOwnRules(t *testing.T) {
	f := newProcess()
	r := rules.Rules{Detector: anomaly.DefaultConfig, Alarm: alarm.DefaultRules}
	set, err := rules.Uniform(r)
	if err != nil {
		t.Fatal(err)
	}
	tolerant := r
	tolerant.Alarm.OpenAtZ = 0 // never at once
	tolerant.Detector.WindowSize = 60
	if set, err = set.WithMachines(map[string]map[sensor.Type]rules.Rules{"press-02": {sensor.Temperature: tolerant}}); err != nil {
		t.Fatal(err)
	}
	f.handler = command.NewProcessReadingsHandler(f.store, f.store, f.store, f.clock, f.ids, anomaly.DefaultConfig,
		equipment.DefaultRules).WithAlarms(f.store.Alarms(), set)
	var s seq
	for _, id := range []string{"press-01", "press-02"} {
		f.handle(t, s.normal(t, start, id, sensor.Temperature, 40)...)
		f.handle(t, s.reading(t, start.Add(40*time.Second), id, sensor.Temperature, 95))
	}
	stored := alarmsOf(t, f.store.Store)
	if len(stored) != 1 || stored[0].EquipmentID != "press-01" {
		t.Fatalf("alarms %+v, want one, on press-01", stored)
	}
	if set.ForSensor("press-02", sensor.Temperature).Detector.WindowSize != 60 ||
		set.ForSensor("press-02", sensor.Pressure).Detector.WindowSize != 100 {
		t.Errorf("the override reaches other types or misses its own")
	}
}

// Two sensors of one type on one machine are judged apart: each has its own window and its
// own alarm. One runs near 70, the other near 10; a reading of 70 on the second is a spike
// there, and only there, and a reading of a type no rule declares is judged by the fallback.
func TestProcessJudgesEachSensorOfATypeApart(t *testing.T) {
	f := newProcess()
	f.handler = alarmHandler(t, f, rules.Rules{Detector: anomaly.DefaultConfig, Alarm: alarm.DefaultRules})
	var s seq
	named := func(rs []sensor.Reading, id string, offset float64) []sensor.Reading {
		for i := range rs {
			rs[i].SensorID, rs[i].Value = id, rs[i].Value+offset
		}
		return rs
	}
	f.handle(t, named(s.normal(t, start, "pump-01", sensor.Vibration, 40), "bearing-de", 0)...)
	f.handle(t, named(s.normal(t, start, "pump-01", sensor.Vibration, 40), "bearing-nde", -60)...)
	f.handle(t, named(s.normal(t, start, "pump-01", "flow", 40), "flow-1", 0)...)
	spike := named([]sensor.Reading{s.reading(t, start.Add(40*time.Second), "pump-01", sensor.Vibration, 70)}, "bearing-nde", 0)
	same := named([]sensor.Reading{s.reading(t, start.Add(40*time.Second), "pump-01", sensor.Vibration, 70)}, "bearing-de", 0)
	flow := named([]sensor.Reading{s.reading(t, start.Add(40*time.Second), "pump-01", "flow", 95)}, "flow-1", 0)
	f.handle(t, append(append(spike, same...), flow...)...)
	stored := alarmsOf(t, f.store.Store)
	if len(stored) != 2 || stored[0].Sensor == stored[1].Sensor {
		t.Fatalf("alarms %+v, want one on bearing-nde and one on flow-1", stored)
	}
	for _, a := range stored {
		if a.Sensor != "bearing-nde" && a.Sensor != "flow-1" {
			t.Errorf("alarm on %s/%s, want bearing-nde or flow-1", a.SensorType, a.Sensor)
		}
	}
	as, _, err := f.store.Find(context.Background(), ports.AnomalyQuery{SensorID: "bearing-nde", Limit: 10})
	if err != nil || len(as) != 1 || as[0].SensorID != "bearing-nde" {
		t.Errorf("anomalies of bearing-nde = %+v, %v; want the spike", as, err)
	}
}
