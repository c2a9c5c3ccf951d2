package http_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	plmhttp "github.com/production-line-monitor/plm/adapters/http"
	"github.com/production-line-monitor/plm/adapters/memory"
)

// sessionRequest is POST /session with the key in a form, from no browser page.
func sessionRequest(key string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/session", strings.NewReader(url.Values{"key": {key}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// sessionCookie is the plm_session cookie an answer sets, or nil.
func sessionCookie(r response) *http.Cookie {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "plm_session" {
			return c
		}
	}
	return nil
}

// signIn opens a session with key and returns its cookie.
func (h *harness) signIn(key string) *http.Cookie {
	h.t.Helper()
	r := h.send(sessionRequest(key))
	require.Equal(h.t, http.StatusNoContent, r.status, "%s", r.body)
	c := sessionCookie(r)
	require.NotNil(h.t, c, "no plm_session cookie in %v", r.header)
	return c
}

// withCookie is a request without key that carries the session cookie c.
func withCookie(method, target, body string, c *http.Cookie) *http.Request {
	r := request(method, target, body)
	r.Header.Del("X-API-Key")
	r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	return r
}

func TestSession_a_read_key_opens_a_session_with_a_safe_cookie(t *testing.T) {
	h := newHarness(t)
	r := h.send(sessionRequest(readKey))
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	assert.Empty(t, r.body)
	c := sessionCookie(r)
	require.NotNil(t, c)
	assert.True(t, c.HttpOnly, "HttpOnly")
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
	assert.Equal(t, "/", c.Path)
	assert.Equal(t, 12*3600, c.MaxAge, "the default TTL")
	assert.False(t, c.Secure, "not over plain HTTP")
	assert.NotContains(t, c.Value, readKey, "the cookie holds the key")
	assert.Regexp(t, `^v1\.[0-9]+\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$`, c.Value)

	// Over HTTPS (behind a proxy that says so), the cookie is Secure.
	req := sessionRequest(readKey)
	req.Header.Set("X-Forwarded-Proto", "https")
	assert.True(t, sessionCookie(h.send(req)).Secure, "Secure over HTTPS")

	// JSON works as a form does; so does an admin key.
	req = httptest.NewRequest(http.MethodPost, "/session", strings.NewReader(`{"key": "`+testKey+`"}`))
	req.Header.Set("Content-Type", "application/json")
	r = h.send(req)
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	assert.NotNil(t, sessionCookie(r))

	assert.NotContains(t, h.logs.String(), readKey)
	assert.NotContains(t, h.logs.String(), testKey)
}

func TestSession_the_cookie_stands_for_the_key(t *testing.T) {
	h := newHarness(t, withConfig(func(c *plmhttp.Config) { c.SessionTTL = time.Hour }))
	c := h.signIn(readKey)
	assert.Equal(t, 3600, c.MaxAge)

	assert.Equal(t, http.StatusOK, h.send(withCookie(http.MethodGet, "/equipment", "", c)).status)
	r := h.send(withCookie(http.MethodGet, "/session", "", c))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, map[string]any{"scope": "read", "expiresAt": "2026-11-27T09:15:00.000Z"}, r.json(t))

	// With the key's scope: a read session may not change equipment, even from the page.
	put := withCookie(http.MethodPut, "/equipment/press-01", `{"name": "Press"}`, c)
	put.Header.Set("Sec-Fetch-Site", "same-origin")
	h.send(put).apiError(t, http.StatusForbidden, "forbidden")

	// GET /session with a key: its scope, and no expiry.
	assert.Equal(t, map[string]any{"scope": "admin", "expiresAt": nil}, h.get("/session").json(t))
	h.send(httptestRequest(http.MethodGet, "/session")).apiError(t, http.StatusUnauthorized, "unauthorized")
}

// Sessions are kept nowhere: another server with the same keys accepts the cookie.
func TestSession_works_on_every_server_with_the_key(t *testing.T) {
	c := newHarness(t).signIn(readKey)
	other := newHarness(t)
	assert.Equal(t, http.StatusOK, other.send(withCookie(http.MethodGet, "/equipment", "", c)).status)

	// A server without the key refuses it: removing a key ends its sessions.
	without := newHarness(t, withConfig(func(cfg *plmhttp.Config) { cfg.APIKeys = []string{testKey} }))
	without.send(withCookie(http.MethodGet, "/equipment", "", c)).apiError(t, http.StatusUnauthorized, "unauthorized")
}

func TestSession_refuses_expired_and_forged_cookies(t *testing.T) {
	h := newHarness(t)
	c := h.signIn(readKey)
	version, rest, _ := strings.Cut(c.Value, ".")
	expiry, rest, _ := strings.Cut(rest, ".")
	fingerprint, mac, _ := strings.Cut(rest, ".")
	flip := func(s string) string { // changes the last character
		last := "A"
		if strings.HasSuffix(s, "A") {
			last = "B"
		}
		return s[:len(s)-1] + last
	}
	admin := h.signIn(testKey)
	_, adminRest, _ := strings.Cut(admin.Value, ".")
	_, adminRest, _ = strings.Cut(adminRest, ".")
	adminFingerprint, _, _ := strings.Cut(adminRest, ".")

	for name, value := range map[string]string{
		"mac_changed":         strings.Join([]string{version, expiry, fingerprint, flip(mac)}, "."),
		"expiry_extended":     strings.Join([]string{version, expiry + "0", fingerprint, mac}, "."),
		"other_key":           strings.Join([]string{version, expiry, adminFingerprint, mac}, "."),
		"other_version":       strings.Join([]string{"v2", expiry, fingerprint, mac}, "."),
		"no_mac":              strings.Join([]string{version, expiry, fingerprint}, "."),
		"the_key_itself":      readKey,
		"mac_of_another_form": strings.Join([]string{version, expiry, fingerprint, mac + "="}, "."),
	} {
		t.Run(name, func(t *testing.T) {
			r := h.send(withCookie(http.MethodGet, "/equipment", "", &http.Cookie{Name: "plm_session", Value: value}))
			r.apiError(t, http.StatusUnauthorized, "unauthorized")
		})
	}

	t.Run("expired", func(t *testing.T) {
		h.clock.Advance(12*time.Hour - time.Second)
		assert.Equal(t, http.StatusOK, h.send(withCookie(http.MethodGet, "/equipment", "", c)).status, "a second before it expires")
		h.clock.Advance(time.Second)
		h.send(withCookie(http.MethodGet, "/equipment", "", c)).apiError(t, http.StatusUnauthorized, "unauthorized")
	})
}

func TestSession_refuses_bad_attempts(t *testing.T) {
	h := newHarness(t)
	h.send(sessionRequest(ingestKey)).apiError(t, http.StatusForbidden, "forbidden")
	h.send(sessionRequest("wrong-key")).apiError(t, http.StatusUnauthorized, "unauthorized")
	e := h.send(sessionRequest(" ")).apiError(t, http.StatusBadRequest, "validation_failed")
	assert.Equal(t, []string{"key"}, e.fields())

	json := func(body string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/session", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	h.send(json(`{"key": 42}`)).apiError(t, http.StatusBadRequest, "malformed_json")
	h.send(json(`{"key": `)).apiError(t, http.StatusBadRequest, "malformed_json")
	h.send(json(`{}`)).apiError(t, http.StatusBadRequest, "validation_failed")
	text := httptest.NewRequest(http.MethodPost, "/session", strings.NewReader(readKey))
	text.Header.Set("Content-Type", "text/plain")
	h.send(text).apiError(t, http.StatusUnsupportedMediaType, "unsupported_media_type")

	// From another site's page: refused, whatever the key.
	cross := sessionRequest(readKey)
	cross.Header.Set("Origin", "https://evil.example")
	h.send(cross).apiError(t, http.StatusForbidden, "forbidden")
	cross = sessionRequest(readKey)
	cross.Header.Set("Sec-Fetch-Site", "cross-site")
	h.send(cross).apiError(t, http.StatusForbidden, "forbidden")
	// From the service's own page: accepted.
	same := sessionRequest(readKey)
	same.Header.Set("Origin", "http://example.com") // httptest's Host
	assert.Equal(t, http.StatusNoContent, h.send(same).status)

	for _, key := range []string{ingestKey, readKey, "wrong-key"} {
		assert.NotContains(t, h.logs.String(), key)
	}
}

func TestSession_attempts_are_rate_limited(t *testing.T) {
	clock := memory.NewClock(t0)
	h := newHarness(t, withLimiter(memory.NewRateLimiter(2, time.Minute, clock.Now)))
	h.send(sessionRequest("wrong-1")).apiError(t, http.StatusUnauthorized, "unauthorized")
	h.send(sessionRequest("wrong-2")).apiError(t, http.StatusUnauthorized, "unauthorized")
	r := h.send(sessionRequest("wrong-3"))
	r.apiError(t, http.StatusTooManyRequests, "rate_limited")
	assert.NotEmpty(t, r.header.Get("Retry-After"))

	// A valid key counts against its own budget, as its requests do.
	h.signIn(readKey)
	h.signIn(readKey)
	h.send(sessionRequest(readKey)).apiError(t, http.StatusTooManyRequests, "rate_limited")
}

// A change made with the cookie must come from the service's own pages; a key needs no
// such proof.
func TestSession_cookie_changes_need_the_same_origin(t *testing.T) {
	h := newHarness(t)
	c := h.signIn(testKey)
	const body = `{"name": "Press 1"}`
	tests := []struct {
		name   string
		header map[string]string
		status int
	}{
		{"no_origin", nil, http.StatusForbidden},
		{"other_origin", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"null_origin", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"cross_site_fetch", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://example.com"}, http.StatusForbidden},
		{"same_site_fetch", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"same_origin_fetch", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"origin_of_the_host", map[string]string{"Origin": "http://example.com"}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := withCookie(http.MethodPut, "/equipment/press-01", body, c)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			resp := h.send(r)
			if tt.status == http.StatusForbidden {
				e := resp.apiError(t, http.StatusForbidden, "forbidden")
				assert.Contains(t, e.Error.Message, "same origin")
				return
			}
			assert.Equal(t, tt.status, resp.status, "%s", resp.body)
		})
	}

	// Reading needs no proof; a key sent with a cookie is judged alone, from anywhere.
	assert.Equal(t, http.StatusOK, h.send(withCookie(http.MethodGet, "/equipment/press-01", "", c)).status)
	keyed := withCookie(http.MethodPut, "/equipment/press-01", body, c)
	keyed.Header.Set("X-API-Key", testKey)
	keyed.Header.Set("Origin", "https://evil.example")
	assert.Equal(t, http.StatusOK, h.send(keyed).status)
	wrong := withCookie(http.MethodGet, "/equipment", "", c)
	wrong.Header.Set("X-API-Key", "wrong")
	h.send(wrong).apiError(t, http.StatusUnauthorized, "unauthorized")
}

func TestSession_delete_clears_the_cookie(t *testing.T) {
	h := newHarness(t)
	c := h.signIn(readKey)
	r := h.send(withCookie(http.MethodDelete, "/session", "", c))
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	cleared := sessionCookie(r)
	require.NotNil(t, cleared)
	assert.Empty(t, cleared.Value)
	assert.Equal(t, "/", cleared.Path)
	assert.True(t, cleared.Expires.Before(t0), "expires in the past: %v", cleared.Expires)
	// Without any cookie, too.
	assert.Equal(t, http.StatusNoContent, h.send(httptestRequest(http.MethodDelete, "/session")).status)
}

// The status page's EventSource sends no header: the stream takes the cookie.
func TestSession_opens_the_live_stream(t *testing.T) {
	h := newHarness(t)
	base := h.start()
	c := h.signIn(readKey)
	s := openStream(t, base, "/stream", http.Header{"Cookie": {c.Name + "=" + c.Value}})
	require.Equal(t, "3000", s.next().retry)
	h.appendEvents(statusEvent("ev-1", "press-01"))
	assert.Equal(t, []string{"ev-1"}, eventIDs(t, s.events(1)))

	ingest := newHarness(t)
	// An ingest key cannot open a session, so its stream is refused with the key itself.
	req := request(http.MethodGet, "/stream", "")
	req.Header.Set("X-API-Key", ingestKey)
	ingest.send(req).apiError(t, http.StatusForbidden, "forbidden")
}
