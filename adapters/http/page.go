package http

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// webFiles is the live status page: index.html and the assets it loads (web/assets), no
// build step.
//
//go:embed web
var webFiles embed.FS

// assetPrefix is where the page's assets are served from.
const assetPrefix = "/assets/"

// pageSecurityPolicy lets the page load its own scripts, styles and images and talk to its
// own origin, and nothing else: no inline script or style, no frame, no plugin.
const pageSecurityPolicy = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

// Cache-Control of the page and of its assets: the page is never stored (it names the
// current version of each asset), an asset asked for at its current version is kept for a
// year, and an asset asked for by its bare name is revalidated each time.
const (
	cacheIndex          = "no-store"
	cacheVersionedAsset = "public, max-age=31536000, immutable"
	cacheBareAsset      = "no-cache"
)

// assetTypes are the Content-Types of the files the page may ship, by extension; any other
// file in web/assets is refused at start.
var assetTypes = map[string]string{
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
}

// page serves the live status page (GET /) and its assets (GET /assets/:name). It needs no
// key: the page asks for one and opens a session.
type page struct {
	index  []byte
	assets map[string]asset
}

type asset struct {
	body        []byte
	contentType string
	version     string // the first 16 hex digits of the body's SHA-256
}

// newPage reads the page from fsys (index.html and assets/) and links the page to the current
// version of each asset: "/assets/app.js" in index.html becomes "/assets/app.js?v=<version>".
func newPage(fsys fs.FS) (*page, error) {
	index, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		return nil, fmt.Errorf("read page: %w", err)
	}
	entries, err := fs.ReadDir(fsys, "assets")
	if err != nil {
		return nil, fmt.Errorf("read page assets: %w", err)
	}
	p := &page{assets: make(map[string]asset, len(entries))}
	var links []string
	for _, e := range entries {
		if e.IsDir() {
			return nil, fmt.Errorf("page asset %s: folders are not served", e.Name())
		}
		name := e.Name()
		typ, ok := assetTypes[path.Ext(name)]
		if !ok {
			return nil, fmt.Errorf("page asset %s: no Content-Type known for its extension", name)
		}
		body, err := fs.ReadFile(fsys, "assets/"+name)
		if err != nil {
			return nil, fmt.Errorf("read page asset %s: %w", name, err)
		}
		sum := sha256.Sum256(body)
		a := asset{body: body, contentType: typ, version: hex.EncodeToString(sum[:8])}
		p.assets[name] = a
		links = append(links, `"`+assetPrefix+name+`"`, `"`+assetPrefix+name+"?v="+a.version+`"`)
	}
	p.index = []byte(strings.NewReplacer(links...).Replace(string(index)))
	return p, nil
}

// newEmbeddedPage is the page built into the binary.
func newEmbeddedPage() (*page, error) {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		return nil, fmt.Errorf("read page: %w", err)
	}
	return newPage(sub)
}

// setSecurityHeaders sets what every answer of the page carries.
func setSecurityHeaders(c *fiber.Ctx) {
	c.Set(fiber.HeaderContentSecurityPolicy, pageSecurityPolicy)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
}

// serveIndex is GET / (and HEAD /).
func (p *page) serveIndex(c *fiber.Ctx) error {
	setSecurityHeaders(c)
	c.Set(fiber.HeaderCacheControl, cacheIndex)
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Send(p.index)
}

// serveAsset is GET /assets/:name (and HEAD). An unknown name is 404 not_found.
func (p *page) serveAsset(c *fiber.Ctx) error {
	a, ok := p.assets[c.Params("name")]
	if !ok {
		return &apiError{status: fiber.StatusNotFound, code: codeNotFound, message: "no such asset"}
	}
	setSecurityHeaders(c)
	etag := `"` + a.version + `"`
	c.Set(fiber.HeaderETag, etag)
	if c.Query("v") == a.version {
		c.Set(fiber.HeaderCacheControl, cacheVersionedAsset)
	} else {
		c.Set(fiber.HeaderCacheControl, cacheBareAsset)
	}
	if match := c.Get(fiber.HeaderIfNoneMatch); match != "" && etagMatches(match, etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, a.contentType)
	return c.Send(a.body)
}

// etagMatches reports whether an If-None-Match header names etag (or is "*").
func etagMatches(header, etag string) bool {
	for _, candidate := range strings.Split(header, ",") {
		candidate = strings.TrimPrefix(strings.TrimSpace(candidate), "W/")
		if candidate == "*" || candidate == etag {
			return true
		}
	}
	return false
}
