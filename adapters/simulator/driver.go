package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// LoadConfig says how to drive a service.
type LoadConfig struct {
	URL         string        // the service's base URL
	APIKey      string        // sent as X-API-Key
	Rate        float64       // readings per second (bursts multiply it)
	Batch       int           // readings per request: 1 sends single readings
	Concurrency int           // requests in flight at most
	Duration    time.Duration // how long to send
	Timeout     time.Duration // per request
	Progress    io.Writer     // a progress line every ProgressEvery, when not nil
	// ProgressEvery is how often the progress line is written (default 5 s).
	ProgressEvery time.Duration
}

// Validate checks cfg for a plant of the given number of sensors.
func (c LoadConfig) Validate(sensors int) error {
	switch {
	case c.Rate <= 0:
		return fmt.Errorf("%w: the rate must be positive", ErrConfig)
	case c.Batch < 1 || c.Batch > 1000:
		return fmt.Errorf("%w: a batch holds 1 to 1000 readings", ErrConfig)
	case c.Concurrency < 1:
		return fmt.Errorf("%w: the concurrency must be at least 1", ErrConfig)
	case c.Duration <= 0:
		return fmt.Errorf("%w: the duration must be positive", ErrConfig)
	case c.Rate*BurstFactor/float64(sensors) > 1000:
		// Readings of one sensor must be a millisecond apart at least: the API answers
		// timestamps to the millisecond, and the checks match anomalies by them.
		return fmt.Errorf("%w: at %.0f readings/s, %d sensors would each read more than 250 times a second: add equipment",
			ErrConfig, c.Rate, sensors)
	}
	_, err := webhookURL(c.URL)
	return err
}

func webhookURL(base string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: the service URL %q must be http://host:port or https://host:port", ErrConfig, base)
	}
	return u, nil
}

// LoadResult is what a run of the load generator saw.
type LoadResult struct {
	Elapsed  time.Duration // from the first request to the last answer
	Requests int64         // requests answered (or failed)
	Readings int64         // readings sent
	Accepted int64         // readings the service accepted (202)
	Status   map[int]int64 // answers by status code
	Failures map[string]int64
	// FirstRefusal is the body of the first answer other than 202, for the report.
	FirstRefusal string
	Latency      Latency // from sending a request to its answer
	// Lag is how late, at worst, a request was sent after its time in the schedule: a
	// service slower than the rate holds the generator back.
	Lag time.Duration
}

// Rate is the achieved rate, in readings per second.
func (r LoadResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Readings) / r.Elapsed.Seconds()
}

// Errors is the number of requests not answered 202.
func (r LoadResult) Errors() int64 {
	return r.Requests - r.Status[202]
}

type request struct {
	body     []byte
	readings int
	due      time.Time
}

type driver struct {
	cfg      LoadConfig
	client   *fasthttp.HostClient
	uri      string
	hist     histogram
	window   atomic.Pointer[histogram] // the latencies since the last progress line
	requests atomic.Int64
	readings atomic.Int64
	accepted atomic.Int64
	lag      atomic.Int64

	mu           sync.Mutex
	status       map[int]int64
	failures     map[string]int64
	firstRefusal string
}

// Drive sends the plant's readings to the service at cfg.Rate for cfg.Duration (or until
// ctx ends), and reports what it saw. Requests follow a fixed schedule (an open loop):
// a slow answer does not slow the schedule down until cfg.Concurrency requests are waiting.
func Drive(ctx context.Context, p *Plant, cfg LoadConfig) (LoadResult, error) {
	if err := cfg.Validate(p.Sensors()); err != nil {
		return LoadResult{}, err
	}
	u, _ := webhookURL(cfg.URL)
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 5 * time.Second
	}
	d := &driver{
		cfg: cfg,
		client: &fasthttp.HostClient{
			Addr: hostPort(u), IsTLS: u.Scheme == "https", MaxConns: cfg.Concurrency,
			ReadTimeout: cfg.Timeout, WriteTimeout: cfg.Timeout, MaxIdleConnDuration: time.Minute,
			NoDefaultUserAgentHeader: true, Name: "plm-simulate",
		},
		uri:    u.String() + "/webhook/sensor-data",
		status: map[int]int64{}, failures: map[string]int64{},
	}
	d.window.Store(&histogram{})
	jobs := make(chan request, cfg.Concurrency)
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range jobs {
				d.send(job)
			}
		}()
	}
	start := time.Now()
	stopProgress := d.progress(start)
	d.schedule(ctx, p, start, jobs)
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()

	d.mu.Lock()
	defer d.mu.Unlock()
	return LoadResult{
		Elapsed: elapsed, Requests: d.requests.Load(), Readings: d.readings.Load(), Accepted: d.accepted.Load(),
		Status: maps.Clone(d.status), Failures: maps.Clone(d.failures), FirstRefusal: d.firstRefusal,
		Latency: d.hist.summary(), Lag: time.Duration(d.lag.Load()),
	}, nil
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return u.Host + ":443"
	}
	return u.Host + ":80"
}

// schedule hands out requests at their times in the schedule until the run is over.
func (d *driver) schedule(ctx context.Context, p *Plant, start time.Time, jobs chan<- request) {
	end := start.Add(d.cfg.Duration)
	next := start
	buf := make([]Reading, 0, d.cfg.Batch)
	for next.Before(end) {
		if wait := time.Until(next); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			return
		}
		// Every request due by now goes out, each reading stamped with its own time.
		now := time.Now()
		for !next.After(now) && next.Before(end) {
			buf = buf[:0]
			due := next
			for range d.cfg.Batch {
				r, ok := nextSending(p, next)
				if !ok {
					break
				}
				buf = append(buf, r)
				next = next.Add(time.Duration(float64(time.Second) / p.RateAt(d.cfg.Rate, next.Sub(start))))
			}
			if len(buf) == 0 {
				return // every machine is silent
			}
			select {
			case jobs <- request{body: encode(buf), readings: len(buf), due: due}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// nextSending is the next reading of a machine that is not silent: the line keeps its rate.
func nextSending(p *Plant, at time.Time) (Reading, bool) {
	for range p.Sensors() {
		if r, ok := p.Next(at); ok {
			return r, true
		}
	}
	return Reading{}, false
}

func (d *driver) send(job request) {
	storeMax(&d.lag, int64(time.Since(job.due)))
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(d.uri)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.Header.Set("X-API-Key", d.cfg.APIKey)
	req.SetBodyRaw(job.body)

	sent := time.Now()
	err := d.client.DoTimeout(req, resp, d.cfg.Timeout)
	took := time.Since(sent)
	d.requests.Add(1)
	d.readings.Add(int64(job.readings))
	if err != nil {
		d.mu.Lock()
		d.failures[failureName(err)]++
		d.mu.Unlock()
		return
	}
	d.hist.record(took)
	d.window.Load().record(took)
	code := resp.StatusCode()
	if code == fasthttp.StatusAccepted {
		d.accepted.Add(int64(accepted(resp.Body(), job.readings)))
	}
	d.mu.Lock()
	d.status[code]++
	if code != fasthttp.StatusAccepted && d.firstRefusal == "" {
		d.firstRefusal = fmt.Sprintf("%d %s", code, bytes.TrimSpace(resp.Body()))
	}
	d.mu.Unlock()
}

// accepted reads {"accepted": n}; an answer without it counts the readings sent.
func accepted(body []byte, sent int) int {
	var a struct {
		Accepted *int `json:"accepted"`
	}
	if json.Unmarshal(body, &a) != nil || a.Accepted == nil {
		return sent
	}
	return *a.Accepted
}

func failureName(err error) string {
	switch {
	case errors.Is(err, fasthttp.ErrTimeout):
		return "timeout"
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return "no free connection"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// progress writes a line every cfg.ProgressEvery until the returned function is called.
func (d *driver) progress(start time.Time) (stop func()) {
	if d.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(d.cfg.ProgressEvery)
		defer tick.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				n := d.readings.Load()
				w := d.window.Swap(&histogram{}).summary()
				d.mu.Lock()
				failed := d.requests.Load() - d.status[202]
				d.mu.Unlock()
				fmt.Fprintf(d.cfg.Progress, "%6.0fs  %9d readings  %8.0f readings/s  p99 %-9s  errors %d\n",
					now.Sub(start).Seconds(), n, float64(n-last)/now.Sub(lastAt).Seconds(),
					roundDuration(w.P99), failed)
				last, lastAt = n, now
			}
		}
	}()
	return func() { close(done); <-finished }
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second)
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

// encode writes readings as the webhook's body: the reading itself, or a batch.
func encode(rs []Reading) []byte {
	b := make([]byte, 0, 160*len(rs)+16)
	if len(rs) == 1 {
		return appendReading(b, rs[0])
	}
	b = append(b, `{"readings":[`...)
	for i, r := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendReading(b, r)
	}
	return append(b, "]}"...)
}

func appendReading(b []byte, r Reading) []byte {
	b = append(b, `{"equipmentId":`...)
	b = strconv.AppendQuote(b, r.EquipmentID)
	b = append(b, `,"sensorType":"`...)
	b = append(b, r.Type...)
	b = append(b, `","value":`...)
	b = strconv.AppendFloat(b, r.Value, 'f', -1, 64)
	b = append(b, `,"unit":`...)
	b = strconv.AppendQuote(b, r.Unit)
	b = append(b, `,"timestamp":"`...)
	b = r.Timestamp.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","readingId":`...)
	b = strconv.AppendQuote(b, r.ID)
	return append(b, '}')
}

// sortedCodes lists the status codes of m in order.
func sortedCodes(m map[int]int64) []int {
	return slices.Sorted(maps.Keys(m))
}
