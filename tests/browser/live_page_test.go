package browser

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// liveWait bounds each wait for something the service does by itself: process readings,
// announce a status change (a sweep about once a second), stream an event.
const liveWait = 30 * time.Second

// pageState is what the page shows, for failure messages.
const pageState = `JSON.stringify({
	url: location.pathname,
	connection: document.getElementById('connection').textContent,
	notice: document.getElementById('notice').textContent,
	loginError: document.getElementById('login-error').textContent,
	statuses: [...document.querySelectorAll('#grid [data-equipment-id]')].reduce((n, e) => (n[e.dataset.status] = (n[e.dataset.status] || 0) + 1, n), {}),
	tiles: [...document.querySelectorAll('#grid [data-equipment-id]')].slice(0, 10).map(e => e.dataset.equipmentId + '=' + e.dataset.status),
	alarms: [...document.querySelectorAll('#alarm-rows tr')].map(r => r.dataset.alarmId + '=' + r.dataset.state),
	message: document.getElementById('alarm-message').textContent,
})`

// listFetches counts the page's requests for the equipment and alarm lists so far.
const listFetches = `(() => {
	const paths = performance.getEntriesByType('resource').map(e => new URL(e.name).pathname);
	return 'equipment ' + paths.filter(p => p === '/equipment').length + ', alarms ' + paths.filter(p => p === '/alarms').length;
})()`

func tileIs(id, status string) string {
	return fmt.Sprintf(`document.querySelector('#grid [data-equipment-id=%s][data-status=%s]') !== null`, jsString(id), jsString(status))
}

func alarmRowIs(id, state string) string {
	return fmt.Sprintf(`document.querySelector('#alarm-rows tr[data-alarm-id=%s][data-state=%s]') !== null`, jsString(id), jsString(state))
}

// A read key signs in through the form; the grid and the alarm list follow what the
// service does, without a reload: a spike turns its machine's tile ANOMALY and opens an
// alarm, which is acknowledged with its button. The key is never in a URL, in storage, in
// the page or in the service's log, and the session cookie is out of the script's reach.
func TestLivePage_signs_in_follows_a_spike_and_acknowledges_its_alarm(t *testing.T) {
	svc := startService(t)
	b := newBrowser(t)
	b.screenshotOnFailure(t)

	// Two calm machines, known before the page opens.
	now := time.Now()
	svc.post(t, append(calm("press-01", 40, now), calm("press-02", 40, now)...))
	svc.waitEquipment(t, "ONLINE", "press-01", "press-02")

	signIn(t, b, svc)
	b.waitFor(t, 10*time.Second, "the grid shows both machines ONLINE",
		tileIs("press-01", "ONLINE")+" && "+tileIs("press-02", "ONLINE"), pageState)
	b.waitFor(t, liveWait, "the live stream connects and the lists are loaded again (EventSource on GET /stream opens)",
		`document.getElementById('connection').dataset.state === 'live'`, pageState)

	// Mark the page and the calm machine's tile: a reload or a re-render would lose them.
	eval[chromedp.Void](t, b, `window.plmProbe = 1; document.querySelector('#grid [data-equipment-id="press-02"]').plmProbe = 1`)
	// The lists were loaded this often: what follows must come from the stream, not a reload.
	lists := eval[string](t, b, listFetches)

	// A spike far out of the window (|z| well over 10) opens an alarm at once.
	svc.post(t, []reading{{EquipmentID: "press-01", SensorType: "temperature", Unit: "celsius", Value: 140,
		Timestamp: time.Now().UTC().Format(time.RFC3339Nano)}})
	b.waitFor(t, liveWait, "the tile of press-01 turns ANOMALY without a reload (equipment.status_changed on GET /stream)",
		tileIs("press-01", "ANOMALY"), pageState)

	var alarms struct{ Data []alarm }
	deadline := time.Now().Add(liveWait)
	for len(alarms.Data) == 0 && time.Now().Before(deadline) {
		svc.call(t, http.MethodGet, "/alarms?equipmentId=press-01&state=ACTIVE", nil, &alarms)
		if len(alarms.Data) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if len(alarms.Data) != 1 {
		t.Fatalf("the service opened %d alarms for press-01, want 1", len(alarms.Data))
	}
	id := alarms.Data[0].ID
	b.waitFor(t, liveWait, "the alarm appears ACTIVE in the list without a reload (alarm.opened on GET /stream)",
		alarmRowIs(id, "ACTIVE"), pageState)

	if got := eval[string](t, b, listFetches); got != lists {
		t.Errorf("the page fetched the lists again (%s, then %s): the changes did not come from the stream alone", lists, got)
	}
	if !eval[bool](t, b, `window.plmProbe === 1 && performance.getEntriesByType('navigation').length === 1`) {
		t.Error("the page was reloaded")
	}
	if !eval[bool](t, b, `document.querySelector('#grid [data-equipment-id="press-02"]').plmProbe === 1`) {
		t.Error("the tile of press-02, which did not change, was rendered anew")
	}
	if got := eval[string](t, b, `document.querySelector('#grid [data-equipment-id="press-02"]').dataset.status`); got != "ONLINE" {
		t.Errorf("press-02 says %s, want ONLINE", got)
	}

	// Acknowledge it from its row.
	const by = "Ada on shift B"
	b.do(t, 10*time.Second, "acknowledge",
		chromedp.SendKeys(chromedp.ID("ack-by"), by),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#alarm-rows tr[data-alarm-id=%s] button.ack`, jsString(id)))),
	)
	b.waitFor(t, 10*time.Second, "the alarm row says ACKNOWLEDGED", alarmRowIs(id, "ACKNOWLEDGED"), pageState)
	var acked alarm
	svc.call(t, http.MethodGet, "/alarms/"+url.PathEscape(id), nil, &acked)
	if acked.State != "ACKNOWLEDGED" || acked.Acknowledged == nil || acked.Acknowledged.By != by {
		t.Errorf("the service has the alarm %+v, want ACKNOWLEDGED by %q", acked, by)
	}

	// The machine's last hour, its spike marked.
	b.do(t, 10*time.Second, "select press-01", chromedp.Click(chromedp.CSS(`#grid [data-equipment-id="press-01"]`)))
	b.waitFor(t, 15*time.Second, "the temperature chart of press-01 marks its anomalous reading",
		`(() => { const f = document.querySelector('#charts figure[data-sensor-type="temperature"]');
		          return f !== null && Number(f.dataset.anomalies) >= 1 && f.querySelector('circle.anomaly') !== null })()`,
		`document.getElementById('detail').outerHTML.slice(0, 2000)`)

	// A new spike of the selected machine is marked as it comes (the second stream, of its
	// anomalies), ringed as new.
	svc.post(t, []reading{{EquipmentID: "press-01", SensorType: "temperature", Unit: "celsius", Value: 150,
		Timestamp: time.Now().UTC().Format(time.RFC3339Nano)}})
	b.waitFor(t, liveWait, "the new anomalous reading is marked live (anomaly on GET /stream?equipmentId=press-01&types=anomaly)",
		`Number(document.querySelector('#charts figure[data-sensor-type="temperature"]').dataset.liveAnomalies) >= 1`,
		`document.getElementById('detail').outerHTML.slice(0, 2000)`)

	b.screenshot(t, "live-page")
	requireKeyNowhere(t, svc, b)

	if p := b.Problems(); len(p) > 0 {
		t.Errorf("the page reported errors: %q", p)
	}

	// Signing out ends the session: the page asks for a key again and the cookie is void.
	b.do(t, 10*time.Second, "sign out", chromedp.Click(chromedp.ID("logout")))
	b.waitFor(t, 10*time.Second, "the sign-in form shows again", `!document.getElementById('login').hidden`, pageState)
	if code := eval[int](t, b, `fetch('/equipment').then(r => r.status)`); code != http.StatusUnauthorized {
		t.Errorf("after signing out, GET /equipment from the page answered %d, want 401", code)
	}
}

// signIn opens the page, which is not signed in and so asks for a key, and signs in with
// the read key through the form.
func signIn(t testing.TB, b *browser, svc *service) {
	t.Helper()
	b.do(t, 30*time.Second, "open the page", chromedp.Navigate(svc.base+"/"))
	b.waitFor(t, 10*time.Second, "the sign-in form shows (GET /session answers 401)",
		`!document.getElementById('login').hidden`, pageState)
	b.do(t, 10*time.Second, "sign in",
		chromedp.SendKeys(chromedp.ID("login-key"), svc.readKey),
		chromedp.Click(chromedp.ID("login-submit")),
	)
	b.waitFor(t, 10*time.Second, "signed in (POST /session answers 204 with a cookie, then GET /session 200)",
		`!document.getElementById('app').hidden`, pageState)
}

// requireKeyNowhere checks that the read key the user typed is in no URL the tab visited or
// fetched, in no storage, not in the page, and not in the service's log, and that the page's
// script cannot read the session cookie.
func requireKeyNowhere(t *testing.T, svc *service, b *browser) {
	t.Helper()
	key := svc.readKey

	history := call(t, b, page.GetNavigationHistory, cdp.Empty{})
	for _, e := range history.Entries {
		if strings.Contains(e.URL, key) || strings.Contains(e.UserTypedURL, key) || strings.Contains(e.Title, key) {
			t.Errorf("the key is in the navigation history: %s", e.URL)
		}
	}
	names := eval[[]string](t, b, `[location.href, document.referrer, ...performance.getEntries().map(e => e.name)]`)
	for _, n := range names {
		if strings.Contains(n, key) {
			t.Errorf("the key is in a URL the page loaded: %s", n)
		}
	}
	if len(names) < 4 {
		t.Errorf("the performance entries list only %q: the check above saw nothing", names)
	}
	stored := eval[string](t, b, `JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage), document.documentElement.outerHTML])`)
	if strings.Contains(stored, key) {
		t.Error("the key is in the page's storage or in its DOM")
	}
	if strings.Contains(svc.log.String(), key) {
		t.Error("the key is in the service's log")
	}

	cookies := call(t, b, network.GetCookies, network.GetCookiesParams{URLs: []string{svc.base + "/"}})
	if len(cookies.Cookies) == 0 {
		t.Fatal("signed in, yet the browser holds no cookie for the service")
	}
	visible := eval[string](t, b, `document.cookie`)
	for _, c := range cookies.Cookies {
		if strings.Contains(c.Value, key) {
			t.Errorf("cookie %s holds the key itself", c.Name)
		}
		if !c.HTTPOnly {
			t.Errorf("cookie %s is not HttpOnly", c.Name)
		}
		if strings.Contains(visible, c.Name) || (c.Value != "" && strings.Contains(visible, c.Value)) {
			t.Errorf("document.cookie reads the session cookie %s", c.Name)
		}
	}
}

// Two sensors of one machine that alarm together are one incident: one line of the list,
// both sensors on it; its button acknowledges both alarms.
func TestLivePage_shows_an_incident_of_two_sensors_as_one_line(t *testing.T) {
	svc := startService(t)
	b := newBrowser(t)
	b.screenshotOnFailure(t)
	now := time.Now()
	readings := calm("press-01", 40, now)
	for _, r := range calm("press-01", 40, now) {
		r.SensorType, r.Unit = "vibration", "mm/s"
		readings = append(readings, r)
	}
	svc.post(t, readings)
	svc.waitEquipment(t, "ONLINE", "press-01")
	signIn(t, b, svc)
	b.waitFor(t, liveWait, "the live stream connects",
		`document.getElementById('connection').dataset.state === 'live'`, pageState)

	at := time.Now().UTC()
	svc.post(t, []reading{
		{EquipmentID: "press-01", SensorType: "temperature", Unit: "celsius", Value: 140, Timestamp: at.Format(time.RFC3339Nano)},
		{EquipmentID: "press-01", SensorType: "vibration", Unit: "mm/s", Value: 140, Timestamp: at.Add(time.Millisecond).Format(time.RFC3339Nano)},
	})
	var alarms struct{ Data []alarm }
	deadline := time.Now().Add(liveWait)
	for len(alarms.Data) < 2 && time.Now().Before(deadline) {
		svc.call(t, http.MethodGet, "/alarms?equipmentId=press-01&state=ACTIVE", nil, &alarms)
		time.Sleep(50 * time.Millisecond)
	}
	if len(alarms.Data) != 2 || alarms.Data[0].IncidentID != alarms.Data[1].IncidentID {
		t.Fatalf("alarms %+v, want two of one incident", alarms.Data)
	}
	incident := alarms.Data[0].IncidentID
	b.waitFor(t, liveWait, "one line, the incident's, lists both sensors",
		fmt.Sprintf(`document.querySelectorAll('#alarm-rows tr').length === 1 && %s &&
			/temperature/.test(document.querySelector('#alarm-rows .sensor-cell').textContent) &&
			/vibration/.test(document.querySelector('#alarm-rows .sensor-cell').textContent)`, alarmRowIs(incident, "ACTIVE")), pageState)

	b.do(t, 10*time.Second, "acknowledge the incident",
		chromedp.SendKeys(chromedp.ID("ack-by"), "Ada"),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#alarm-rows tr[data-alarm-id=%s] button.ack`, jsString(incident)))),
	)
	b.waitFor(t, 10*time.Second, "the line says ACKNOWLEDGED", alarmRowIs(incident, "ACKNOWLEDGED"), pageState)
	for _, a := range alarms.Data {
		var got alarm
		svc.call(t, http.MethodGet, "/alarms/"+url.PathEscape(a.ID), nil, &got)
		if got.State != "ACKNOWLEDGED" || got.Acknowledged == nil || got.Acknowledged.By != "Ada" {
			t.Errorf("alarm %s is %+v, want ACKNOWLEDGED by Ada", a.ID, got)
		}
	}
}
