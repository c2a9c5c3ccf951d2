package bootstrap

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// ErrInvalidRules is wrapped by the errors of LoadRules on a rules file it refuses.
var ErrInvalidRules = errors.New("invalid rules")

// RulesFileError is a rules file that LoadRules refuses: every problem found, each naming
// the field by its path in the file (types.temperature.minSamples).
type RulesFileError struct {
	File     string
	Problems []string // "path: what is wrong"
}

func (e *RulesFileError) Error() string {
	if len(e.Problems) == 1 {
		return fmt.Sprintf("rules file %s: %s", e.File, e.Problems[0])
	}
	return fmt.Sprintf("rules file %s: %d problems:\n  %s", e.File, len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// Unwrap makes the error match ErrInvalidRules.
func (e *RulesFileError) Unwrap() error { return ErrInvalidRules }

// LoadRules assembles the rules of every sensor type: the environment's defaults
// (cfg.Detector, cfg.Alarm), then, when cfg.RulesFile names a file, its defaults over them
// and each type's section over those. The file is YAML (JSON is YAML too), decoded
// strictly: an unknown field, sensor type or bad value is an error naming the file and the
// field's path, and so is a combination that is not valid (minSamples above windowSize).
func LoadRules(cfg Config) (rules.Set, error) {
	base := envSettings(cfg)
	if cfg.RulesFile == "" {
		set, err := rules.Uniform(base.rules())
		if err != nil {
			return rules.Set{}, fmt.Errorf("rules from the environment: %w", err)
		}
		return set, nil
	}
	raw, err := os.ReadFile(cfg.RulesFile)
	if err != nil {
		return rules.Set{}, fmt.Errorf("read rules file: %w", err)
	}
	return parseRules(cfg.RulesFile, raw, base)
}

// setting is one rule's value and where it was set: a field's path in the file or the
// environment variable; "" when nothing set it.
type setting[T any] struct {
	v   T
	src string
}

func (s setting[T]) set() bool { return s.src != "" }

// over replaces dst with s when s was set.
func over[T any](dst *setting[T], s setting[T]) {
	if s.set() {
		*dst = s
	}
}

// settings are the rules of one level (environment, file defaults, one type), each with
// where it came from.
type settings struct {
	windowSize, minSamples setting[int]
	low, medium, critical  setting[float64]
	min, max               setting[float64]
	debounceK, debounceM   setting[int]
	debounceZ              setting[float64]
	openAtZ, clearBelow    setting[float64]
	clearAfter             setting[int]
	clearAfterTime         setting[time.Duration]
	flapCount              setting[int]
	flapWindow             setting[time.Duration]
	unit                   setting[string] // of a declared type only
	stuck                  setting[int]
	rateLimit, driftLimit  setting[float64]
	varianceRatio, clampZ  setting[float64]
	rateMemory             setting[int]
	driftMemory            setting[int]
	driftBaseline          setting[int]
	varianceMemory         setting[int]
}

func envSettings(cfg Config) settings {
	d, a := cfg.Detector, cfg.Alarm
	return settings{
		windowSize:     setting[int]{d.WindowSize, "PLM_WINDOW_SIZE"},
		minSamples:     setting[int]{d.MinSamples, "PLM_MIN_SAMPLES"},
		low:            setting[float64]{d.Bands.Low, "PLM_SEVERITY_LOW"},
		medium:         setting[float64]{d.Bands.Medium, "PLM_SEVERITY_MEDIUM"},
		critical:       setting[float64]{d.Bands.Critical, "PLM_SEVERITY_CRITICAL"},
		debounceK:      setting[int]{a.DebounceK, "PLM_ALARM_DEBOUNCE"},
		debounceM:      setting[int]{a.DebounceM, "PLM_ALARM_DEBOUNCE"},
		debounceZ:      setting[float64]{a.DebounceZ, "PLM_ALARM_DEBOUNCE_Z"},
		openAtZ:        setting[float64]{a.OpenAtZ, "PLM_ALARM_OPEN_AT_Z"},
		clearBelow:     setting[float64]{a.ClearBelow, "PLM_ALARM_CLEAR_BELOW"},
		clearAfter:     setting[int]{a.ClearAfter, "PLM_ALARM_CLEAR_AFTER"},
		clearAfterTime: setting[time.Duration]{a.ClearAfterTime, "PLM_ALARM_CLEAR_AFTER_TIME"},
		flapCount:      setting[int]{a.FlapCount, "PLM_ALARM_FLAPPING"},
		flapWindow:     setting[time.Duration]{a.FlapWindow, "PLM_ALARM_FLAPPING"},
		// The checks have no variables: their defaults are the built-in ones.
		stuck:          setting[int]{d.Checks.StuckReadings, ""},
		rateLimit:      setting[float64]{d.Checks.RateLimit, ""},
		rateMemory:     setting[int]{d.Checks.RateMemory, ""},
		driftLimit:     setting[float64]{d.Checks.DriftLimit, ""},
		driftMemory:    setting[int]{d.Checks.DriftMemory, ""},
		driftBaseline:  setting[int]{d.Checks.DriftBaseline, ""},
		varianceRatio:  setting[float64]{d.Checks.VarianceRatio, ""},
		varianceMemory: setting[int]{d.Checks.VarianceMemory, ""},
		clampZ:         setting[float64]{d.Checks.ClampZ, ""},
	}
}

// with returns s with every rule that o sets replaced.
func (s settings) with(o settings) settings {
	over(&s.windowSize, o.windowSize)
	over(&s.minSamples, o.minSamples)
	over(&s.low, o.low)
	over(&s.medium, o.medium)
	over(&s.critical, o.critical)
	over(&s.min, o.min)
	over(&s.max, o.max)
	over(&s.debounceK, o.debounceK)
	over(&s.debounceZ, o.debounceZ)
	over(&s.debounceM, o.debounceM)
	over(&s.openAtZ, o.openAtZ)
	over(&s.clearBelow, o.clearBelow)
	over(&s.clearAfter, o.clearAfter)
	over(&s.clearAfterTime, o.clearAfterTime)
	over(&s.flapCount, o.flapCount)
	over(&s.flapWindow, o.flapWindow)
	over(&s.stuck, o.stuck)
	over(&s.rateLimit, o.rateLimit)
	over(&s.rateMemory, o.rateMemory)
	over(&s.driftLimit, o.driftLimit)
	over(&s.driftMemory, o.driftMemory)
	over(&s.driftBaseline, o.driftBaseline)
	over(&s.varianceRatio, o.varianceRatio)
	over(&s.varianceMemory, o.varianceMemory)
	over(&s.clampZ, o.clampZ)
	return s
}

func (s settings) rules() rules.Rules {
	r := rules.Rules{
		Detector: anomaly.Config{WindowSize: s.windowSize.v, MinSamples: s.minSamples.v,
			Bands: anomaly.Bands{Low: s.low.v, Medium: s.medium.v, Critical: s.critical.v},
			Checks: anomaly.Checks{StuckReadings: s.stuck.v, RateLimit: s.rateLimit.v, RateMemory: s.rateMemory.v,
				DriftLimit: s.driftLimit.v, DriftMemory: s.driftMemory.v, DriftBaseline: s.driftBaseline.v, VarianceRatio: s.varianceRatio.v,
				VarianceMemory: s.varianceMemory.v, ClampZ: s.clampZ.v}},
		Alarm: alarm.Rules{DebounceK: s.debounceK.v, DebounceM: s.debounceM.v, DebounceZ: s.debounceZ.v, OpenAtZ: s.openAtZ.v,
			ClearBelow: s.clearBelow.v, ClearAfter: s.clearAfter.v, ClearAfterTime: s.clearAfterTime.v,
			FlapCount: s.flapCount.v, FlapWindow: s.flapWindow.v},
	}
	if s.min.set() {
		v := s.min.v
		r.Limits.Min = &v
	}
	if s.max.set() {
		v := s.max.v
		r.Limits.Max = &v
	}
	return r
}

// specificity orders where a rule came from: a type's section, the file's defaults, the
// environment.
func specificity(src string) int {
	switch {
	case strings.HasPrefix(src, "machines.") && strings.Contains(src, ".types."):
		return 4
	case strings.HasPrefix(src, "machines."):
		return 3
	case strings.HasPrefix(src, "types."):
		return 2
	case strings.HasPrefix(src, "defaults."):
		return 1
	}
	return 0
}

// check finds the combinations of rules that do not go together, each reported at the more
// specific of the two rules (the one the file's author most likely has to change).
func (s settings) check(p *problems) {
	pair := func(lo, hi setting[float64], loName, hiName string) {
		if lo.v > hi.v {
			blame(p, lo, hi, loName, hiName)
		}
	}
	pairInt := func(lo, hi setting[int], loName, hiName string) {
		if lo.v > hi.v {
			blame(p, setting[float64]{float64(lo.v), lo.src}, setting[float64]{float64(hi.v), hi.src}, loName, hiName)
		}
	}
	pairInt(s.minSamples, s.windowSize, "minSamples", "windowSize")
	pair(s.low, s.medium, "severity.low", "severity.medium")
	pair(s.medium, s.critical, "severity.medium", "severity.critical")
	pairInt(s.debounceK, s.debounceM, "debounce.k", "debounce.m")
	if s.min.set() && s.max.set() && s.min.v >= s.max.v {
		blame(p, s.min, s.max, "limits.min", "limits.max")
	}
}

// blame reports lo above hi (or, for limits, not below it) at the more specific of the two.
func blame(p *problems, lo, hi setting[float64], loName, hiName string) {
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	from := func(at, other setting[float64]) string {
		if parent(at.src) == parent(other.src) {
			return num(other.v)
		}
		return num(other.v) + ", from " + other.src
	}
	strict := loName == "limits.min"
	if specificity(lo.src) >= specificity(hi.src) {
		if strict {
			p.add(lo.src, "must be below %s (%s)", hiName, from(lo, hi))
		} else {
			p.add(lo.src, "must not exceed %s (%s)", hiName, from(lo, hi))
		}
		return
	}
	if strict {
		p.add(hi.src, "must be above %s (%s)", loName, from(hi, lo))
	} else {
		p.add(hi.src, "must not be below %s (%s)", loName, from(hi, lo))
	}
}

// parent is the path of the section a field is in ("types.temperature.severity" for
// "types.temperature.severity.low"), or an environment variable's name.
func parent(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return path
}

// problems collects what is wrong with a file, once each.
type problems struct {
	list []string
	seen map[string]bool
}

func (p *problems) add(path, format string, args ...any) {
	msg := path + ": " + fmt.Sprintf(format, args...)
	if p.seen == nil {
		p.seen = make(map[string]bool)
	}
	if !p.seen[msg] {
		p.seen[msg] = true
		p.list = append(p.list, msg)
	}
}

// parseRules reads the file's content over the environment's settings.
func parseRules(file string, raw []byte, env settings) (rules.Set, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return rules.Set{}, &RulesFileError{File: file, Problems: []string{strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	var p problems
	var defaults settings
	byType := map[sensor.Type]settings{}
	type machineSettings struct {
		path     string
		defaults settings
		types    map[sensor.Type]settings
		paths    map[sensor.Type]string
	}
	machines := map[string]machineSettings{}
	if len(doc.Content) > 0 {
		root := doc.Content[0]
		fields(&p, root, "", "the top level", func(key string, v *yaml.Node, path string) {
			switch key {
			case "defaults":
				defaults = level(&p, v, path, false)
			case "types":
				fields(&p, v, path, "types", func(name string, v *yaml.Node, path string) {
					typ, err := sensor.ParseType(name)
					declared := err != nil
					if declared && !sensor.ValidTypeName(name) {
						p.add(path, "%q cannot name a sensor type (%s); the contract's types are %s", name, sensor.TypeNameRule, typeNames())
						return
					}
					if declared {
						typ = sensor.Type(name)
					}
					s := level(&p, v, path, true)
					switch {
					case declared && !s.unit.set():
						p.add(path, "a sensor type beyond the contract's (%s) needs its unit: give unit", typeNames())
					case !declared && s.unit.set():
						p.add(s.unit.src, "the unit is given only for a type beyond the contract's four")
					}
					byType[typ] = s
				})
			case "machines":
				fields(&p, v, path, "machines", func(id string, v *yaml.Node, path string) {
					if !sensor.ValidEquipmentID(id) {
						p.add(path, "%q is not an equipment id", id)
						return
					}
					m := machineSettings{path: path, types: map[sensor.Type]settings{}, paths: map[sensor.Type]string{}}
					fields(&p, v, path, "the machine", func(key string, v *yaml.Node, path string) {
						switch key {
						case "defaults":
							m.defaults = level(&p, v, path, false)
						case "types":
							fields(&p, v, path, "types", func(name string, v *yaml.Node, path string) {
								t := level(&p, v, path, true)
								if t.unit.set() {
									p.add(t.unit.src, "a machine does not change a type's unit: give it under types.%s.unit", name)
								}
								m.types[sensor.Type(name)], m.paths[sensor.Type(name)] = t, path
							})
						default:
							p.add(path, "unknown field (the fields are defaults and types)")
						}
					})
					machines[id] = m
				})
			default:
				p.add(path, "unknown field (the fields are defaults, types and machines)")
			}
		})
	}
	if len(p.list) > 0 {
		return rules.Set{}, &RulesFileError{File: file, Problems: p.list}
	}
	all := make(map[sensor.Type]rules.Rules, len(byType)+len(sensor.Types))
	for _, t := range sensor.Types {
		s := env.with(defaults).with(byType[t])
		s.check(&p)
		all[t] = s.rules()
	}
	for t, ts := range byType {
		if _, known := all[t]; known {
			continue
		}
		s := env.with(defaults).with(ts)
		s.check(&p)
		all[t] = s.rules()
		all[t] = withUnit(all[t], ts.unit.v)
	}
	if len(p.list) > 0 {
		return rules.Set{}, &RulesFileError{File: file, Problems: p.list}
	}
	overrides := make(map[string]map[sensor.Type]rules.Rules, len(machines))
	for id, m := range machines {
		for t, path := range m.paths {
			if _, ok := all[t]; !ok {
				p.add(path, "unknown sensor type %q (the types are %s, and those the file declares)", t, typeNames())
			}
		}
		byMachine := make(map[sensor.Type]rules.Rules, len(all))
		for t, r := range all {
			s := env.with(defaults).with(byType[t]).with(m.defaults).with(m.types[t])
			s.check(&p)
			byMachine[t] = withUnit(s.rules(), r.Unit)
		}
		overrides[id] = byMachine
	}
	if len(p.list) > 0 {
		return rules.Set{}, &RulesFileError{File: file, Problems: p.list}
	}
	set, err := rules.NewSet(all)
	if err == nil {
		set, err = set.WithFallback(env.with(defaults).rules())
	}
	if err == nil && len(overrides) > 0 {
		set, err = set.WithMachines(overrides)
	}
	if err != nil {
		// Every rule was checked above: this is a rule the checks do not know yet.
		return rules.Set{}, &RulesFileError{File: file, Problems: []string{err.Error()}}
	}
	return set, nil
}

func typeNames() string {
	names := make([]string, len(sensor.Types))
	for i, t := range sensor.Types {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// fields calls fn for each key of the mapping n (nothing for null), and reports a value
// that is not a mapping, a key given twice and a key that is not a plain string.
func fields(p *problems, n *yaml.Node, path, what string, fn func(key string, v *yaml.Node, path string)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		at := path
		if at == "" {
			at = "the file"
		}
		p.add(at, "must be a mapping of %s, not %s", fieldsOf(what), describe(n))
		return
	}
	lines := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		sub := k.Value
		if path != "" {
			sub = path + "." + k.Value
		}
		if k.Kind != yaml.ScalarNode || k.Value == "<<" {
			p.add(joinPath(path, fmt.Sprintf("(line %d)", k.Line)), "keys must be plain names (merge keys and complex keys are not supported)")
			continue
		}
		if first, dup := lines[k.Value]; dup {
			p.add(sub, "given twice (lines %d and %d)", first, k.Line)
			continue
		}
		lines[k.Value] = k.Line
		fn(k.Value, v, sub)
	}
}

func fieldsOf(what string) string {
	switch what {
	case "the top level":
		return "defaults, types and machines"
	case "the machine":
		return "defaults and types"
	case "types":
		return "sensor types"
	case "machines":
		return "equipment ids"
	}
	return what
}

func joinPath(path, s string) string {
	if path == "" {
		return s
	}
	return path + " " + s
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return resolve(n.Content[0])
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return fmt.Sprintf("%q", n.Value)
}

func withUnit(r rules.Rules, unit string) rules.Rules {
	r.Unit = unit
	return r
}

// levelFields are the fields of defaults and of a type's section.
const levelFields = "windowSize, minSamples, severity, limits, debounce, openAtZ, clearBelow, clearAfter, clearAfterTime, flapping, checks"

// checkFields are the fields of a checks section.
const checkFields = "stuck, rate, drift, variance, clampZ"

// level reads defaults (limits false) or a type's section.
func level(p *problems, n *yaml.Node, path string, limits bool) settings {
	var s settings
	fields(p, n, path, levelFields, func(key string, v *yaml.Node, path string) {
		switch key {
		case "windowSize":
			s.windowSize = intField(p, v, path, 2, 100_000)
		case "minSamples":
			s.minSamples = intField(p, v, path, 2, 100_000)
		case "severity":
			fields(p, v, path, "low, medium, critical", func(key string, v *yaml.Node, path string) {
				switch key {
				case "low":
					s.low = floatField(p, v, path, false)
				case "medium":
					s.medium = floatField(p, v, path, false)
				case "critical":
					s.critical = floatField(p, v, path, false)
				default:
					p.add(path, "unknown field (the fields are low, medium, critical)")
				}
			})
		case "limits":
			if !limits {
				p.add(path, "limits are per sensor type: give them under types.<type>.limits")
				return
			}
			fields(p, v, path, "min, max", func(key string, v *yaml.Node, path string) {
				switch key {
				case "min":
					s.min = anyFloatField(p, v, path)
				case "max":
					s.max = anyFloatField(p, v, path)
				default:
					p.add(path, "unknown field (the fields are min, max)")
				}
			})
		case "debounce":
			fields(p, v, path, "k, m, z", func(key string, v *yaml.Node, path string) {
				switch key {
				case "k":
					s.debounceK = intField(p, v, path, 1, 64)
				case "m":
					s.debounceM = intField(p, v, path, 1, 64)
				case "z":
					s.debounceZ = floatField(p, v, path, true)
				default:
					p.add(path, "unknown field (the fields are k, m, z)")
				}
			})
		case "checks":
			fields(p, v, path, checkFields, func(key string, v *yaml.Node, path string) {
				limitMemory := func(limit *setting[float64], memory *setting[int], limitName string, lo float64) {
					names := limitName + ", memory"
					if limitName == "limit" && memory == &s.driftMemory {
						names += ", baseline"
					}
					fields(p, v, path, names, func(key string, v *yaml.Node, path string) {
						switch {
						case key == "baseline" && memory == &s.driftMemory:
							s.driftBaseline = intField(p, v, path, 0, 1_000_000)
							return
						}
						switch key {
						case limitName:
							if f := floatField(p, v, path, true); f.set() && f.v != 0 && f.v <= lo {
								p.add(path, "must be above %g, or 0 to turn the check off", lo)
							} else {
								*limit = f
							}
						case "memory":
							*memory = intField(p, v, path, 2, 100_000)
						default:
							p.add(path, "unknown field (the fields are %s)", names)
						}
					})
				}
				switch key {
				case "stuck":
					if n := intField(p, v, path, 0, 1_000_000); n.set() && n.v == 1 {
						p.add(path, "must be 2 readings or more, or 0 to turn the check off")
					} else {
						s.stuck = n
					}
				case "rate":
					limitMemory(&s.rateLimit, &s.rateMemory, "limit", 1)
				case "drift":
					limitMemory(&s.driftLimit, &s.driftMemory, "limit", 0)
				case "variance":
					limitMemory(&s.varianceRatio, &s.varianceMemory, "ratio", 1)
				case "clampZ":
					s.clampZ = floatField(p, v, path, false)
				default:
					p.add(path, "unknown field (the fields are %s)", checkFields)
				}
			})
		case "unit":
			if !limits {
				p.add(path, "a unit is given per declared sensor type: under types.<type>.unit")
				return
			}
			if n, ok := scalar(p, v, path, fmt.Sprintf("a unit of 1 to %d characters", sensor.MaxUnitLen)); ok {
				if u := strings.TrimSpace(n.Value); u == "" || len([]rune(u)) > sensor.MaxUnitLen || strings.ContainsRune(u, 0) {
					p.add(path, "must be a unit of 1 to %d characters, not %s", sensor.MaxUnitLen, describe(n))
				} else {
					s.unit = setting[string]{u, path}
				}
			}
		case "openAtZ":
			s.openAtZ = floatField(p, v, path, true)
		case "clearBelow":
			s.clearBelow = floatField(p, v, path, false)
		case "clearAfter":
			s.clearAfter = intField(p, v, path, 1, 1_000_000)
		case "clearAfterTime":
			s.clearAfterTime = durationField(p, v, path, true)
		case "flapping":
			fields(p, v, path, "count, window", func(key string, v *yaml.Node, path string) {
				switch key {
				case "count":
					s.flapCount = intField(p, v, path, 2, 1_000_000)
				case "window":
					s.flapWindow = durationField(p, v, path, false)
				default:
					p.add(path, "unknown field (the fields are count, window)")
				}
			})
		default:
			p.add(path, "unknown field (the fields are %s)", levelFields)
		}
	})
	return s
}

// scalar returns n's value, or reports that it is not a single value.
func scalar(p *problems, n *yaml.Node, path, want string) (*yaml.Node, bool) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		got := "nothing"
		if n != nil && n.Kind != yaml.ScalarNode {
			got = describe(n)
		}
		p.add(path, "must be %s, not %s", want, got)
		return nil, false
	}
	return n, true
}

func intField(p *problems, n *yaml.Node, path string, lo, hi int) setting[int] {
	want := fmt.Sprintf("a whole number from %d to %d", lo, hi)
	n, ok := scalar(p, n, path, want)
	if !ok {
		return setting[int]{}
	}
	var v int
	if n.ShortTag() != "!!int" || n.Decode(&v) != nil || v < lo || v > hi {
		p.add(path, "must be %s, not %s", want, describe(n))
		return setting[int]{}
	}
	return setting[int]{v, path}
}

// floatField reads a positive number (orZero: or 0).
func floatField(p *problems, n *yaml.Node, path string, orZero bool) setting[float64] {
	want := "a positive number"
	if orZero {
		want = "a positive number, or 0 for never"
	}
	v, ok := number(p, n, path, want)
	if !ok {
		return setting[float64]{}
	}
	if v < 0 || (v == 0 && !orZero) {
		p.add(path, "must be %s, not %s", want, strconv.FormatFloat(v, 'g', -1, 64))
		return setting[float64]{}
	}
	return setting[float64]{v, path}
}

func anyFloatField(p *problems, n *yaml.Node, path string) setting[float64] {
	v, ok := number(p, n, path, "a finite number")
	if !ok {
		return setting[float64]{}
	}
	return setting[float64]{v, path}
}

func number(p *problems, n *yaml.Node, path, want string) (float64, bool) {
	n, ok := scalar(p, n, path, want)
	if !ok {
		return 0, false
	}
	var v float64
	if tag := n.ShortTag(); (tag != "!!int" && tag != "!!float") || n.Decode(&v) != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		p.add(path, "must be %s, not %s", want, describe(n))
		return 0, false
	}
	return v, true
}

// durationField reads a Go duration such as 90s or 5m (orZero: 0 too, for off).
func durationField(p *problems, n *yaml.Node, path string, orZero bool) setting[time.Duration] {
	want := "a positive duration such as 90s, 5m or 1h"
	if orZero {
		want = "a duration such as 90s, 5m or 1h, or 0 for off"
	}
	n, ok := scalar(p, n, path, want)
	if !ok {
		return setting[time.Duration]{}
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil || d < 0 || (d == 0 && !orZero) {
		p.add(path, "must be %s, not %s", want, describe(n))
		return setting[time.Duration]{}
	}
	return setting[time.Duration]{d, path}
}
