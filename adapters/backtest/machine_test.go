package backtest_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/production-line-monitor/plm/adapters/backtest"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/domain/sensor"
)

func strconvF(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func TestParseColumn(t *testing.T) {
	for in, want := range map[string]backtest.Column{
		"Accelerometer1RMS=vibration":           {Header: "Accelerometer1RMS", Type: sensor.Vibration, Sensor: "Accelerometer1RMS"},
		" Volume Flow RateRMS = flow ":          {Header: "Volume Flow RateRMS", Type: "flow", Sensor: "Volume-Flow-RateRMS"},
		"Thermocouple = temperature fluid-temp": {Header: "Thermocouple", Type: sensor.Temperature, Sensor: "fluid-temp"},
	} {
		got, err := backtest.ParseColumn(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "no-type", "=vibration", "a=Vibration", "a=vibration bad id!", "a=vibration x y"} {
		if _, err := backtest.ParseColumn(bad); !errors.Is(err, backtest.ErrBadColumn) {
			t.Errorf("%q: %v, want ErrBadColumn", bad, err)
		}
	}
}

func TestCheckColumnsRefusesDuplicatesAndUnknownTypes(t *testing.T) {
	set, err := rules.Uniform(rules.Rules{Detector: anomaly.DefaultConfig, Alarm: alarm.DefaultRules})
	if err != nil {
		t.Fatal(err)
	}
	a, b := mustColumn(t, "A=vibration a"), mustColumn(t, "B=vibration b")
	if err := backtest.CheckColumns([]backtest.Column{a, b}, set); err != nil {
		t.Fatal(err)
	}
	for name, cols := range map[string][]backtest.Column{
		"none":           nil,
		"a header twice": {a, {Header: "A", Type: sensor.Vibration, Sensor: "c"}},
		"a sensor twice": {a, {Header: "C", Type: sensor.Vibration, Sensor: "a"}},
		"unknown type":   {mustColumn(t, "C=current")},
	} {
		if err := backtest.CheckColumns(cols, set); !errors.Is(err, backtest.ErrBadColumn) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Two sensors of one type are two sensors: a flat line on one opens its own alarm, stuck,
// and the other stays quiet.
func TestRunMachineJudgesEachColumnAsASensor(t *testing.T) {
	var in strings.Builder
	in.WriteString("timestamp,left,right,anomaly\n")
	for i := range 600 {
		left := 70 + 0.5*float64((i*7)%5-2) + 0.01*float64(i%3)
		right := 70 + 0.5*float64((i*3)%7-3)
		if i >= 400 {
			left = 70.25
		}
		in.WriteString(strconv.Itoa(1_795_766_400+i) + "," + strconvF(left) + "," + strconvF(right) + ",0\n")
	}
	cols := []backtest.Column{mustColumn(t, "left=temperature"), mustColumn(t, "right=temperature")}
	set, err := rules.Uniform(rules.Rules{Detector: anomaly.DefaultConfig, Alarm: alarm.DefaultRules})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sum, err := backtest.RunMachine(context.Background(), strings.NewReader(in.String()), &out, cols, set)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if lines[0] != backtest.MachineHeader || len(lines) != 1+2*600 {
		t.Fatalf("%d lines, header %q", len(lines), lines[0])
	}
	if sum.Rows != 600 || sum.Sensors[0].Opened != 1 || sum.Sensors[1].Opened != 0 || sum.Openings != 1 || sum.Incidents != 1 {
		t.Fatalf("summary %+v", sum)
	}
	var opening string
	for _, l := range lines {
		if strings.Contains(l, ",true,ACTIVE,") {
			opening = l
		}
	}
	if !strings.Contains(opening, ",left,temperature,") {
		t.Errorf("the opening %q is not on the left sensor", opening)
	}
	var report strings.Builder
	if err := sum.Report(&report); err != nil || !strings.Contains(report.String(), "alarm openings 1") {
		t.Errorf("report %v:\n%s", err, report.String())
	}
}

func TestTableReaderErrors(t *testing.T) {
	cols := []backtest.Column{mustColumn(t, "v=pressure")}
	for name, c := range map[string]struct{ in, want string }{
		"no time column":   {"when;v\n1;2\n", "no timestamp or datetime column"},
		"missing column":   {"timestamp,w\n1,2\n", `no column "v"`},
		"not a number":     {"timestamp,v\n1795766400,x\n", `line 2, column v: "x" is not a number`},
		"bad label":        {"timestamp,v,anomaly\n1795766400,1,2\n", `line 2, column anomaly: "2" is not a label`},
		"two time columns": {"timestamp,datetime,v\n1,2,3\n", "two time columns"},
	} {
		_, err := backtest.RunMachine(context.Background(), strings.NewReader(c.in), &strings.Builder{}, cols,
			mustSet(t))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

func mustSet(t *testing.T) rules.Set {
	t.Helper()
	set, err := rules.Uniform(rules.Rules{Detector: anomaly.DefaultConfig, Alarm: alarm.DefaultRules})
	if err != nil {
		t.Fatal(err)
	}
	return set
}
