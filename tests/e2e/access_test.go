package e2e

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// A burst of 512 requests from 64 connections with one key, against a serve process with a
// limit of 100 requests a minute per key kept in Redis: about 100 get through (the bucket,
// plus what refills while the burst lasts), every other one is 429 with Retry-After, and a
// second key is not held back by the first one's burst. Scoped keys keep to their scope.
func TestRateLimitPerKeyUnderABurstFromManyConnections(t *testing.T) {
	const dashboardKey = "dashboard-key-0123456789"
	const machineKey = "machine-key-0123456789"
	d := newDeployment(t, "", "PLM_RATE_LIMIT=100/m",
		"PLM_API_KEYS="+apiKey+",read:"+dashboardKey+",ingest:"+machineKey)
	serve := d.run("serve")

	const conns, each = 64, 8
	var mu sync.Mutex
	statuses := map[int]int{}
	badRetry := 0
	var wg sync.WaitGroup
	began := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}} // a connection of its own
			defer client.CloseIdleConnections()
			for range each {
				req, _ := http.NewRequest(http.MethodGet, serve.base+"/equipment", nil)
				req.Header.Set("X-API-Key", apiKey)
				resp, err := client.Do(req)
				mu.Lock()
				if err != nil {
					statuses[0]++
				} else {
					resp.Body.Close()
					statuses[resp.StatusCode]++
					if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode == http.StatusTooManyRequests && (err != nil || ra < 1) {
						badRetry++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	took := time.Since(began)
	refill := int(took.Seconds()*100/60) + 1
	t.Logf("%d requests from %d connections in %v: %v", conns*each, conns, took.Round(time.Millisecond), statuses)
	if ok := statuses[http.StatusOK]; ok < 100 || ok > 100+refill {
		t.Errorf("%d requests let through, want 100 to %d", ok, 100+refill)
	}
	if statuses[http.StatusOK]+statuses[http.StatusTooManyRequests] != conns*each {
		t.Errorf("answers other than 200 and 429: %v", statuses)
	}
	if badRetry != 0 {
		t.Errorf("%d answers 429 without Retry-After", badRetry)
	}

	// The dashboard's key has a budget of its own, and reads only.
	if code, body, err := serve.request(http.MethodGet, "/equipment", dashboardKey, nil); err != nil || code != http.StatusOK {
		t.Errorf("the dashboard key after another key's burst: %d %s %v", code, body, err)
	}
	if code, _, _ := serve.request(http.MethodPost, "/webhook/sensor-data", dashboardKey,
		[]byte(jsonReading("press-01", "temperature", "r1", 70, time.Now()))); code != http.StatusForbidden {
		t.Errorf("the dashboard key posted a reading: %d, want 403", code)
	}
	// The machine's key posts readings, and reads nothing.
	if code, body, _ := serve.request(http.MethodPost, "/webhook/sensor-data", machineKey,
		[]byte(jsonReading("press-01", "temperature", "r2", 70, time.Now()))); code != http.StatusAccepted {
		t.Errorf("the machine key's reading: %d %s, want 202", code, body)
	}
	for _, path := range []string{"/equipment", "/equipment/press-01/sensor-history", "/alerts/history", "/metrics"} {
		if code, _, _ := serve.request(http.MethodGet, path, machineKey, nil); code != http.StatusForbidden {
			t.Errorf("the machine key read %s: %d, want 403", path, code)
		}
	}
}
