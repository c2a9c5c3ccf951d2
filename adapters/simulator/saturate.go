package simulator

import (
	"context"
	"fmt"
	"io"
	"time"
)

// SaturateConfig says how to search for the highest sustainable rate.
type SaturateConfig struct {
	Load     LoadConfig    // Rate is the first rate tried; Duration each step's length
	MaxP99   time.Duration // the latency bound (50 ms)
	Steps    int           // how many rates to try at most
	Log      io.Writer     // a line per step, when not nil
	MaxRate  float64       // no rate above this is tried (0: no bound)
	MinShare float64       // a step must achieve this share of its rate (0.95)
	Pause    time.Duration // between steps, for the service to drain (2 s)
}

// Step is one rate tried.
type Step struct {
	Target float64
	Result LoadResult
	Passed bool
	Why    string
}

// Saturate drives the service at rising rates, doubling from cfg.Load.Rate until a step
// fails (an error, p99 at or above MaxP99, or the generator falling short of the rate),
// then halving the gap between the best passing and the first failing rate. It returns
// every step and the best one (zero when none passed). The plant carries on from step to
// step, so each step's sensors are already known to the service.
func Saturate(ctx context.Context, p *Plant, cfg SaturateConfig) ([]Step, Step, error) {
	if cfg.MaxP99 <= 0 {
		cfg.MaxP99 = 50 * time.Millisecond
	}
	if cfg.Steps <= 0 {
		cfg.Steps = 8
	}
	if cfg.MinShare <= 0 {
		cfg.MinShare = 0.95
	}
	if cfg.Pause <= 0 {
		cfg.Pause = 2 * time.Second
	}
	var steps []Step
	var best Step
	lo, hi := 0.0, 0.0 // best passing and lowest failing rate so far
	rate := cfg.Load.Rate
	for len(steps) < cfg.Steps && ctx.Err() == nil {
		lc := cfg.Load
		lc.Rate = rate
		res, err := Drive(ctx, p, lc)
		if err != nil {
			return steps, best, err
		}
		st := Step{Target: rate, Result: res, Passed: true}
		switch {
		case res.Errors() > 0:
			st.Passed, st.Why = false, fmt.Sprintf("%d errors", res.Errors())
		case res.Latency.P99 >= cfg.MaxP99:
			st.Passed, st.Why = false, fmt.Sprintf("p99 %s", roundDuration(res.Latency.P99))
		case res.Rate() < cfg.MinShare*rate:
			st.Passed, st.Why = false, fmt.Sprintf("reached only %.0f/s", res.Rate())
		}
		steps = append(steps, st)
		if cfg.Log != nil {
			verdict := "ok"
			if !st.Passed {
				verdict = "FAIL: " + st.Why
			}
			fmt.Fprintf(cfg.Log, "step %d  %8.0f readings/s target  %8.0f achieved  p50 %-8s p99 %-8s max %-8s %s\n",
				len(steps), rate, res.Rate(), roundDuration(res.Latency.P50), roundDuration(res.Latency.P99),
				roundDuration(res.Latency.Max), verdict)
		}
		if st.Passed {
			lo, best = rate, st
		} else {
			hi = rate
		}
		switch {
		case hi == 0:
			rate *= 2
		case lo == 0:
			rate /= 2
		default:
			rate = (lo + hi) / 2
		}
		if hi > 0 && lo > 0 && (hi-lo)/lo < 0.05 {
			break
		}
		if cfg.MaxRate > 0 && rate > cfg.MaxRate {
			if lo >= cfg.MaxRate {
				break
			}
			rate = cfg.MaxRate
		}
		// Let the service drain what the step left queued before the next one.
		select {
		case <-ctx.Done():
		case <-time.After(cfg.Pause):
		}
	}
	return steps, best, ctx.Err()
}
