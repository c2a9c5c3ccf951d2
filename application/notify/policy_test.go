package notify_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/production-line-monitor/plm/application/notify"
	"github.com/production-line-monitor/plm/ports"
)

var t0 = time.Date(2026, 11, 27, 8, 15, 0, 0, time.UTC)

func TestBackoff_ceiling_doubles_up_to_the_cap(t *testing.T) {
	b := notify.Backoff{Base: time.Second, Cap: 5 * time.Minute}
	tests := []struct {
		name string
		n    int
		want time.Duration
	}{
		{"before_the_first_attempt", 0, time.Second},
		{"first_failure", 1, time.Second},
		{"second_failure", 2, 2 * time.Second},
		{"third_failure", 3, 4 * time.Second},
		{"ninth_failure_256s", 9, 256 * time.Second},
		{"tenth_failure_capped", 10, 5 * time.Minute},
		{"far_past_the_cap_no_overflow", 1000, 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, b.Ceiling(tt.n))
		})
	}
	assert.Equal(t, 3*time.Second, notify.Backoff{Base: 3 * time.Second, Cap: 3 * time.Second}.Ceiling(5), "a cap equal to the base")
}

func TestBackoff_delay_is_a_share_of_the_ceiling(t *testing.T) {
	b := notify.Backoff{Base: time.Second, Cap: 5 * time.Minute}
	tests := []struct {
		name string
		n    int
		u    float64
		want time.Duration
	}{
		{"draw_0", 3, 0, 0},
		{"draw_half", 3, 0.5, 2 * time.Second},
		{"draw_just_below_1", 1, 0.9999999, 999 * time.Millisecond},
		{"draw_half_capped", 20, 0.5, 150 * time.Second},
		{"draw_out_of_range_clamped", 2, 7, 2 * time.Second},
		{"negative_draw_clamped", 2, -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, b.Delay(tt.n, tt.u))
		})
	}
}

// With real draws, every delay lies in [0, ceiling], and they spread over it: the jitter
// is full, not a constant.
func TestBackoff_jitter_spreads_over_the_range(t *testing.T) {
	b := notify.Backoff{Base: time.Second, Cap: 5 * time.Minute}
	for n := 1; n <= 12; n++ {
		ceiling := b.Ceiling(n)
		var low, high bool
		for range 500 {
			d := b.Delay(n, rand.Float64())
			if d < 0 || d > ceiling {
				t.Fatalf("attempt %d: delay %s outside [0, %s]", n, d, ceiling)
			}
			low = low || d < ceiling/4
			high = high || d > ceiling*3/4
		}
		assert.True(t, low && high, "attempt %d: 500 delays did not reach both quarters of [0, %s]", n, ceiling)
	}
}

func TestBreaker_after_an_attempt(t *testing.T) {
	b := notify.Breaker{Failures: 3, Cooldown: 30 * time.Second}
	earlier := t0.Add(-time.Minute)
	tests := []struct {
		name         string
		failures     int
		pausedUntil  time.Time
		ok           bool
		wantFailures int
		wantPaused   time.Time
	}{
		{"success_resets", 2, time.Time{}, true, 0, time.Time{}},
		{"first_failure_counts", 0, time.Time{}, false, 1, time.Time{}},
		{"failure_below_the_threshold", 1, time.Time{}, false, 2, time.Time{}},
		{"failure_reaching_the_threshold_opens", 2, time.Time{}, false, 3, t0.Add(30 * time.Second)},
		{"half_open_success_closes", 3, earlier, true, 0, time.Time{}},
		{"half_open_failure_reopens", 3, earlier, false, 4, t0.Add(30 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failures, paused := b.After(tt.failures, tt.pausedUntil, tt.ok, t0)
			assert.Equal(t, tt.wantFailures, failures)
			assert.Equal(t, tt.wantPaused, paused)
		})
	}
}

func TestStateOf(t *testing.T) {
	for name, tt := range map[string]struct {
		pausedUntil time.Time
		want        notify.BreakerState
	}{
		"never_opened":        {time.Time{}, notify.BreakerClosed},
		"cooling_down":        {t0.Add(time.Second), notify.BreakerOpen},
		"cooldown_ends_now":   {t0, notify.BreakerHalfOpen},
		"cooldown_has_passed": {t0.Add(-time.Second), notify.BreakerHalfOpen},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tt.want, notify.StateOf(ports.Subscription{Failures: 5, PausedUntil: tt.pausedUntil}, t0))
		})
	}
}

func TestConfig_Validate(t *testing.T) {
	assert.NoError(t, notify.Config{}.Validate(), "the defaults")
	assert.NoError(t, notify.Config{SendTimeout: time.Second, Lease: 2 * time.Second}.Validate())
	for name, tt := range map[string]struct {
		cfg  notify.Config
		want []string
	}{
		"negatives":                {notify.Config{PollInterval: -1, MaxAttempts: -1, Breaker: notify.Breaker{Cooldown: -1}}, []string{"poll interval", "max attempts", "breaker cooldown"}},
		"lease_not_over_timeout":   {notify.Config{SendTimeout: 10 * time.Second, Lease: 10 * time.Second}, []string{"lease (10s) must be longer than the send timeout (10s)"}},
		"default_lease_too_short":  {notify.Config{Lease: 5 * time.Second}, []string{"lease (5s)"}},
		"cap_below_the_base":       {notify.Config{Backoff: notify.Backoff{Base: time.Minute, Cap: time.Second}}, []string{"backoff cap (1s)"}},
		"cap_below_default_base":   {notify.Config{Backoff: notify.Backoff{Cap: time.Millisecond}}, []string{"backoff cap"}},
		"negative_batch_and_lease": {notify.Config{BatchSize: -5, Lease: -time.Second}, []string{"batch size", "lease must not be negative"}},
	} {
		t.Run(name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if assert.Error(t, err) {
				for _, w := range tt.want {
					assert.Contains(t, err.Error(), w)
				}
			}
		})
	}
}
