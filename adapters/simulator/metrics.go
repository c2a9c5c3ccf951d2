package simulator

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The service's metrics that the watcher reads.
const (
	metricDelay     = "plm_detection_latency_seconds" // receipt to storage with a verdict
	metricRSS       = "process_resident_memory_bytes"
	metricProcessed = "plm_readings_processed_total"
)

// Delay summarises the service's receipt-to-storage histogram over a run: each quantile is
// the upper bound of the histogram bucket it falls in.
type Delay struct {
	Count    uint64
	P50, P99 time.Duration
}

// Watch is what the watcher saw of the processes whose /metrics it read.
type Watch struct {
	Delay Delay
	RSS   map[string]RSS // by metrics URL
	// Timeline is the readings the processes had stored since the start, once a second.
	Timeline []Stored
}

// Stored is how many readings the watched processes had stored, since the watch started, at
// a moment.
type Stored struct {
	At       time.Time
	Readings float64
}

// RSS is the resident memory of one process over a run, in bytes: once warmed up, at the
// end, and the highest seen.
type RSS struct {
	WarmedUp, End, Peak float64
}

// Growth is how much the memory grew from the end of the warm-up to the end, as a fraction
// (0.1 is 10%); 0 when the warm-up was never reached.
func (r RSS) Growth() float64 {
	if r.WarmedUp == 0 {
		return 0
	}
	return r.End/r.WarmedUp - 1
}

// Watcher samples the /metrics of the processes that store readings (the worker, or the
// whole service) during a run.
type Watcher struct {
	urls   []string // the processes that store readings
	others []string // processes watched for their memory only
	key    string
	client *http.Client

	mu        sync.Mutex
	before    map[string]*dto.Histogram
	processed map[string]float64 // at the start
	rss       map[string]RSS
	timeline  []Stored
	warmedUp  time.Time // when the memory is taken as warmed up
	stop      chan struct{}
	done      chan struct{}
}

// StartWatch reads each of urls (processes that store readings) and others (processes
// watched for their memory only) now, and every second until Stop. The first memory reading
// after warmup is the one a run's growth is measured from.
func StartWatch(ctx context.Context, urls, others []string, key string, warmup time.Duration) (*Watcher, error) {
	w := &Watcher{urls: urls, others: others, key: key, client: &http.Client{Timeout: 10 * time.Second},
		before: map[string]*dto.Histogram{}, processed: map[string]float64{}, rss: map[string]RSS{},
		warmedUp: time.Now().Add(warmup), stop: make(chan struct{}), done: make(chan struct{})}
	for _, u := range urls {
		fams, err := w.scrape(ctx, u)
		if err != nil {
			return nil, err
		}
		w.before[u] = histogramOf(fams[metricDelay])
		w.processed[u] = counterOf(fams[metricProcessed])
		w.noteRSS(u, fams)
	}
	for _, u := range others {
		fams, err := w.scrape(ctx, u)
		if err != nil {
			return nil, err
		}
		w.noteRSS(u, fams)
	}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case at := <-tick.C:
				stored, all := 0.0, true
				for i, u := range append(urls[:len(urls):len(urls)], others...) {
					fams, err := w.scrape(ctx, u)
					if err != nil {
						all = all && i >= len(urls)
						continue
					}
					w.noteRSS(u, fams)
					if i < len(urls) {
						stored += counterOf(fams[metricProcessed]) - w.processed[u]
					}
				}
				if all && len(urls) > 0 {
					w.mu.Lock()
					w.timeline = append(w.timeline, Stored{At: at, Readings: stored})
					w.mu.Unlock()
				}
			}
		}
	}()
	return w, nil
}

// Stop reads each process a last time and returns what was seen since the start.
func (w *Watcher) Stop(ctx context.Context) (Watch, error) {
	close(w.stop)
	<-w.done
	for _, u := range w.others {
		fams, err := w.scrape(ctx, u)
		if err != nil {
			return Watch{}, err
		}
		w.noteRSS(u, fams)
	}
	var buckets map[float64]uint64
	var count uint64
	for _, u := range w.urls {
		fams, err := w.scrape(ctx, u)
		if err != nil {
			return Watch{}, err
		}
		w.noteRSS(u, fams)
		after := histogramOf(fams[metricDelay])
		if after == nil {
			return Watch{}, fmt.Errorf("%s has no %s: is it a process that stores readings?", u, metricDelay)
		}
		if buckets == nil {
			buckets = map[float64]uint64{}
		}
		for i, b := range after.GetBucket() {
			n := b.GetCumulativeCount()
			if prev := w.before[u]; prev != nil && i < len(prev.GetBucket()) {
				n -= prev.GetBucket()[i].GetCumulativeCount()
			}
			buckets[b.GetUpperBound()] += n
		}
		count += after.GetSampleCount()
		if prev := w.before[u]; prev != nil {
			count -= prev.GetSampleCount()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return Watch{RSS: w.rss, Timeline: w.timeline, Delay: Delay{Count: count,
		P50: quantileOf(buckets, count, 0.5), P99: quantileOf(buckets, count, 0.99)}}, nil
}

// quantileOf is the upper bound of the cumulative bucket holding the q-th quantile; -1 when
// it lies beyond the last finite bound.
func quantileOf(cumulative map[float64]uint64, count uint64, q float64) time.Duration {
	if count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(count)))
	best := math.Inf(1)
	for bound, n := range cumulative {
		if n >= rank && bound < best {
			best = bound
		}
	}
	if math.IsInf(best, 1) {
		return -1
	}
	return time.Duration(best * float64(time.Second))
}

// WaitProcessed waits, cheaply, until the watched processes have stored n readings since
// the start, their count stops growing for 5 s, or deadline passes.
func (w *Watcher) WaitProcessed(ctx context.Context, n int64, deadline time.Time) {
	last, lastGrew := -1.0, time.Now()
	for time.Now().Before(deadline) && time.Since(lastGrew) < 5*time.Second {
		total := 0.0
		for _, u := range w.urls {
			fams, err := w.scrape(ctx, u)
			if err != nil {
				return
			}
			total += counterOf(fams[metricProcessed]) - w.processed[u]
		}
		if total >= float64(n) {
			return
		}
		if total > last {
			last, lastGrew = total, time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func counterOf(f *dto.MetricFamily) float64 {
	if f == nil || len(f.GetMetric()) == 0 {
		return 0
	}
	return f.GetMetric()[0].GetCounter().GetValue()
}

func histogramOf(f *dto.MetricFamily) *dto.Histogram {
	if f == nil || len(f.GetMetric()) == 0 {
		return nil
	}
	return f.GetMetric()[0].GetHistogram()
}

// noteRSS records a process's resident memory: the peak, the latest, and the first reading
// after the warm-up.
func (w *Watcher) noteRSS(u string, fams map[string]*dto.MetricFamily) {
	f := fams[metricRSS]
	if f == nil || len(f.GetMetric()) == 0 {
		return
	}
	v := f.GetMetric()[0].GetGauge().GetValue()
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.rss[u]
	r.Peak, r.End = max(r.Peak, v), v
	if r.WarmedUp == 0 && !time.Now().Before(w.warmedUp) {
		r.WarmedUp = v
	}
	w.rss[u] = r
}

func (w *Watcher) scrape(ctx context.Context, u string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics URL %q: %w", u, err)
	}
	req.Header.Set("X-API-Key", w.key)
	req.Header.Set("Accept", "text/plain")
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return fams, nil
}

// WriteTimeline writes tl as CSV: the seconds since start, the readings stored by then, and
// the readings stored per second since the previous row.
func WriteTimeline(w io.Writer, start time.Time, tl []Stored) error {
	if _, err := fmt.Fprintln(w, "seconds,stored,stored_per_second"); err != nil {
		return err
	}
	prev := Stored{At: start}
	for _, s := range tl {
		rate := 0.0
		if d := s.At.Sub(prev.At).Seconds(); d > 0 {
			rate = (s.Readings - prev.Readings) / d
		}
		if _, err := fmt.Fprintf(w, "%.1f,%.0f,%.0f\n", s.At.Sub(start).Seconds(), s.Readings, rate); err != nil {
			return err
		}
		prev = s
	}
	return nil
}

// StoredRate is the readings stored per second between from and to, read from the samples
// of tl nearest to each; 0 when tl does not cover the span.
func StoredRate(tl []Stored, from, to time.Time) float64 {
	nearest := func(at time.Time) (Stored, bool) {
		var best Stored
		found := false
		for _, s := range tl {
			if !found || absDuration(s.At.Sub(at)) < absDuration(best.At.Sub(at)) {
				best, found = s, true
			}
		}
		return best, found
	}
	a, ok1 := nearest(from)
	b, ok2 := nearest(to)
	if !ok1 || !ok2 || !b.At.After(a.At) {
		return 0
	}
	return (b.Readings - a.Readings) / b.At.Sub(a.At).Seconds()
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
