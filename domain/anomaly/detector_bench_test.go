package anomaly_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// steadyDetector returns a detector whose every key already holds a full window, with the
// keys and a stream of values to judge.
func steadyDetector(keyCount int) (*anomaly.Detector, []sensor.Key, []float64) {
	return steadyDetectorWith(anomaly.DefaultConfig, keyCount)
}

func steadyDetectorWith(cfg anomaly.Config, keyCount int) (*anomaly.Detector, []sensor.Key, []float64) {
	d := anomaly.NewDetector(cfg)
	r := rand.New(rand.NewPCG(11, 13))
	keys := make([]sensor.Key, 0, keyCount)
	for i := range keyCount {
		k := sensor.Key{EquipmentID: fmt.Sprintf("machine-%04d", i/len(sensor.Types)), Type: sensor.Types[i%len(sensor.Types)]}
		keys = append(keys, k)
		warm := make([]float64, anomaly.DefaultConfig.WindowSize)
		for j := range warm {
			warm[j] = 70 + 5*r.NormFloat64()
		}
		d.Warm(k, warm)
	}
	values := make([]float64, 4096)
	for i := range values {
		values[i] = 70 + 5*r.NormFloat64()
		if i%97 == 0 {
			values[i] += 40 // an anomaly now and then
		}
	}
	return d, keys, values
}

// BenchmarkDetectorJudge judges readings round-robin over many warm sensors, with every
// check on (the defaults) and with the z-score alone.
func BenchmarkDetectorJudge(b *testing.B) {
	zOnly := anomaly.DefaultConfig
	zOnly.Checks = anomaly.Checks{}
	for _, c := range []struct {
		name string
		cfg  anomaly.Config
	}{{"all_checks", anomaly.DefaultConfig}, {"zscore_only", zOnly}} {
		for _, keyCount := range []int{1, 1000, 100_000} {
			b.Run(fmt.Sprintf("%s/keys_%d", c.name, keyCount), func(b *testing.B) {
				benchJudge(b, c.cfg, keyCount)
			})
		}
	}
}

func benchJudge(b *testing.B, cfg anomaly.Config, keyCount int) {
	d, keys, values := steadyDetectorWith(cfg, keyCount)
	b.ReportAllocs()
	i := 0
	var anomalies int
	for b.Loop() {
		if d.Judge(keys[i%len(keys)], values[i%len(values)]).Anomalous {
			anomalies++
		}
		i++
	}
	b.ReportMetric(float64(anomalies)/float64(i), "anomalies/op")
}

// TestDetectorJudgeDoesNotAllocate holds the benchmark's target: judging a reading of a known
// sensor allocates nothing.
func TestDetectorJudgeDoesNotAllocate(t *testing.T) {
	d, keys, values := steadyDetector(64)
	i := 0
	allocs := testing.AllocsPerRun(10_000, func() {
		d.Judge(keys[i%len(keys)], values[i%len(values)])
		i++
	})
	if allocs != 0 {
		t.Errorf("Judge allocates %v times per reading, want 0", allocs)
	}
}
