package bootstrap_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/bootstrap"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// loadRules writes content to a file named name, points PLM_RULES_FILE at it (with the other
// variables of vars) and loads the rules.
func loadRules(t *testing.T, name, content string, vars map[string]string) (rules.Set, error) {
	t.Helper()
	m := map[string]string{}
	for k, v := range vars {
		m[k] = v
	}
	if name != "" {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		m["PLM_RULES_FILE"] = path
	}
	cfg, err := bootstrap.LoadConfig(env(m))
	if err != nil {
		t.Fatal(err)
	}
	return bootstrap.LoadRules(cfg)
}

func mustLoadRules(t *testing.T, name, content string, vars map[string]string) rules.Set {
	t.Helper()
	set, err := loadRules(t, name, content, vars)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func ptr(v float64) *float64 { return &v }

// equalRules compares two rules, limits by value.
func equalRules(a, b rules.Rules) bool {
	same := func(x, y *float64) bool { return (x == nil && y == nil) || (x != nil && y != nil && *x == *y) }
	return a.Detector == b.Detector && a.Alarm == b.Alarm && same(a.Limits.Min, b.Limits.Min) && same(a.Limits.Max, b.Limits.Max)
}

func TestRulesWithoutAFileAreTheEnvironmentsForEveryType(t *testing.T) {
	set := mustLoadRules(t, "", "", nil)
	want := rules.Rules{Detector: anomaly.DefaultConfig, Alarm: alarm.DefaultRules}
	for _, typ := range sensor.Types {
		if got := set.For(typ); !equalRules(got, want) {
			t.Errorf("%s: %+v, want %+v", typ, got, want)
		}
	}
	uniform, err := rules.Uniform(want)
	if err != nil {
		t.Fatal(err)
	}
	if set.Version() != uniform.Version() {
		t.Errorf("version %s, want %s", set.Version(), uniform.Version())
	}

	set = mustLoadRules(t, "", "", map[string]string{"PLM_WINDOW_SIZE": "50", "PLM_SEVERITY_LOW": "2.5",
		"PLM_ALARM_DEBOUNCE": "2/4", "PLM_ALARM_CLEAR_AFTER_TIME": "15m", "PLM_ALARM_FLAPPING": "3/1h"})
	want.Detector.WindowSize, want.Detector.Bands.Low = 50, 2.5
	want.Alarm.DebounceK, want.Alarm.DebounceM, want.Alarm.ClearAfterTime = 2, 4, 15*time.Minute
	want.Alarm.FlapCount, want.Alarm.FlapWindow = 3, time.Hour
	for _, typ := range sensor.Types {
		if got := set.For(typ); !equalRules(got, want) {
			t.Errorf("%s: %+v, want %+v", typ, got, want)
		}
	}
	if set.Version() == uniform.Version() {
		t.Error("other variables, same version")
	}
}

const rulesYAML = `# rules of the line
defaults:               # over the environment, for every type
  windowSize: 120
  severity: {low: 3.5, medium: 4.5}
  debounce: {k: 2}
  clearAfterTime: 5m
  flapping: {window: 1h}
types:
  temperature:          # over the defaults, for this type only
    limits: {min: -40, max: 150}
    windowSize: 200
    minSamples: 50
    debounce: {m: 3}
  pressure:
    limits:
      max: 12.5
`

const rulesJSON = `{
	"defaults": {
		"windowSize": 120,
		"severity": {"low": 3.5, "medium": 4.5},
		"debounce": {"k": 2},
		"clearAfterTime": "5m",
		"flapping": {"window": "1h"}
	},
	"types": {
		"temperature": {
			"limits": {"min": -40, "max": 150},
			"windowSize": 200,
			"minSamples": 50,
			"debounce": {"m": 3}
		},
		"pressure": {"limits": {"max": 12.5}}
	}
}
`

// The environment, then the file's defaults, then each type's section.
func checkLayeredRules(t *testing.T, set rules.Set) {
	t.Helper()
	// From the environment: clearAfter 20, openAtZ 8, critical 6; left alone by the file.
	defaults := rules.Rules{
		Detector: anomaly.Config{WindowSize: 120, MinSamples: 30, Bands: anomaly.Bands{Low: 3.5, Medium: 4.5, Critical: 6},
			Checks: anomaly.DefaultChecks},
		Alarm: alarm.Rules{DebounceK: 2, DebounceM: 5, DebounceZ: alarm.DefaultRules.DebounceZ, OpenAtZ: 8, ClearBelow: 2, ClearAfter: 20,
			ClearAfterTime: 5 * time.Minute, FlapCount: 5, FlapWindow: time.Hour},
	}
	temperature := defaults
	temperature.Detector.WindowSize, temperature.Detector.MinSamples = 200, 50
	temperature.Alarm.DebounceM = 3
	temperature.Limits = rules.Limits{Min: ptr(-40), Max: ptr(150)}
	pressure := defaults
	pressure.Limits = rules.Limits{Max: ptr(12.5)}
	for typ, want := range map[sensor.Type]rules.Rules{sensor.Temperature: temperature, sensor.Pressure: pressure,
		sensor.Vibration: defaults, sensor.Voltage: defaults} {
		if got := set.For(typ); !equalRules(got, want) {
			t.Errorf("%s:\n got  %+v\n want %+v", typ, got, want)
		}
	}
}

var layeredEnv = map[string]string{"PLM_ALARM_CLEAR_AFTER": "20", "PLM_ALARM_OPEN_AT_Z": "8", "PLM_SEVERITY_CRITICAL": "6"}

func TestRulesFileOverridesTheEnvironmentThenEachType(t *testing.T) {
	checkLayeredRules(t, mustLoadRules(t, "rules.yaml", rulesYAML, layeredEnv))
}

// JSON is YAML: the same rules written as JSON (indented with tabs) are the same set.
func TestRulesFileInJSON(t *testing.T) {
	set := mustLoadRules(t, "rules.json", rulesJSON, layeredEnv)
	checkLayeredRules(t, set)
	if yml := mustLoadRules(t, "rules.yaml", rulesYAML, layeredEnv); set.Version() != yml.Version() {
		t.Errorf("JSON version %s, YAML version %s", set.Version(), yml.Version())
	}
}

// The version is a hash of the rules: comments, layout, order and quoting do not change it,
// any rule does, and a file that only restates the environment's rules changes nothing.
func TestRulesVersionFollowsTheContentNotTheFormatting(t *testing.T) {
	base := mustLoadRules(t, "rules.yaml", rulesYAML, layeredEnv).Version()
	reformatted := `types: {pressure: {limits: {max: 1.25e1}}, temperature: {debounce: {m: 3}, minSamples: 50,
  windowSize: 200, limits: {max: 150.0, min: -40}}}   # types first, flow style
defaults:
  flapping:
    window: "60m"
  clearAfterTime: 300s
  debounce:
    k: 2
  severity:
    medium: 4.5
    low: 3.5
  windowSize: 120
`
	if v := mustLoadRules(t, "other.yaml", reformatted, layeredEnv).Version(); v != base {
		t.Errorf("reformatted: version %s, want %s", v, base)
	}
	for name, content := range map[string]string{
		"a limit":        strings.Replace(rulesYAML, "max: 12.5", "max: 12.6", 1),
		"a default":      strings.Replace(rulesYAML, "clearAfterTime: 5m", "clearAfterTime: 6m", 1),
		"a type's rule":  strings.Replace(rulesYAML, "minSamples: 50", "minSamples: 51", 1),
		"one more limit": rulesYAML + "  voltage:\n    limits: {min: 200}\n",
	} {
		if v := mustLoadRules(t, "rules.yaml", content, layeredEnv).Version(); v == base {
			t.Errorf("%s changed, version did not", name)
		}
	}
	none := mustLoadRules(t, "", "", nil).Version()
	for name, content := range map[string]string{
		"empty":         "",
		"comments only": "# nothing yet\n",
		"restated":      "defaults: {windowSize: 100, minSamples: 30, clearAfterTime: 0}\ntypes: {voltage: {openAtZ: 20}}\n",
	} {
		if v := mustLoadRules(t, "rules.yaml", content, nil).Version(); v != none {
			t.Errorf("%s: version %s, want the environment's %s", name, v, none)
		}
	}
}

func TestRulesFileErrorsNameTheFileAndTheField(t *testing.T) {
	cases := []struct {
		name, content string
		want          []string // each problem, after "rules file rules.yaml: " when it is the only one
	}{
		{"minSamples over the type's windowSize", "types:\n  temperature:\n    windowSize: 200\n    minSamples: 250\n",
			[]string{"types.temperature.minSamples: must not exceed windowSize (200)"}},
		{"minSamples over the environment's windowSize", "types:\n  vibration:\n    minSamples: 150\n",
			[]string{"types.vibration.minSamples: must not exceed windowSize (100, from PLM_WINDOW_SIZE)"}},
		{"windowSize under the defaults' minSamples", "defaults: {minSamples: 40}\ntypes: {voltage: {windowSize: 35}}\n",
			[]string{"types.voltage.windowSize: must not be below minSamples (40, from defaults.minSamples)"}},
		{"defaults in conflict, reported once", "defaults: {minSamples: 150}\n",
			[]string{"defaults.minSamples: must not exceed windowSize (100, from PLM_WINDOW_SIZE)"}},
		{"a declared sensor type without its unit", "types:\n  humidity: {windowSize: 50}\n",
			[]string{`types.humidity: a sensor type beyond the contract's (temperature, vibration, pressure, voltage) needs its unit: give unit`}},
		{"a name that cannot be a sensor type", "types:\n  Rel Humidity: {unit: '%'}\n",
			[]string{`types.Rel Humidity: "Rel Humidity" cannot name a sensor type (1 to 32 lowercase letters, digits, '_' or '-', starting with a letter); the contract's types are temperature, vibration, pressure, voltage`}},
		{"a unit for a contract type", "types:\n  pressure: {unit: psi}\n",
			[]string{`types.pressure.unit: the unit is given only for a type beyond the contract's four`}},
		{"a unit in the defaults", "defaults:\n  unit: psi\n",
			[]string{`defaults.unit: a unit is given per declared sensor type: under types.<type>.unit`}},
		{"a check out of range", "defaults:\n  checks: {stuck: 1, rate: {limit: 0.5}, variance: {ratio: 1}, drift: {memory: 1}, bogus: 2}\n",
			[]string{`defaults.checks.stuck: must be 2 readings or more, or 0 to turn the check off`,
				`defaults.checks.rate.limit: must be above 1, or 0 to turn the check off`,
				`defaults.checks.variance.ratio: must be above 1, or 0 to turn the check off`,
				`defaults.checks.drift.memory: must be a whole number from 2 to 100000, not "1"`,
				`defaults.checks.bogus: unknown field (the fields are stuck, rate, drift, variance, clampZ)`}},
		{"unknown top-level field", "default: {windowSize: 50}\n",
			[]string{"default: unknown field (the fields are defaults, types and machines)"}},
		{"unknown field in defaults", "defaults: {windowsize: 50}\n",
			[]string{"defaults.windowsize: unknown field (the fields are windowSize, minSamples, severity, limits, debounce, openAtZ, clearBelow, clearAfter, clearAfterTime, flapping, checks)"}},
		{"unknown field in a type", "types: {pressure: {limits: {max: 10, maximum: 11}}}\n",
			[]string{"types.pressure.limits.maximum: unknown field (the fields are min, max)"}},
		{"bad duration", "defaults: {clearAfterTime: soon}\n",
			[]string{`defaults.clearAfterTime: must be a duration such as 90s, 5m or 1h, or 0 for off, not "soon"`}},
		{"duration without unit", "types: {voltage: {flapping: {window: 300}}}\n",
			[]string{`types.voltage.flapping.window: must be a positive duration such as 90s, 5m or 1h, not "300"`}},
		{"min equal to max", "types:\n  temperature:\n    limits: {min: 150, max: 150}\n",
			[]string{"types.temperature.limits.min: must be below limits.max (150)"}},
		{"min above max", "types:\n  temperature:\n    limits: {min: 150, max: -40}\n",
			[]string{"types.temperature.limits.min: must be below limits.max (-40)"}},
		{"limits in defaults", "defaults: {limits: {max: 100}}\n",
			[]string{"defaults.limits: limits are per sensor type: give them under types.<type>.limits"}},
		{"non-finite limit", "types: {pressure: {limits: {max: .inf}}}\n",
			[]string{`types.pressure.limits.max: must be a finite number, not ".inf"`}},
		{"severity out of order", "types: {pressure: {severity: {medium: 6}}}\n",
			[]string{"types.pressure.severity.medium: must not exceed severity.critical (5, from PLM_SEVERITY_CRITICAL)"}},
		{"debounce k over m", "defaults: {debounce: {k: 4, m: 3}}\n",
			[]string{"defaults.debounce.k: must not exceed debounce.m (3)"}},
		{"debounce m over 64", "defaults: {debounce: {m: 65}}\n",
			[]string{`defaults.debounce.m: must be a whole number from 1 to 64, not "65"`}},
		{"fraction for a count", "defaults: {clearAfter: 2.5}\n",
			[]string{`defaults.clearAfter: must be a whole number from 1 to 1000000, not "2.5"`}},
		{"quoted number", `{"defaults": {"windowSize": "100"}}`,
			[]string{`defaults.windowSize: must be a whole number from 2 to 100000, not "100"`}},
		{"negative openAtZ", "defaults: {openAtZ: -1}\n",
			[]string{"defaults.openAtZ: must be a positive number, or 0 for never, not -1"}},
		{"zero clearBelow", "defaults: {clearBelow: 0}\n",
			[]string{"defaults.clearBelow: must be a positive number, not 0"}},
		{"flapping count of 1", "defaults: {flapping: {count: 1}}\n",
			[]string{`defaults.flapping.count: must be a whole number from 2 to 1000000, not "1"`}},
		{"a list for a section", "types:\n  - temperature\n",
			[]string{"types: must be a mapping of sensor types, not a list"}},
		{"a mapping for a number", "defaults: {windowSize: {value: 100}}\n",
			[]string{"defaults.windowSize: must be a whole number from 2 to 100000, not a mapping"}},
		{"not a mapping at all", "just words\n",
			[]string{`the file: must be a mapping of defaults, types and machines, not "just words"`}},
		{"key given twice", "defaults:\n  windowSize: 50\n  windowSize: 60\n",
			[]string{"defaults.windowSize: given twice (lines 2 and 3)"}},
		{"syntax error", "defaults:\n  windowSize: 50\n  minSamples: 30: 40\n",
			[]string{"line 3: mapping values are not allowed in this context"}},
		{"every problem at once", "defaults: {windowSize: 1, bogus: 2}\ntypes: {humidity: {}, voltage: {limits: {min: x}}}\n",
			[]string{`defaults.windowSize: must be a whole number from 2 to 100000, not "1"`,
				"defaults.bogus: unknown field", `types.humidity: a sensor type beyond the contract's`,
				`types.voltage.limits.min: must be a finite number, not "x"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadRules(t, "rules.yaml", c.content, nil)
			if !errors.Is(err, bootstrap.ErrInvalidRules) {
				t.Fatalf("err = %v, want ErrInvalidRules", err)
			}
			msg := err.Error()
			if len(c.want) == 1 && !strings.HasSuffix(msg, "rules.yaml: "+c.want[0]) {
				t.Errorf("error:\n  %s\nwant it to end with\n  rules file …/rules.yaml: %s", msg, c.want[0])
			}
			if !strings.HasPrefix(msg, "rules file ") || !strings.Contains(msg, "rules.yaml") {
				t.Errorf("error %q does not name the file", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error:\n  %s\ndoes not say\n  %s", msg, w)
				}
			}
			if n := strings.Count(msg, "\n"); len(c.want) > 1 && n != len(c.want) {
				t.Errorf("%d lines for %d problems:\n%s", n, len(c.want), msg)
			}
		})
	}
}

func TestMissingRulesFileIsAnError(t *testing.T) {
	cfg, err := bootstrap.LoadConfig(env(map[string]string{"PLM_RULES_FILE": filepath.Join(t.TempDir(), "absent.yaml")}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bootstrap.LoadRules(cfg); err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Fatalf("err = %v, want one naming the file", err)
	}
}

// A machine's section overrides the type's rules on that machine only, defaults first, then
// each type; the version covers it, and a section that changes nothing leaves the version.
func TestRulesFileOverridesPerMachine(t *testing.T) {
	content := rulesYAML + `machines:
  press-07:
    defaults: {openAtZ: 30}
    types:
      temperature:
        checks: {drift: {limit: 6}}
        limits: {max: 120}
`
	set := mustLoadRules(t, "rules.yaml", content, layeredEnv)
	checkLayeredRules(t, set) // the types' own rules are untouched
	got := set.ForSensor("press-07", sensor.Temperature)
	want := set.For(sensor.Temperature)
	want.Alarm.OpenAtZ, want.Detector.Checks.DriftLimit, want.Limits.Max = 30, 6, ptr(120)
	if !equalRules(got, want) {
		t.Errorf("press-07 temperature:\n got  %+v\n want %+v", got, want)
	}
	if p := set.ForSensor("press-07", sensor.Pressure); p.Alarm.OpenAtZ != 30 || p.Detector.Checks.DriftLimit != anomaly.DefaultChecks.DriftLimit {
		t.Errorf("press-07 pressure: %+v, want openAtZ 30 and the default drift", p)
	}
	if !equalRules(set.ForSensor("press-08", sensor.Temperature), set.For(sensor.Temperature)) {
		t.Error("another machine got press-07's rules")
	}
	base := mustLoadRules(t, "rules.yaml", rulesYAML, layeredEnv).Version()
	if set.Version() == base {
		t.Error("a machine's override did not change the version")
	}
	same := rulesYAML + "machines:\n  press-07:\n    types:\n      pressure: {limits: {max: 12.5}}\n"
	if v := mustLoadRules(t, "rules.yaml", same, layeredEnv).Version(); v != base {
		t.Errorf("an override that restates the rules changed the version: %s, want %s", v, base)
	}
	for name, c := range map[string]struct{ content, want string }{
		"bad id":        {"machines:\n  'press 07': {}\n", `machines.press 07: "press 07" is not an equipment id`},
		"unknown type":  {"machines:\n  press-07: {types: {humidity: {windowSize: 50}}}\n", `machines.press-07.types.humidity: unknown sensor type "humidity"`},
		"unknown field": {"machines:\n  press-07: {checks: {}}\n", "machines.press-07.checks: unknown field (the fields are defaults and types)"},
		"a unit":        {"machines:\n  press-07: {types: {pressure: {unit: psi}}}\n", "machines.press-07.types.pressure.unit: a machine does not change a type's unit"},
		"out of order":  {"machines:\n  press-07: {types: {pressure: {minSamples: 500}}}\n", "machines.press-07.types.pressure.minSamples: must not exceed windowSize"},
	} {
		_, err := loadRules(t, "rules.yaml", c.content, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}
