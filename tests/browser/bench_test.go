package browser

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// benchMachines is how many machines the page shows in the benchmark.
const benchMachines = 200

// burstProbe, run in the page before a burst, notes (in performance.now() milliseconds) when
// the first tile changed status, when the last of n tiles reached the status want, and the
// long tasks (over 50 ms) the main thread ran meanwhile.
const burstProbe = `(() => {
	const r = { first: 0, last: 0, lastWall: 0, changes: 0, longTasks: 0, longest: 0 };
	const grid = document.getElementById('grid');
	const mo = new MutationObserver((records) => {
		const now = performance.now();
		for (const m of records) {
			if (m.attributeName !== 'data-status') continue;
			if (!r.first) r.first = now;
			r.changes++;
		}
		if (!r.last && grid.querySelectorAll('[data-status=' + %[2]s + ']').length >= %[1]d) {
			r.last = now;
			r.lastWall = performance.timeOrigin + now;
		}
	});
	mo.observe(grid, { subtree: true, attributes: true, attributeFilter: ['data-status'] });
	const po = new PerformanceObserver((list) => {
		for (const e of list.getEntries()) { r.longTasks++; r.longest = Math.max(r.longest, e.duration); }
	});
	po.observe({ type: 'longtask' });
	r.stop = () => { mo.disconnect(); po.disconnect(); r.events = window.plmEvents; return true; };
	window.plmEvents = { first: 0, last: 0, count: 0 };
	window.plmBurst = r;
	return true;
})()`

// eventClock, run in the page before its own script, notes (in performance.now()
// milliseconds) when the page's EventSource listeners received the first and the last
// equipment.status_changed event since window.plmEvents was last reset.
const eventClock = `(() => {
	window.plmEvents = { first: 0, last: 0, count: 0 };
	const add = EventSource.prototype.addEventListener;
	EventSource.prototype.addEventListener = function (type, listener, options) {
		if (type === 'equipment.status_changed') {
			const inner = listener;
			listener = function (ev) {
				const r = window.plmEvents, now = performance.now();
				if (!r.first) r.first = now;
				r.last = now;
				r.count++;
				return inner.call(this, ev);
			};
		}
		return add.call(this, type, listener, options);
	};
})()`

// burst is what burstProbe and eventClock measured.
type burst struct {
	First     float64 `json:"first"`
	Last      float64 `json:"last"`
	LastWall  float64 `json:"lastWall"`
	Changes   int     `json:"changes"`
	LongTasks int     `json:"longTasks"`
	Longest   float64 `json:"longest"`
	Events    struct {
		First float64 `json:"first"`
		Last  float64 `json:"last"`
		Count int     `json:"count"`
	} `json:"events"`
}

// The page with 200 machines: how long after navigation the grid is first drawn
// (first-render-ms: from the start of the navigation, sign-in check and list included), and
// how a burst of 200 status events (every machine put into maintenance at once, then taken
// out) is applied: events/burst received (repeats included), burst-delivery-ms from the
// first to the last received, burst-apply-ms from the first received to the last tile
// changed, after-last-event-ms from the last received to the last tile changed,
// burst-latency-ms from the last maintenance request answered to the last tile changed (the
// status sweep runs about once a second), and the main thread's long tasks (over 50 ms).
// Only measured, never judged:
//
//	go test -run '^$' -bench LivePage -benchtime 5x ./tests/browser/
func BenchmarkLivePage200Machines(b *testing.B) {
	// Machines stay ONLINE through the run however long it takes.
	svc := startService(b, "PLM_OFFLINE_AFTER=1h")
	ids := make([]string, benchMachines)
	var readings []reading
	now := time.Now()
	for i := range ids {
		ids[i] = fmt.Sprintf("cell-%03d", i)
		readings = append(readings, calm(ids[i], 1, now)...)
	}
	svc.post(b, readings)
	svc.waitEquipment(b, "ONLINE", ids...)

	br := newBrowser(b)
	br.screenshotOnFailure(b)
	call(b, br, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: eventClock})
	signIn(b, br, svc)

	var firstRender, applyMs, deliveryMs, settleMs, latencyMs, longest float64
	var longTasks, events int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A fresh load, signed in by the cookie already.
		br.do(b, 30*time.Second, "reload the page", chromedp.Navigate(svc.base+"/"))
		br.waitFor(b, 30*time.Second, fmt.Sprintf("the grid shows %d machines", benchMachines),
			fmt.Sprintf(`document.querySelectorAll('#grid [data-status="ONLINE"]').length === %d`, benchMachines), pageState)
		firstRender += eval[float64](b, br, `performance.getEntriesByName('plm:grid-rendered')[0].startTime`)
		br.waitFor(b, liveWait, "the live stream connects", `document.getElementById('connection').dataset.state === 'live'`, pageState)

		for _, step := range []struct {
			method, status string
		}{{http.MethodPut, "MAINTENANCE"}, {http.MethodDelete, "ONLINE"}} {
			eval[bool](b, br, fmt.Sprintf(burstProbe, benchMachines, jsString(step.status)))
			answered := maintenance(b, svc, step.method, ids)
			br.waitFor(b, liveWait, fmt.Sprintf("all %d tiles say %s", benchMachines, step.status),
				`window.plmBurst.last > 0`, pageState)
			eval[bool](b, br, `window.plmBurst.stop()`)
			raw := eval[string](b, br, `JSON.stringify(window.plmBurst)`)
			var m burst
			if err := json.Unmarshal([]byte(raw), &m); err != nil {
				b.Fatal(err)
			}
			if m.Events.Count == 0 {
				b.Fatalf("the tiles changed, yet the page received no equipment.status_changed event: %s", raw)
			}
			applyMs += m.Last - m.Events.First
			deliveryMs += m.Events.Last - m.Events.First
			settleMs += m.Last - m.Events.Last
			events += m.Events.Count
			latencyMs += m.LastWall - float64(answered.UnixMicro())/1000
			longTasks += m.LongTasks
			longest = max(longest, m.Longest)
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(firstRender/n, "first-render-ms")
	b.ReportMetric(float64(events)/(2*n), "events/burst")
	b.ReportMetric(deliveryMs/(2*n), "burst-delivery-ms")
	b.ReportMetric(applyMs/(2*n), "burst-apply-ms")
	b.ReportMetric(settleMs/(2*n), "after-last-event-ms")
	b.ReportMetric(latencyMs/(2*n), "burst-latency-ms")
	b.ReportMetric(float64(longTasks)/(2*n), "long-tasks/burst")
	b.ReportMetric(longest, "longest-task-ms")
	br.screenshot(b, "live-page-200-machines")
}

// maintenance starts (PUT) or ends (DELETE) a maintenance window on every machine, 16
// requests at a time, and returns when the last was answered.
func maintenance(b *testing.B, svc *service, method string, ids []string) time.Time {
	b.Helper()
	body := map[string]any{"to": time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "reason": "benchmark"}
	if method == http.MethodDelete {
		body = nil
	}
	work := make(chan string)
	errs := make(chan error, len(ids))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for id := range work {
				if code, err := svc.send(method, "/equipment/"+id+"/maintenance", body); err != nil {
					errs <- err
				} else if code >= 300 {
					errs <- fmt.Errorf("%s maintenance of %s: %d", method, id, code)
				}
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	answered := time.Now()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return answered
}
