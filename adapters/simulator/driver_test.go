package simulator_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/simulator"
)

func driveFake(t *testing.T, f *fakeService, url string, scenarios []simulator.Scenario, lc simulator.LoadConfig) (*simulator.Plant, simulator.LoadResult) {
	t.Helper()
	p := newPlant(t, simulator.Config{Seed: 9, Equipment: 4, Scenarios: scenarios, Start: time.Now(),
		SilentFrom: lc.Duration / 3})
	lc.URL, lc.APIKey = url, f.key
	res, err := simulator.Drive(context.Background(), p, lc)
	if err != nil {
		t.Fatal(err)
	}
	return p, res
}

func TestDriveSendsTheScheduleAndCountsTheAnswers(t *testing.T) {
	f, srv := newFakeService(t)
	f.refuseEvery = 10
	var progress bytes.Buffer
	_, res := driveFake(t, f, srv.URL, nil, simulator.LoadConfig{Rate: 2000, Batch: 10, Concurrency: 4,
		Duration: 1500 * time.Millisecond, Progress: &progress, ProgressEvery: 500 * time.Millisecond})
	requests, received := f.counts()
	if res.Requests != int64(requests) || res.Readings != int64(received)+int64(requests/10*10) {
		t.Errorf("reported %d requests, %d readings; the service saw %d requests, %d readings accepted",
			res.Requests, res.Readings, requests, received)
	}
	if res.Readings < 2700 || res.Readings > 3000 {
		t.Errorf("sent %d readings in 1.5 s at 2000/s", res.Readings)
	}
	if res.Status[503] != int64(requests/10) || res.Errors() != res.Status[503] {
		t.Errorf("status counts %v, errors %d; want %d refusals", res.Status, res.Errors(), requests/10)
	}
	if res.Accepted != int64(received) || !contains(res.FirstRefusal, "503") {
		t.Errorf("accepted %d of %d; first refusal %q", res.Accepted, received, res.FirstRefusal)
	}
	if res.Latency.Count != res.Requests || res.Latency.P99 <= 0 || res.Latency.Max < res.Latency.P99 {
		t.Errorf("latency %+v", res.Latency)
	}
	if n := bytes.Count(progress.Bytes(), []byte("readings/s")); n < 2 {
		t.Errorf("%d progress lines in 1.5 s, want 2 or more:\n%s", n, progress.String())
	}
}

func TestTheCheckPassesWhenNothingIsLost(t *testing.T) {
	f, srv := newFakeService(t)
	p, res := driveFake(t, f, srv.URL, simulator.Scenarios, simulator.LoadConfig{Rate: 4000, Batch: 20,
		Concurrency: 4, Duration: 3 * time.Second})
	c := check(t, p, res, srv.URL, f.key)
	if !c.OK() {
		t.Fatalf("check failed: %+v", c)
	}
	if c.Score.Planted == 0 || c.Score.Drifts == 0 || c.Silent != 1 {
		t.Fatalf("planted %d, drifts %d, silent %d: the run was too short to test the check", c.Score.Planted, c.Score.Drifts, c.Silent)
	}
}

func TestTheCheckNoticesLostReadings(t *testing.T) {
	f, srv := newFakeService(t)
	f.loseEvery = 50
	p, res := driveFake(t, f, srv.URL, []simulator.Scenario{simulator.Spike}, simulator.LoadConfig{Rate: 4000, Batch: 20,
		Concurrency: 4, Duration: 2 * time.Second})
	c := check(t, p, res, srv.URL, f.key)
	if c.OK() || c.Accepted-c.Stored != res.Accepted/50 {
		t.Fatalf("accepted %d, stored %d: the check should see %d lost", c.Accepted, c.Stored, res.Accepted/50)
	}
}

func TestTheCheckNoticesSilentEquipmentThatIsNotOffline(t *testing.T) {
	f, srv := newFakeService(t)
	f.offlineAfter = time.Hour
	p, res := driveFake(t, f, srv.URL, []simulator.Scenario{simulator.Silent}, simulator.LoadConfig{Rate: 400, Batch: 1,
		Concurrency: 4, Duration: time.Second})
	c := check(t, p, res, srv.URL, f.key)
	if c.OK() || c.Silent != 1 || c.Offline != 0 || len(c.NotOffline) != 1 {
		t.Fatalf("silent %d, offline %d, not offline %v", c.Silent, c.Offline, c.NotOffline)
	}
}

func TestBadLoadsAreRefused(t *testing.T) {
	p := newPlant(t, simulator.Config{Seed: 1, Equipment: 1})
	for _, lc := range []simulator.LoadConfig{
		{URL: "http://x", Rate: 0, Batch: 1, Concurrency: 1, Duration: time.Second},
		{URL: "http://x", Rate: 10, Batch: 1001, Concurrency: 1, Duration: time.Second},
		{URL: "http://x", Rate: 10, Batch: 1, Concurrency: 0, Duration: time.Second},
		{URL: "ftp://x", Rate: 10, Batch: 1, Concurrency: 1, Duration: time.Second},
		{URL: "http://x", Rate: 5000, Batch: 1, Concurrency: 1, Duration: time.Second}, // 4 sensors
	} {
		if _, err := simulator.Drive(context.Background(), p, lc); !errors.Is(err, simulator.ErrConfig) {
			t.Errorf("Drive(%+v) = %v, want ErrConfig", lc, err)
		}
	}
}

func check(t *testing.T, p *simulator.Plant, res simulator.LoadResult, url, key string) simulator.CheckResult {
	t.Helper()
	c, err := simulator.Check(context.Background(), p, res.Accepted, simulator.CheckConfig{URL: url, APIKey: key,
		From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour), Settle: time.Second, OfflineAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSaturateDoublesWhilePassingAndHalvesWhileFailing(t *testing.T) {
	f, srv := newFakeService(t)
	load := simulator.LoadConfig{URL: srv.URL, APIKey: f.key, Rate: 200, Batch: 1, Concurrency: 8,
		Duration: 300 * time.Millisecond}
	p := newPlant(t, simulator.Config{Seed: 1, Equipment: 10, Start: time.Now()})
	steps, best, err := simulator.Saturate(context.Background(), p, simulator.SaturateConfig{Load: load, Steps: 3, Pause: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 3 || steps[1].Target != 400 || steps[2].Target != 800 || best.Target != 800 {
		t.Fatalf("steps %+v, best %v; want 200, 400, 800 all passing", targets(steps), best.Target)
	}
	steps, best, err = simulator.Saturate(context.Background(), p, simulator.SaturateConfig{Load: load, Steps: 3,
		MaxP99: time.Nanosecond, Pause: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if best.Target != 0 || steps[1].Target != 100 || steps[2].Target != 50 || steps[0].Passed {
		t.Fatalf("steps %+v, best %v; want 200, 100, 50 all failing on latency", targets(steps), best.Target)
	}
}

func targets(steps []simulator.Step) []float64 {
	out := make([]float64, len(steps))
	for i, s := range steps {
		out[i] = s.Target
	}
	return out
}
