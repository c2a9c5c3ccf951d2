package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// CheckConfig says how to check a run against the service's answers.
type CheckConfig struct {
	URL, APIKey string
	// From and To bound the readings' timestamps (the run, with a margin).
	From, To time.Time
	// Settle is how long to wait for every accepted reading to be stored.
	Settle time.Duration
	// OfflineAfter is the service's PLM_OFFLINE_AFTER: silent equipment is checked once it
	// has been silent for longer.
	OfflineAfter time.Duration
	Concurrency  int // queries in flight
	// Watch, when set, is watching the processes that store readings: their count tells,
	// cheaply, when to start counting.
	Watch *Watcher
}

// CheckResult is the end-to-end check of a run.
type CheckResult struct {
	Accepted, Stored int64
	// StoredAfter is how long after the check began the stored count reached the accepted
	// one (or stopped being checked).
	StoredAfter time.Duration
	Score       Score
	// Silent is how many pieces of equipment fell silent; Offline how many of them the
	// service called OFFLINE.
	Silent, Offline int
	NotOffline      []string // silent equipment with another status, and which
}

// OK reports whether the run lost nothing, found every planted fault, and saw every silent
// machine go OFFLINE.
func (r CheckResult) OK() bool {
	return r.Stored == r.Accepted && r.Score.Found == r.Score.Planted &&
		r.Score.DriftsFound == r.Score.Drifts && r.Offline == r.Silent
}

type api struct {
	base   string
	key    string
	client *http.Client
}

func newAPI(base, key string) (*api, error) {
	u, err := webhookURL(base)
	if err != nil {
		return nil, err
	}
	return &api{base: u.String(), key: key, client: &http.Client{Timeout: 30 * time.Second}}, nil
}

// get decodes the JSON answer of path into out.
func (a *api) get(ctx context.Context, path string, q url.Values, out any) error {
	target := a.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", a.key)
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// Check compares what the service stored and found with what the plant sent and planted:
// the stored count of the run's equipment must reach accepted, every planted fault must be
// flagged, and silent equipment must be OFFLINE. Only the plant's own equipment is read.
func Check(ctx context.Context, p *Plant, accepted int64, cfg CheckConfig) (CheckResult, error) {
	a, err := newAPI(cfg.URL, cfg.APIKey)
	if err != nil {
		return CheckResult{}, err
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 8
	}
	res := CheckResult{Accepted: accepted}
	began := time.Now()
	deadline := began.Add(cfg.Settle)
	if cfg.Watch != nil {
		cfg.Watch.WaitProcessed(ctx, accepted, deadline)
	}
	// Counting reads every machine's production metrics: not too often, for the count's
	// queries would slow down the storing they wait for.
	for {
		res.Stored, err = storedCount(ctx, a, p.EquipmentIDs(), cfg)
		if err != nil {
			return res, err
		}
		if res.Stored >= accepted || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	res.StoredAfter = time.Since(began)

	alerts, err := alertsOf(ctx, a, p.EquipmentIDs(), cfg)
	if err != nil {
		return res, err
	}
	truth := p.Truth()
	res.Score = ScoreAlerts(truth, alerts)

	res.Silent = len(truth.Silent)
	for id, last := range truth.Silent {
		if wait := time.Until(last.Add(cfg.OfflineAfter + 2*time.Second)); wait > 0 {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(wait):
			}
		}
		var st struct {
			Status string `json:"status"`
		}
		if err := a.get(ctx, "/equipment/"+url.PathEscape(id)+"/status", nil, &st); err != nil {
			return res, err
		}
		if st.Status == "OFFLINE" {
			res.Offline++
		} else {
			res.NotOffline = append(res.NotOffline, id+" "+st.Status)
		}
	}
	return res, nil
}

// eachEquipment runs fn for every id, cfg.Concurrency at a time, and returns the first error.
func eachEquipment(ctx context.Context, ids []string, concurrency int, fn func(ctx context.Context, id string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, id); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

func (c CheckConfig) window() url.Values {
	return url.Values{"from": {c.From.UTC().Format(time.RFC3339Nano)}, "to": {c.To.UTC().Format(time.RFC3339Nano)}}
}

// storedCount adds up the readings stored for each piece of equipment in the run's window.
func storedCount(ctx context.Context, a *api, ids []string, cfg CheckConfig) (int64, error) {
	var mu sync.Mutex
	var total int64
	err := eachEquipment(ctx, ids, cfg.Concurrency, func(ctx context.Context, id string) error {
		q := cfg.window()
		q.Set("equipmentId", id)
		q.Set("bucket", "day")
		var m struct {
			EventsProcessed struct {
				Total int64 `json:"total"`
			} `json:"eventsProcessed"`
		}
		if err := a.get(ctx, "/metrics/production", q, &m); err != nil {
			return err
		}
		mu.Lock()
		total += m.EventsProcessed.Total
		mu.Unlock()
		return nil
	})
	return total, err
}

// alertsOf reads every anomaly of the run's equipment, page by page.
func alertsOf(ctx context.Context, a *api, ids []string, cfg CheckConfig) ([]Alert, error) {
	var mu sync.Mutex
	var out []Alert
	err := eachEquipment(ctx, ids, cfg.Concurrency, func(ctx context.Context, id string) error {
		for page := 1; ; page++ {
			q := cfg.window()
			q.Set("equipmentId", id)
			q.Set("pageSize", "500")
			q.Set("sort", "asc")
			q.Set("page", strconv.Itoa(page))
			var h struct {
				Data []struct {
					EquipmentID string           `json:"equipmentId"`
					SensorType  sensor.Type      `json:"sensorType"`
					Severity    anomaly.Severity `json:"severity"`
					Timestamp   time.Time        `json:"timestamp"`
				} `json:"data"`
				Pagination struct {
					TotalPages int `json:"totalPages"`
				} `json:"pagination"`
			}
			if err := a.get(ctx, "/alerts/history", q, &h); err != nil {
				return err
			}
			mu.Lock()
			for _, d := range h.Data {
				out = append(out, Alert{EquipmentID: d.EquipmentID, Type: d.SensorType, Timestamp: d.Timestamp, Severity: d.Severity})
			}
			mu.Unlock()
			if page >= h.Pagination.TotalPages {
				return nil
			}
		}
	})
	return out, err
}

// ErrIncomplete is returned by a run whose check failed.
var ErrIncomplete = errors.New("the end-to-end check failed")
