package alarm_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/domain/sensor"
)

var key = sensor.Key{EquipmentID: "press-01", Type: sensor.Temperature}

// run judges values, one a second, with the production detector, hard limits and alarm
// tracker, and returns every event with the alarm it concerned.
type outcome struct {
	tracker   *alarm.Tracker
	anomalies int
	events    []alarm.Event
	alarms    []alarm.Alarm // as each event left it
}

func (o outcome) count(e alarm.Event) int {
	n := 0
	for _, got := range o.events {
		if got == e {
			n++
		}
	}
	return n
}

func run(t *testing.T, r rules.Rules, values []float64) outcome {
	t.Helper()
	d := anomaly.NewDetector(r.Detector)
	tr := alarm.NewTracker(key, r.Alarm, "v1")
	start := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	ids := 0
	o := outcome{tracker: tr}
	for i, v := range values {
		obs := r.Observation(d.Judge(key, v), v, start.Add(time.Duration(i)*time.Second))
		if obs.Anomalous {
			o.anomalies++
		}
		ev, a := tr.Observe(obs, func() string { ids++; return fmt.Sprint(ids) })
		if ev != alarm.Nothing && ev != alarm.Grew {
			o.events = append(o.events, ev)
			o.alarms = append(o.alarms, a)
		}
	}
	return o
}

var defaults = rules.Rules{Detector: anomaly.DefaultConfig, Alarm: alarm.DefaultRules}

func noise(seed uint64, n int) []float64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]float64, n)
	for i := range out {
		out[i] = 70 + rng.NormFloat64()
	}
	return out
}

// 100,000 readings of heavy-tailed noise (Student-t, 4 degrees of freedom: real sensor
// noise is rarely Gaussian) are flagged often by a 3σ rule, and open very few alarms.
func TestHeavyTailedNoiseOpensVeryFewAlarms(t *testing.T) {
	const nu = 4
	rng := rand.New(rand.NewPCG(3, 4))
	values := make([]float64, 100_000)
	for i := range values {
		chi := 0.0
		for range nu {
			g := rng.NormFloat64()
			chi += g * g
		}
		values[i] = 70 + rng.NormFloat64()/math.Sqrt(chi/nu)
	}
	o := run(t, defaults, values)
	opened := o.count(alarm.Opened)
	t.Logf("%d anomalous readings, %d alarms opened, %d openings held back", o.anomalies, opened, o.count(alarm.HeldBack))
	if o.anomalies < 1000 {
		t.Fatalf("only %d anomalous readings: the noise is not heavy-tailed enough to test anything", o.anomalies)
	}
	if opened > 40 || opened*50 > o.anomalies {
		t.Errorf("%d alarms for %d anomalous readings: want at most 40, and one for 50 anomalies at most", opened, o.anomalies)
	}
}

// A single spike opens exactly one alarm, CRITICAL, which clears once the readings are calm.
func TestASpikeOpensOneAlarmThatClears(t *testing.T) {
	values := noise(1, 300)
	values[200] = 70 + 25
	o := run(t, defaults, values)
	if len(o.events) != 2 || o.events[0] != alarm.Opened || o.events[1] != alarm.Cleared {
		t.Fatalf("events %v, want one opening then one clearing", o.events)
	}
	a := o.alarms[1]
	if a.Severity != anomaly.SeverityCritical || a.Count != 1 || a.State != alarm.StateCleared ||
		a.ClearedAt.Sub(a.OpenedAt) != 10*time.Second || a.RulesVersion != "v1" {
		t.Errorf("alarm %+v, want CRITICAL, 1 reading, cleared 10 readings after", a)
	}
}

// A level shift opens one alarm, which stays open while the window learns the new level and
// clears once it has.
func TestALevelShiftOpensOneAlarmThatClearsOnceTheWindowHasAdapted(t *testing.T) {
	values := noise(2, 600)
	for i := 200; i < len(values); i++ {
		values[i] += 8
	}
	o := run(t, defaults, values)
	if o.count(alarm.Opened) != 1 || o.count(alarm.Cleared) != 1 {
		t.Fatalf("events %v, want one opening and one clearing", o.events)
	}
	last := o.alarms[len(o.alarms)-1]
	if last.State != alarm.StateCleared || last.Count < 3 || !last.ClearedAt.After(last.LastAt) {
		t.Errorf("alarm %+v: want it cleared after several anomalous readings", last)
	}
	t.Logf("open for %v with %d anomalous readings, peak |z| %.1f", last.ClearedAt.Sub(last.OpenedAt), last.Count, last.PeakZ)
}

// A slow linear drift never reaches |z| 3 against a rolling window (the window follows it),
// so the z-score alone never flags it; the sensor type's hard limit does, once the value
// crosses it, and the alarm opens CRITICAL.
func TestASlowDriftIsFlaggedAtTheHardLimit(t *testing.T) {
	values := noise(3, 3000)
	for i := range values {
		values[i] += float64(i) * 0.01 // 30 °C over 3000 readings
	}
	zOnly := run(t, defaults, values)
	if zOnly.count(alarm.Opened) != 0 {
		t.Fatalf("the z-score alone opened %d alarms on a slow drift: the premise of this test is wrong", zOnly.count(alarm.Opened))
	}
	limited := defaults
	high := 90.0
	limited.Limits = rules.Limits{Max: &high}
	o := run(t, limited, values)
	if o.count(alarm.Opened) == 0 || o.alarms[0].Severity != anomaly.SeverityCritical {
		t.Fatalf("events %v %+v, want a CRITICAL alarm", o.events, o.alarms)
	}
	if at := o.alarms[0].OpenedAt.Sub(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)); at < 1700*time.Second || at > 2100*time.Second {
		t.Errorf("opened %v in, want when the drift reaches 90 (about 2000 s)", at)
	}
	// While the noise straddles the limit the alarm may clear and open again (a breach is
	// never held back for flapping); once the value stays beyond, one stays open.
	if n := o.count(alarm.Opened); n > 20 {
		t.Errorf("%d alarms opened", n)
	}
	if _, open := o.tracker.Open(); !open {
		t.Errorf("no alarm open at the end, with the value 10 above its limit: %v", o.events)
	}
	t.Logf("events %v", o.events)
}

// A sensor whose alarm opens and clears again and again is marked flapping: beyond
// FlapCount openings within FlapWindow, openings are held back until it settles.
func TestFlappingIsMarkedAndHoldsBackOpenings(t *testing.T) {
	r := alarm.DefaultRules
	tr := alarm.NewTracker(key, r, "v1")
	at := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	ids := 0
	id := func() string { ids++; return fmt.Sprint(ids) }
	var events []alarm.Event
	var flagged alarm.Alarm
	// Every 20 s a reading 25σ out, then calm: each opens an alarm that clears.
	for burst := range 12 {
		ev, a := tr.Observe(alarm.Observation{At: at, ZScore: 25, Anomalous: true, Severity: anomaly.SeverityCritical}, id)
		events = append(events, ev)
		if ev == alarm.HeldBack && a.ID != "" {
			flagged = a
		}
		at = at.Add(time.Second)
		for range 19 {
			if ev, _ := tr.Observe(alarm.Observation{At: at, ZScore: 0.5}, id); ev == alarm.Cleared && burst >= r.FlapCount {
				t.Fatalf("an alarm cleared during the hold: %v", events)
			}
			at = at.Add(time.Second)
		}
	}
	opened, held := 0, 0
	for _, e := range events {
		switch e {
		case alarm.Opened:
			opened++
		case alarm.HeldBack:
			held++
		}
	}
	if opened != r.FlapCount || held != 12-r.FlapCount {
		t.Fatalf("events %v: want %d openings, then the rest held back", events, r.FlapCount)
	}
	if !flagged.Flapping || flagged.ID != fmt.Sprint(r.FlapCount) {
		t.Errorf("the last alarm was not marked flapping: %+v", flagged)
	}
	// Once the window has passed without attempts, it opens again.
	at = at.Add(r.FlapWindow)
	if ev, _ := tr.Observe(alarm.Observation{At: at, ZScore: 25, Anomalous: true, Severity: anomaly.SeverityCritical}, id); ev != alarm.Opened {
		t.Errorf("after settling: %v, want Opened", ev)
	}
}

// Debounce: k anomalous readings of the last m, each at |z| 5 or more, open an alarm; fewer
// do not, and anomalous readings under the debounce |z| do not count.
func TestDebounceNeedsKOfTheLastM(t *testing.T) {
	r := alarm.DefaultRules // 3 of 5 from |z| 5, at once from |z| 20
	obs := func(z float64) alarm.Observation {
		return alarm.Observation{At: time.Unix(0, 0), ZScore: z, Anomalous: z >= 3, Severity: anomaly.SeverityLow}
	}
	tr := alarm.NewTracker(key, r, "v1")
	for range 10 {
		if ev, _ := tr.Observe(obs(4.5), func() string { return "a" }); ev != alarm.Nothing {
			t.Fatalf("anomalous readings under the debounce |z| opened an alarm: %v", ev)
		}
	}
	tr = alarm.NewTracker(key, r, "v1")
	var got []alarm.Event
	for _, z := range []float64{5.5, 0, 0, 5.5, 0, 0, 5.5, 5.5, 0, 5.5} {
		ev, _ := tr.Observe(obs(z), func() string { return "a" })
		got = append(got, ev)
	}
	// Two of five at most, until the 8th reading makes three of the last five.
	want := []alarm.Event{alarm.Nothing, alarm.Nothing, alarm.Nothing, alarm.Nothing, alarm.Nothing, alarm.Nothing,
		alarm.Nothing, alarm.Opened, alarm.Grew, alarm.Grew}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

// Severity only escalates while an alarm is open; readings between the clear threshold and
// the anomaly threshold neither clear it nor count as calm (hysteresis).
func TestSeverityEscalatesAndHysteresisHoldsTheAlarmOpen(t *testing.T) {
	r := alarm.DefaultRules
	tr := alarm.NewTracker(key, r, "v1")
	at := time.Unix(0, 0)
	step := func(z float64, sev anomaly.Severity) (alarm.Event, alarm.Alarm) {
		at = at.Add(time.Second)
		return tr.Observe(alarm.Observation{At: at, ZScore: z, Anomalous: sev != "", Severity: sev}, func() string { return "a" })
	}
	if ev, a := step(21, anomaly.SeverityCritical); ev != alarm.Opened || a.Severity != anomaly.SeverityCritical {
		t.Fatalf("%v %+v", ev, a)
	}
	if ev, a := step(3.2, anomaly.SeverityLow); ev != alarm.Grew || a.Severity != anomaly.SeverityCritical || a.Count != 2 {
		t.Fatalf("a LOW reading lowered the alarm: %v %+v", ev, a)
	}
	for range 50 {
		if ev, _ := step(2.5, ""); ev == alarm.Cleared {
			t.Fatal("a reading above the clear threshold cleared the alarm")
		}
	}
	for i := range r.ClearAfter {
		ev, a := step(1, "")
		if (ev == alarm.Cleared) != (i == r.ClearAfter-1) {
			t.Fatalf("calm reading %d: %v %+v", i+1, ev, a)
		}
	}
}

// A tracker restored with an open alarm goes on counting calm readings from where the alarm
// left off, and the debounce flags of the latest readings count.
func TestRestoreGoesOnWhereItStopped(t *testing.T) {
	r := alarm.DefaultRules
	open := alarm.Alarm{ID: "a1", EquipmentID: key.EquipmentID, SensorType: key.Type, State: alarm.StateAcknowledged,
		Severity: anomaly.SeverityMedium, Count: 4, Calm: r.ClearAfter - 1}
	tr := alarm.NewTracker(key, r, "v1")
	tr.Restore(&open, nil, nil)
	ev, a := tr.Observe(alarm.Observation{At: time.Unix(100, 0), ZScore: 0.1}, nil)
	if ev != alarm.Cleared || a.ID != "a1" || a.State != alarm.StateCleared {
		t.Fatalf("%v %+v, want a1 cleared by its last calm reading", ev, a)
	}

	tr = alarm.NewTracker(key, r, "v1")
	tr.Restore(nil, []bool{true, true}, nil)
	if ev, _ := tr.Observe(alarm.Observation{At: time.Unix(0, 0), ZScore: 5.1, Anomalous: true, Severity: anomaly.SeverityCritical},
		func() string { return "a2" }); ev != alarm.Opened {
		t.Errorf("the third anomalous reading of five did not open an alarm: %v", ev)
	}
}

func TestRulesValidate(t *testing.T) {
	if err := alarm.DefaultRules.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*alarm.Rules){
		"k above m":         func(r *alarm.Rules) { r.DebounceK = 6 },
		"m of 65":           func(r *alarm.Rules) { r.DebounceM, r.DebounceK = 65, 1 },
		"no calm readings":  func(r *alarm.Rules) { r.ClearAfter = 0 },
		"zero threshold":    func(r *alarm.Rules) { r.ClearBelow = 0 },
		"NaN threshold":     func(r *alarm.Rules) { r.ClearBelow = math.NaN() },
		"negative time":     func(r *alarm.Rules) { r.ClearAfterTime = -time.Second },
		"flap count of 1":   func(r *alarm.Rules) { r.FlapCount = 1 },
		"no flap window":    func(r *alarm.Rules) { r.FlapWindow = 0 },
		"negative open |z|": func(r *alarm.Rules) { r.OpenAtZ = -1 },
		"NaN debounce |z|":  func(r *alarm.Rules) { r.DebounceZ = math.NaN() },
	} {
		r := alarm.DefaultRules
		mutate(&r)
		if err := r.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A single reading beyond its type's hard limit opens an alarm at once, even before the
// window holds enough readings for a z-score, and whatever the debounce.
func TestOneReadingBeyondTheHardLimitOpensAnAlarmAtOnce(t *testing.T) {
	limited := defaults
	high := 120.0
	limited.Limits = rules.Limits{Max: &high}
	o := run(t, limited, []float64{70, 70.5, 130, 70, 70})
	if len(o.events) != 1 || o.events[0] != alarm.Opened || o.alarms[0].Severity != anomaly.SeverityCritical ||
		o.alarms[0].PeakZ != 0 {
		t.Fatalf("events %v %+v, want one CRITICAL alarm opened by the limit alone", o.events, o.alarms)
	}
}
