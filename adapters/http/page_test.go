package http_test

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pageRequest asks without a key, as a browser that has not signed in does.
func pageRequest(method, target string) *http.Request {
	return httptestRequest(method, target)
}

// assetLink is an asset as index.html links it: its name and version.
var assetLink = regexp.MustCompile(`(?:src|href)="/assets/([^"?]+)\?v=([0-9a-f]{16})"`)

func requireSecurityHeaders(t *testing.T, r response) {
	t.Helper()
	csp := r.header.Get("Content-Security-Policy")
	assert.Contains(t, csp, "default-src 'self'")
	assert.Contains(t, csp, "frame-ancestors 'none'")
	assert.NotContains(t, csp, "unsafe-inline")
	assert.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"))
	assert.Equal(t, "no-referrer", r.header.Get("Referrer-Policy"))
}

func TestPage_index_is_served_without_a_key_and_never_cached(t *testing.T) {
	h := newHarness(t)

	r := h.send(pageRequest(http.MethodGet, "/"))

	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	assert.Equal(t, "text/html; charset=utf-8", r.header.Get("Content-Type"))
	assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
	requireSecurityHeaders(t, r)
	body := string(r.body)
	assert.Contains(t, body, `<form id="login-form" method="post" action="/session">`)
	assert.Contains(t, body, `id="grid"`)
	assert.Contains(t, body, `id="alarm-rows"`)
	assert.NotEmpty(t, r.header.Get("X-Request-ID"))
}

// The CSP forbids inline code, so the page must hold none: every script is a file, and no
// element carries a style or an event handler attribute.
func TestPage_index_holds_no_inline_script_or_style(t *testing.T) {
	h := newHarness(t)
	body := string(h.send(pageRequest(http.MethodGet, "/")).body)

	for _, script := range regexp.MustCompile(`<script[^>]*>`).FindAllString(body, -1) {
		assert.Contains(t, script, ` src="/assets/`, "an inline script: %s", script)
	}
	assert.NotContains(t, body, "<style")
	assert.NotRegexp(t, `\sstyle=`, body)
	assert.NotRegexp(t, `\son[a-z]+=`, body)
	assert.NotContains(t, body, "javascript:")
	assert.NotRegexp(t, `(?i)https?://`, body, "the page loads nothing from elsewhere")
}

func TestPage_index_links_every_asset_at_its_version(t *testing.T) {
	h := newHarness(t)
	body := string(h.send(pageRequest(http.MethodGet, "/")).body)

	links := assetLink.FindAllStringSubmatch(body, -1)
	names := make([]string, 0, len(links))
	for _, l := range links {
		names = append(names, l[1])
	}
	assert.ElementsMatch(t, []string{"app.css", "app.js", "icon.svg"}, names)
	assert.NotRegexp(t, `"/assets/[^"?]+"`, body, "an asset linked without its version")
}

func TestPage_assets_have_their_content_type_and_cache_by_version(t *testing.T) {
	h := newHarness(t)
	body := string(h.send(pageRequest(http.MethodGet, "/")).body)
	want := map[string]string{
		"app.js":   "text/javascript; charset=utf-8",
		"app.css":  "text/css; charset=utf-8",
		"icon.svg": "image/svg+xml",
	}
	links := assetLink.FindAllStringSubmatch(body, -1)
	require.Len(t, links, len(want))
	for _, l := range links {
		name, version := l[1], l[2]
		t.Run(name, func(t *testing.T) {
			versioned := h.send(pageRequest(http.MethodGet, "/assets/"+name+"?v="+version))
			require.Equal(t, http.StatusOK, versioned.status, "body: %s", versioned.body)
			assert.Equal(t, want[name], versioned.header.Get("Content-Type"))
			assert.Equal(t, "public, max-age=31536000, immutable", versioned.header.Get("Cache-Control"))
			assert.Equal(t, `"`+version+`"`, versioned.header.Get("ETag"))
			requireSecurityHeaders(t, versioned)
			assert.NotEmpty(t, versioned.body)

			bare := h.send(pageRequest(http.MethodGet, "/assets/"+name))
			require.Equal(t, http.StatusOK, bare.status)
			assert.Equal(t, "no-cache", bare.header.Get("Cache-Control"), "an old or missing version must be revalidated")
			assert.Equal(t, versioned.body, bare.body)

			stale := h.send(pageRequest(http.MethodGet, "/assets/"+name+"?v=0000000000000000"))
			assert.Equal(t, "no-cache", stale.header.Get("Cache-Control"))

			again := pageRequest(http.MethodGet, "/assets/"+name)
			again.Header.Set("If-None-Match", `W/"x", "`+version+`"`)
			notModified := h.send(again)
			assert.Equal(t, http.StatusNotModified, notModified.status)
			assert.Empty(t, notModified.body)

			changed := pageRequest(http.MethodGet, "/assets/"+name)
			changed.Header.Set("If-None-Match", `"0000000000000000"`)
			assert.Equal(t, http.StatusOK, h.send(changed).status)
		})
	}
}

func TestPage_head_answers_like_get_without_a_body(t *testing.T) {
	h := newHarness(t)
	for _, target := range []string{"/", "/assets/app.js"} {
		get := h.send(pageRequest(http.MethodGet, target))
		head := h.send(pageRequest(http.MethodHead, target))

		require.Equal(t, http.StatusOK, head.status, target)
		assert.Equal(t, get.header.Get("Content-Type"), head.header.Get("Content-Type"), target)
		assert.Equal(t, get.header.Get("Content-Security-Policy"), head.header.Get("Content-Security-Policy"), target)
		assert.Equal(t, strconv.Itoa(len(get.body)), head.header.Get("Content-Length"), target)
		assert.Empty(t, head.body, target)
	}
}

func TestPage_unknown_asset_is_404_and_other_paths_are_unchanged(t *testing.T) {
	h := newHarness(t)

	h.send(pageRequest(http.MethodGet, "/assets/nope.js")).apiError(t, http.StatusNotFound, "not_found")
	h.send(pageRequest(http.MethodGet, "/assets/..%2Findex.html")).apiError(t, http.StatusNotFound, "not_found")
	// Only the exact paths are open: anything else still asks for a key first, then is 404.
	h.send(pageRequest(http.MethodGet, "/index.html")).apiError(t, http.StatusUnauthorized, "unauthorized")
	h.send(pageRequest(http.MethodGet, "/assets/app.js/x")).apiError(t, http.StatusUnauthorized, "unauthorized")
	h.get("/index.html").apiError(t, http.StatusNotFound, "not_found")
	h.get("/assets/").apiError(t, http.StatusNotFound, "not_found")
	h.send(request(http.MethodPost, "/", "")).apiError(t, http.StatusMethodNotAllowed, "method_not_allowed")
}

func TestPage_requests_are_logged_by_route_pattern(t *testing.T) {
	h := newHarness(t)
	h.send(pageRequest(http.MethodGet, "/"))
	h.send(pageRequest(http.MethodGet, "/assets/app.js"))
	h.get("/nope")

	var routes []string
	for _, l := range logLines(t, h.logs) {
		if l["msg"] == "http request" {
			routes = append(routes, l["route"].(string))
		}
	}
	assert.Equal(t, []string{"/", "/assets/:name", "unmatched"}, routes)
	assert.False(t, strings.Contains(h.logs.String(), "app.js"), "the asset's name is not a label")
}
