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
}

// DefaultConfig is the contract's default: a window of 100, verdicts from 30 samples.
var DefaultConfig = Config{WindowSize: 100, MinSamples: 30, Bands: DefaultBands}

// ErrBadConfig is returned by Config.Validate.
var ErrBadConfig = errors.New("detector config needs 2 <= min samples <= window size")

// Validate checks the window sizes and bands.
func (c Config) Validate() error {
	if c.WindowSize < 2 || c.MinSamples < 2 || c.MinSamples > c.WindowSize {
		return ErrBadConfig
	}
	return c.Bands.Validate()
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
}

// Detector keeps one window per sensor and judges each new reading against the window as it
// was before the reading joined it. It is not safe for concurrent use: readings of one sensor
// must be judged in the order they arrived, by one goroutine.
type Detector struct {
	cfg     Config
	windows map[sensor.Key]*Window
}

// NewDetector returns a detector with no history. cfg must be valid.
func NewDetector(cfg Config) *Detector {
	return &Detector{cfg: cfg, windows: make(map[sensor.Key]*Window)}
}

// Config returns the detector's configuration.
func (d *Detector) Config() Config { return d.cfg }

// Knows reports whether the detector holds a window for the sensor.
func (d *Detector) Knows(k sensor.Key) bool {
	_, ok := d.windows[k]
	return ok
}

// Warm replaces the sensor's window with values, oldest first; only the last WindowSize count.
func (d *Detector) Warm(k sensor.Key, values []float64) {
	w := NewWindow(d.cfg.WindowSize)
	for _, v := range values {
		w.Push(v)
	}
	d.windows[k] = w
}

// Forget drops the sensor's window, so that it is warmed again before its next reading.
func (d *Detector) Forget(k sensor.Key) { delete(d.windows, k) }

// Window returns the sensor's window, or nil.
func (d *Detector) Window(k sensor.Key) *Window { return d.windows[k] }

// Judge scores value against the sensor's window and then adds it to the window.
func (d *Detector) Judge(k sensor.Key, value float64) Verdict {
	w, ok := d.windows[k]
	if !ok {
		w = NewWindow(d.cfg.WindowSize)
		d.windows[k] = w
	}
	v := Verdict{WindowSize: w.Len()}
	if w.Len() >= d.cfg.MinSamples {
		v.Judged = true
		v.ZScore, v.Mean, v.StdDev = w.Score(value)
		v.Severity, v.Anomalous = d.cfg.Bands.Classify(v.ZScore)
	}
	w.Push(value)
	return v
}

// Anomaly is a reading the detector flagged, with the evidence for the verdict.
type Anomaly struct {
	ID          string
	ReadingID   string
	EquipmentID string
	SensorType  sensor.Type
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
		ID: id, ReadingID: r.ID, EquipmentID: r.EquipmentID, SensorType: r.Type, Value: r.Value,
		ZScore: v.ZScore, Mean: v.Mean, StdDev: v.StdDev, WindowSize: v.WindowSize,
		Severity: v.Severity, Timestamp: r.Timestamp, DetectedAt: detectedAt.UTC(),
	}
}
