package anomaly

import (
	"errors"
	"time"

	"github.com/production-line-monitor/plm/domain/sensor"
)

// Config sets how the detector judges readings.
type Config struct {
	// WindowSize is how many previous readings of a sensor a new one is compared with.
	WindowSize int
	// MinSamples is how many readings the window must hold before any verdict.
	MinSamples int
	Bands      Bands
	// Checks are the tests beyond the z-score; they open alarms, they do not make a reading
	// anomalous.
	Checks Checks
}

// DefaultConfig is the contract's default: a window of 100, verdicts from 30 samples.
var DefaultConfig = Config{WindowSize: 100, MinSamples: 30, Bands: DefaultBands, Checks: DefaultChecks}

// ErrBadConfig is returned by Config.Validate.
var ErrBadConfig = errors.New("detector config needs 2 <= min samples <= window size")

// Validate checks the window sizes and bands.
func (c Config) Validate() error {
	if c.WindowSize < 2 || c.MinSamples < 2 || c.MinSamples > c.WindowSize {
		return ErrBadConfig
	}
	if err := c.Checks.Validate(); err != nil {
		return err
	}
	return c.Bands.Validate()
}

// maxWarmReadings bounds WarmReadings: checks with memories longer than that warm up from
// what they get.
const maxWarmReadings = 10_000

// WarmReadings is how many of a sensor's latest readings Warm needs so that the window is
// full and every check is past its warm-up (as many as it would have judged without a
// restart), at most 10,000.
func (c Config) WarmReadings() int {
	n := c.WindowSize
	k := c.Checks
	if k.StuckReadings > 0 {
		n = max(n, k.StuckReadings)
	}
	if k.RateLimit > 0 {
		n = max(n, k.RateMemory/4+1)
	}
	if k.DriftLimit > 0 {
		n = max(n, c.MinSamples+k.DriftMemory+k.DriftBaseline/4)
	}
	if k.VarianceRatio > 0 {
		n = max(n, 10*k.VarianceMemory+1)
	}
	return min(n, maxWarmReadings)
}

// Verdict is the detector's judgement of one reading.
type Verdict struct {
	// Judged is false while the window holds fewer than MinSamples values.
	Judged     bool
	Anomalous  bool
	Severity   Severity
	ZScore     float64
	Mean       float64
	StdDev     float64
	WindowSize int // how many values the reading was compared with
	// Finding is the check beyond the z-score that fired on the reading, if one did.
	Finding Finding
}

// Detector keeps one window per sensor and judges each new reading against the window as it
// was before the reading joined it. It is not safe for concurrent use: readings of one sensor
// must be judged in the order they arrived, by one goroutine.
type Detector struct {
	cfg     Config
	consts  checkConstants
	sensors map[sensor.Key]*sensorState
}

// sensorState is what the detector knows of one sensor.
type sensorState struct {
	window Window
	checks checkState
}

// NewDetector returns a detector with no history. cfg must be valid.
func NewDetector(cfg Config) *Detector {
	return &Detector{cfg: cfg, consts: constantsOf(cfg.Checks), sensors: make(map[sensor.Key]*sensorState)}
}

func (d *Detector) newState() *sensorState {
	return &sensorState{window: *NewWindow(d.cfg.WindowSize)}
}

// Config returns the detector's configuration.
func (d *Detector) Config() Config { return d.cfg }

// Knows reports whether the detector holds a window for the sensor.
func (d *Detector) Knows(k sensor.Key) bool {
	_, ok := d.sensors[k]
	return ok
}

// Warm replaces what the detector knows of the sensor with values, oldest first, as if it
// had judged them: the window keeps the last WindowSize, and the checks start from where
// the values leave them (give it WarmReadings values, when the sensor has that many).
func (d *Detector) Warm(k sensor.Key, values []float64) {
	s := d.newState()
	d.sensors[k] = s
	for _, v := range values {
		d.judge(s, v)
	}
}

// Forget drops what the detector knows of the sensor, so that it is warmed again before its
// next reading.
func (d *Detector) Forget(k sensor.Key) { delete(d.sensors, k) }

// Window returns the sensor's window, or nil.
func (d *Detector) Window(k sensor.Key) *Window {
	if s, ok := d.sensors[k]; ok {
		return &s.window
	}
	return nil
}

// Judge scores value against the sensor's window, runs the checks, and then adds the value
// to the window.
func (d *Detector) Judge(k sensor.Key, value float64) Verdict {
	s, ok := d.sensors[k]
	if !ok {
		s = d.newState()
		d.sensors[k] = s
	}
	return d.judge(s, value)
}

func (d *Detector) judge(s *sensorState, value float64) Verdict {
	w := &s.window
	v := Verdict{WindowSize: w.Len()}
	if w.Len() >= d.cfg.MinSamples {
		v.Judged = true
		v.ZScore, v.Mean, v.StdDev = w.Score(value)
		v.Severity, v.Anomalous = d.cfg.Bands.Classify(v.ZScore)
	}
	v.Finding = s.checks.observe(&d.cfg.Checks, &d.consts, value, v.ZScore, v.Judged)
	w.Push(value)
	return v
}

// Anomaly is a reading the detector flagged, with the evidence for the verdict.
type Anomaly struct {
	ID          string
	ReadingID   string
	EquipmentID string
	SensorType  sensor.Type
	SensorID    string // the sensor within its equipment; empty: the sensor is its type
	Value       float64
	ZScore      float64
	Mean        float64
	StdDev      float64
	WindowSize  int
	Severity    Severity
	Timestamp   time.Time // the reading's own time
	DetectedAt  time.Time
}

// NewAnomaly records a flagged reading. v must be an anomalous verdict for r.
func NewAnomaly(id string, r sensor.Reading, v Verdict, detectedAt time.Time) Anomaly {
	return Anomaly{
		ID: id, ReadingID: r.ID, EquipmentID: r.EquipmentID, SensorType: r.Type, SensorID: r.SensorID, Value: r.Value,
		ZScore: v.ZScore, Mean: v.Mean, StdDev: v.StdDev, WindowSize: v.WindowSize,
		Severity: v.Severity, Timestamp: r.Timestamp, DetectedAt: detectedAt.UTC(),
	}
}
