// Package simulator is a plant to point at the service: equipment whose sensors read
// realistic values, with faults planted where the detector should find them, and the load
// generator and checks that drive a running service with it.
package simulator

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/production-line-monitor/plm/domain/sensor"
)

// Scenario is a kind of event the plant can play.
type Scenario string

// The scenarios.
const (
	// Spike: a single reading far above the sensor's normal range.
	Spike Scenario = "spike"
	// Drop: a single reading far below it.
	Drop Scenario = "drop"
	// Drift: a sensor degrading, slowly at first and faster and faster, as wear does; the
	// detector must flag it before it is over.
	Drift Scenario = "drift"
	// Silent: equipment stops sending; the service must call it OFFLINE.
	Silent Scenario = "silent"
	// Burst: the line sends four times its rate for two seconds in every twenty.
	Burst Scenario = "burst"
)

// Scenarios lists every scenario.
var Scenarios = []Scenario{Spike, Drop, Drift, Silent, Burst}

// ParseScenarios reads a comma-separated list of scenarios; "all" is every one, "none" or
// "" is none.
func ParseScenarios(s string) ([]Scenario, error) {
	switch strings.TrimSpace(s) {
	case "all":
		return slices.Clone(Scenarios), nil
	case "", "none":
		return nil, nil
	}
	var out []Scenario
	for _, name := range strings.Split(s, ",") {
		sc := Scenario(strings.TrimSpace(name))
		if !slices.Contains(Scenarios, sc) {
			return nil, fmt.Errorf("unknown scenario %q (known: spike, drop, drift, silent, burst, all, none)", name)
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// profile is the normal behaviour of one sensor type.
type profile struct {
	unit          string
	low, high     float64 // where a sensor's level lies
	noise         float64 // standard deviation of the noise
	dailyCycle    float64 // amplitude of the slow cycle over a day
	spikeLo, spHi float64 // planted spikes and drops, in noise deviations
}

var profiles = map[sensor.Type]profile{
	sensor.Temperature: {unit: "celsius", low: 55, high: 85, noise: 0.5, dailyCycle: 3, spikeLo: 6, spHi: 12},
	sensor.Vibration:   {unit: "mm/s", low: 2, high: 6, noise: 0.15, dailyCycle: 0.3, spikeLo: 6, spHi: 12},
	sensor.Pressure:    {unit: "bar", low: 4, high: 8, noise: 0.05, dailyCycle: 0.2, spikeLo: 6, spHi: 12},
	sensor.Voltage:     {unit: "volt", low: 228, high: 232, noise: 0.8, dailyCycle: 0.5, spikeLo: 6, spHi: 12},
}

// The shape of planted events, in readings of the sensor concerned.
const (
	warmUp       = 40  // no event before a sensor's 40th reading: the detector judges from the 31st
	eventGap     = 25  // at least this many readings between two events of one sensor
	spikeOdds    = 150 // a spike or drop at one reading in this many, where allowed
	driftStart   = 35  // a drift starts between this reading ...
	driftSpread  = 20  // ... and this many later
	driftLength  = 25  // it grows for this many readings
	driftGrowth  = 5.0 // e-folding of its growth, in readings
	driftScale   = 0.2 // times the noise deviation: 0.2·(e⁵−1) ≈ 30 deviations at its end
	driftSettled = 100 // readings after its end in which anomalies are the drift's (a window)
	driftShare   = 20  // one sensor in this many drifts
	silentShare  = 10  // one equipment in this many falls silent
)

// Burst timing: the rate is multiplied by BurstFactor for BurstLength in every BurstEvery.
const (
	BurstFactor = 4
	BurstLength = 2 * time.Second
	BurstEvery  = 20 * time.Second
)

// Config describes a plant.
type Config struct {
	Seed      uint64
	Equipment int        // how many pieces of equipment, each with the four sensor types
	Prefix    string     // equipment ids are Prefix + "-" + a number
	Scenarios []Scenario // which events to play
	Start     time.Time  // the start of the run: silences are measured from it
	// SilentFrom is when, after Start, silent equipment stops sending; SilentFor is for how
	// long (zero: to the end).
	SilentFrom, SilentFor time.Duration
}

// ErrConfig is returned for a plant that cannot be built.
var ErrConfig = errors.New("invalid simulation")

// Reading is one reading of the plant, in the webhook's terms.
type Reading struct {
	ID          string
	EquipmentID string
	Type        sensor.Type
	Unit        string
	Value       float64
	Timestamp   time.Time
}

// Event is a planted spike or drop: the reading the detector should flag.
type Event struct {
	Kind        Scenario
	EquipmentID string
	Type        sensor.Type
	Timestamp   time.Time
	Value       float64
}

// Episode is a planted drift: it grows from Start to End, and anomalies of its sensor until
// Settled (a window's worth of readings later, or the last reading sent) are its own.
type Episode struct {
	EquipmentID string
	Type        sensor.Type
	Start, End  time.Time
	Settled     time.Time
	Readings    int  // readings of the growth sent
	Complete    bool // whether all of the growth was sent
}

// Truth is what the plant planted, for the checks after a run.
type Truth struct {
	Events   []Event
	Drifts   []Episode
	Silent   map[string]time.Time // silent equipment, and when it last sent
	Readings int                  // readings produced
}

type simSensor struct {
	equipment int // index into Plant.ids
	typ       sensor.Type
	prof      profile
	level     float64
	phase     float64
	rng       *rand.Rand

	ticks      int // readings produced
	lastEvent  int
	driftAt    int // reading at which a drift starts, or -1
	driftIndex int // into truth.Drifts once started, or -1
}

// Plant produces the readings of a line, one sensor after another in a fixed round, and
// records the truth of what it planted. It is deterministic: the same Config produces the
// same values in the same order (timestamps follow the times asked for). It is not safe for
// concurrent use.
type Plant struct {
	cfg     Config
	ids     []string
	sensors []*simSensor
	silent  []bool
	next    int // into sensors: the next in the round
	seq     int
	enabled map[Scenario]bool
	truth   Truth
}

// NewPlant builds the plant of cfg.
func NewPlant(cfg Config) (*Plant, error) {
	if cfg.Equipment < 1 {
		return nil, fmt.Errorf("%w: at least one piece of equipment is needed", ErrConfig)
	}
	if cfg.Prefix == "" || !sensor.EquipmentIDPattern.MatchString(cfg.Prefix) ||
		len(cfg.Prefix)+8 > sensor.MaxEquipmentIDLen {
		return nil, fmt.Errorf("%w: equipment prefix %q must be an equipment id of at most %d characters",
			ErrConfig, cfg.Prefix, sensor.MaxEquipmentIDLen-8)
	}
	p := &Plant{cfg: cfg, enabled: map[Scenario]bool{}, truth: Truth{Silent: map[string]time.Time{}}}
	for _, s := range cfg.Scenarios {
		p.enabled[s] = true
	}
	pick := rand.New(rand.NewPCG(cfg.Seed, 0x706c616e74)) // the plant's own choices
	p.silent = make([]bool, cfg.Equipment)
	if p.enabled[Silent] && cfg.Equipment > 1 {
		for _, e := range pick.Perm(cfg.Equipment)[:max(1, cfg.Equipment/silentShare)] {
			p.silent[e] = true
		}
	}
	for e := range cfg.Equipment {
		p.ids = append(p.ids, fmt.Sprintf("%s-%04d", cfg.Prefix, e+1))
	}
	// The round takes one sensor type of every machine, then the next type: each machine
	// sends four times per round, evenly spread.
	for _, t := range sensor.Types {
		for e := range cfg.Equipment {
			prof := profiles[t]
			i := len(p.sensors)
			p.sensors = append(p.sensors, &simSensor{
				equipment: e, typ: t, prof: prof,
				level:   prof.low + pick.Float64()*(prof.high-prof.low),
				phase:   pick.Float64() * 2 * math.Pi,
				rng:     rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1)),
				driftAt: -1, driftIndex: -1, lastEvent: -eventGap,
			})
		}
	}
	if p.enabled[Drift] {
		for _, i := range pick.Perm(len(p.sensors))[:max(1, len(p.sensors)/driftShare)] {
			p.sensors[i].driftAt = driftStart + pick.IntN(driftSpread)
		}
	}
	return p, nil
}

// EquipmentIDs lists the plant's equipment.
func (p *Plant) EquipmentIDs() []string { return p.ids }

// Prefix is the equipment ids' prefix.
func (p *Plant) Prefix() string { return p.cfg.Prefix }

// Sensors is how many sensors the plant has.
func (p *Plant) Sensors() int { return len(p.sensors) }

// Truth is what was planted so far.
func (p *Plant) Truth() Truth { return p.truth }

// Next returns the reading of the next sensor in the round, measured at at (to the
// millisecond, as the API answers). It returns false for a sensor of silent equipment
// during its silence: the caller skips the slot, or asks again at the same time to keep
// the line's rate.
func (p *Plant) Next(at time.Time) (Reading, bool) {
	at = at.Truncate(time.Millisecond)
	s := p.sensors[p.next]
	p.next = (p.next + 1) % len(p.sensors)
	if p.silent[s.equipment] && p.silenced(at) {
		return Reading{}, false
	}
	p.seq++
	r := Reading{
		ID:          strconv.Itoa(p.seq),
		EquipmentID: p.ids[s.equipment],
		Type:        s.typ,
		Unit:        s.prof.unit,
		Timestamp:   at,
	}
	r.Value = p.value(s, at)
	s.ticks++
	p.truth.Readings++
	if p.silent[s.equipment] {
		p.truth.Silent[r.EquipmentID] = at
	}
	return r, true
}

// value is sensor s's value at its current reading, planting what is due.
func (p *Plant) value(s *simSensor, at time.Time) float64 {
	day := float64(at.UTC().Sub(at.UTC().Truncate(24*time.Hour))) / float64(24*time.Hour)
	normal := s.level + s.prof.dailyCycle*math.Sin(2*math.Pi*day+s.phase)
	v := normal + s.rng.NormFloat64()*s.prof.noise
	roll := s.rng.IntN(spikeOdds) // drawn for every reading, so that enabling one scenario
	sign := s.rng.IntN(2)         // does not change the values of another
	size := s.prof.spikeLo + s.rng.Float64()*(s.prof.spHi-s.prof.spikeLo)

	if s.driftAt >= 0 {
		return p.drift(s, at, v)
	}
	if s.ticks < warmUp || s.ticks-s.lastEvent < eventGap || roll != 0 {
		return v
	}
	kind := Spike
	if sign == 1 {
		kind = Drop
	}
	if !p.enabled[kind] {
		return v
	}
	if kind == Drop {
		size = -size
	}
	v = normal + size*s.prof.noise
	s.lastEvent = s.ticks
	p.truth.Events = append(p.truth.Events, Event{Kind: kind, EquipmentID: p.ids[s.equipment],
		Type: s.typ, Timestamp: at, Value: v})
	return v
}

// drift adds a drifting sensor's degradation to v: it grows as e^(i/driftGrowth) for
// driftLength readings, then holds.
func (p *Plant) drift(s *simSensor, at time.Time, v float64) float64 {
	i := s.ticks - s.driftAt + 1
	if i < 1 {
		return v
	}
	if i == 1 {
		s.driftIndex = len(p.truth.Drifts)
		p.truth.Drifts = append(p.truth.Drifts, Episode{EquipmentID: p.ids[s.equipment], Type: s.typ, Start: at})
	}
	ep := &p.truth.Drifts[s.driftIndex]
	if i <= driftLength {
		ep.End, ep.Readings, ep.Complete = at, i, i == driftLength
	}
	if i <= driftLength+driftSettled {
		ep.Settled = at
	}
	grown := min(i, driftLength)
	return v + driftScale*s.prof.noise*(math.Exp(float64(grown)/driftGrowth)-1)
}

// silenced reports whether silent equipment is silent at at: from SilentFrom after the
// start, for SilentFor (zero: to the end).
func (p *Plant) silenced(at time.Time) bool {
	since := at.Sub(p.cfg.Start)
	return since >= p.cfg.SilentFrom && (p.cfg.SilentFor == 0 || since < p.cfg.SilentFrom+p.cfg.SilentFor)
}

// RateAt is the plant's rate at a moment of the run, for a base rate: BurstFactor times
// higher during a burst.
func (p *Plant) RateAt(base float64, since time.Duration) float64 {
	if p.enabled[Burst] && since%BurstEvery >= BurstEvery-BurstLength {
		return base * BurstFactor
	}
	return base
}
