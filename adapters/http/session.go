package http

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/production-line-monitor/plm/ports"
)

// DefaultSessionTTL is how long a browser session lasts when Config.SessionTTL is zero.
const DefaultSessionTTL = 12 * time.Hour

// sessionCookie is the cookie of a browser session.
const sessionCookie = "plm_session"

// sessionVersion starts every session cookie: a later format takes another version.
const sessionVersion = "v1"

// sessionSecretLabel is what each key's session secret is derived from (with the key).
const sessionSecretLabel = "plm session secret " + sessionVersion

// sessions issue and check browser sessions, so that a browser never has to carry an API key
// in a URL, a page or a log line: it trades the key for a cookie once (POST /session).
//
// A session is stateless, so that every serve process accepts it, and restarts lose none:
// its cookie is "v1.<expiry>.<fingerprint>.<mac>", the expiry in Unix seconds, the
// fingerprint the first 16 hex digits of the key's SHA-256 (as the rate limiter names the
// key), and the mac an HMAC-SHA256 over "v1.<expiry>.<fingerprint>" keyed by a secret derived
// from the key (an HMAC-SHA256 of sessionSecretLabel keyed by the key). The key itself is
// never in it. A process checks the mac with the key of that fingerprint in PLM_API_KEYS:
// removing a key from it ends the key's sessions, and the session's scope is always the one
// the key has now.
type sessions struct {
	keys []sessionKey
	ttl  time.Duration
	now  func() time.Time
}

// sessionKey is a configured key as sessions know it.
type sessionKey struct {
	sum         [sha256.Size]byte
	fingerprint string
	secret      []byte
	scope       Scope
}

// session is a checked session: whose key, and until when.
type session struct {
	fingerprint string
	scope       Scope
	expires     time.Time
}

func newSessions(keys []APIKey, ttl time.Duration, now func() time.Time) *sessions {
	s := &sessions{ttl: ttl, now: now}
	for _, k := range keys {
		sum := sha256.Sum256([]byte(k.Key))
		mac := hmac.New(sha256.New, []byte(k.Key))
		mac.Write([]byte(sessionSecretLabel))
		s.keys = append(s.keys, sessionKey{sum: sum, fingerprint: hex.EncodeToString(sum[:8]),
			secret: mac.Sum(nil), scope: k.Scope})
	}
	return s
}

// lookup finds the configured key equal to key, comparing its SHA-256 with every key's in
// constant time (all of them, whichever matches).
func (s *sessions) lookup(key string) (sessionKey, bool) {
	sum := sha256.Sum256([]byte(key))
	found := -1
	for i := range s.keys {
		if subtle.ConstantTimeCompare(sum[:], s.keys[i].sum[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return sessionKey{}, false
	}
	return s.keys[found], true
}

// issue makes the cookie value of a new session of k, and says when it expires.
func (s *sessions) issue(k sessionKey) (string, time.Time) {
	expires := s.now().Add(s.ttl).Truncate(time.Second)
	payload := sessionVersion + "." + strconv.FormatInt(expires.Unix(), 10) + "." + k.fingerprint
	return payload + "." + base64.RawURLEncoding.EncodeToString(sign(k.secret, payload)), expires
}

func sign(secret []byte, payload string) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(payload))
	return mac.Sum(nil)
}

// check reads a cookie value: a session that is well formed, signed by a configured key,
// and not expired.
func (s *sessions) check(value string) (session, bool) {
	parts := strings.Split(value, ".")
	if len(parts) != 4 || parts[0] != sessionVersion {
		return session{}, false
	}
	unix, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return session{}, false
	}
	expires := time.Unix(unix, 0)
	if !s.now().Before(expires) {
		return session{}, false
	}
	mac, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil {
		return session{}, false
	}
	payload := value[:len(value)-len(parts[3])-1]
	for _, k := range s.keys {
		if k.fingerprint == parts[2] && hmac.Equal(mac, sign(k.secret, payload)) {
			return session{fingerprint: k.fingerprint, scope: k.scope, expires: expires}, true
		}
	}
	return session{}, false
}

// authenticateSession lets through a request that presents no key but a valid session
// cookie, with the scope of the session's key. A request that may change something (any
// method but GET, HEAD and OPTIONS) must come from the service's own pages: a browser sends
// the cookie with requests that other sites make it send, and SameSite is only a first line.
func (s *Server) authenticateSession(c *fiber.Ctx) error {
	value := c.Cookies(sessionCookie)
	if value == "" {
		return &apiError{status: fiber.StatusUnauthorized, code: codeUnauthorized, message: "an API key is required"}
	}
	sess, ok := s.sessions.check(value)
	if !ok {
		return &apiError{status: fiber.StatusUnauthorized, code: codeUnauthorized,
			message: "the session is not valid or has expired; sign in again"}
	}
	if !safeMethod(c.Method()) && !sameOrigin(c) {
		return &apiError{status: fiber.StatusForbidden, code: codeForbidden,
			message: "a change made with a session cookie must come from this service's own pages (same origin)"}
	}
	c.Locals(localCaller, sess.fingerprint)
	c.Locals(localScope, sess.scope)
	c.Locals(localSession, sess.expires)
	return c.Next()
}

func safeMethod(m string) bool {
	return m == fiber.MethodGet || m == fiber.MethodHead || m == fiber.MethodOptions
}

// sameOrigin reports whether a browser says that the request comes from a page of this
// service: Sec-Fetch-Site is same-origin or, from a browser that does not send it, Origin
// names the host asked.
func sameOrigin(c *fiber.Ctx) bool {
	switch c.Get("Sec-Fetch-Site") {
	case "same-origin":
		return true
	case "":
	default:
		return false
	}
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, string(c.Request().Host()))
}

// crossSite reports whether a browser says that the request comes from another site's page.
// Clients that are not browsers send neither header, and are not.
func crossSite(c *fiber.Ctx) bool {
	if c.Get("Sec-Fetch-Site") == "" && c.Get(fiber.HeaderOrigin) == "" {
		return false
	}
	return !sameOrigin(c)
}

// sessionRequest is the body of POST /session.
type sessionRequest struct {
	Key string `json:"key"`
}

// decodeSessionRequest reads the key from a form (application/x-www-form-urlencoded) or a
// JSON object.
func decodeSessionRequest(c *fiber.Ctx) (string, error) {
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil {
		mt = ""
	}
	var key string
	switch mt {
	case fiber.MIMEApplicationForm:
		key = string(c.Request().PostArgs().Peek("key"))
	case fiber.MIMEApplicationJSON:
		var raw struct {
			Key json.RawMessage `json:"key"`
		}
		if err := decodeFields(c.Request().Body(), &raw, "key"); err != nil {
			return "", err
		}
		s, ok := decodeString(raw.Key)
		if !ok {
			return "", malformedJSON("1 field is of the wrong JSON type", detail{Field: "key", Message: "must be a string"})
		}
		key = s
	default:
		return "", &apiError{status: fiber.StatusUnsupportedMediaType, code: codeUnsupportedMediaType,
			message: "Content-Type must be application/x-www-form-urlencoded or application/json"}
	}
	if key = strings.TrimSpace(key); key == "" {
		return "", &ports.ValidationError{Violations: []ports.Violation{{Field: "key", Message: "is required: an API key with the read or admin scope"}}}
	}
	return key, nil
}

// createSession is POST /session: a read or admin key, sent in the body, is traded for a
// session cookie. It needs no key in the headers; attempts are rate limited, those with a
// wrong key by the client's address.
func (s *Server) createSession(c *fiber.Ctx) error {
	if crossSite(c) {
		return &apiError{status: fiber.StatusForbidden, code: codeForbidden,
			message: "a session may only be opened from this service's own pages (same origin)"}
	}
	key, err := decodeSessionRequest(c)
	if err != nil {
		return err
	}
	k, known := s.sessions.lookup(key)
	caller := k.fingerprint
	if !known {
		caller = "session-attempt:" + c.IP()
	}
	if err := s.allow(c, caller); err != nil {
		return err
	}
	switch {
	case !known:
		return &apiError{status: fiber.StatusUnauthorized, code: codeUnauthorized, message: "the API key is not valid"}
	case !k.scope.allows(ScopeRead):
		return &apiError{status: fiber.StatusForbidden, code: codeForbidden,
			message: "this API key may not open a session: it needs the read scope"}
	}
	value, _ := s.sessions.issue(k)
	c.Cookie(&fiber.Cookie{
		Name:     sessionCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   int(s.sessions.ttl / time.Second),
		Secure:   c.Protocol() == "https",
		HTTPOnly: true,
		SameSite: fiber.CookieSameSiteStrictMode,
	})
	return c.SendStatus(fiber.StatusNoContent)
}

// sessionResponse is the answer of GET /session.
type sessionResponse struct {
	Scope     Scope    `json:"scope"`
	ExpiresAt jsonTime `json:"expiresAt"` // null for a key, which does not expire
}

// sessionInfo is GET /session: the scope of the session (or key) the request carries, and
// when the session expires.
func (s *Server) sessionInfo(c *fiber.Ctx) error {
	scope, _ := c.Locals(localScope).(Scope)
	expires, _ := c.Locals(localSession).(time.Time)
	return c.JSON(sessionResponse{Scope: scope, ExpiresAt: jsonTime(expires)}, mimeJSON)
}

// deleteSession is DELETE /session: the browser is told to forget its cookie. The cookie
// stays valid until it expires (sessions are stateless); the browser no longer has it.
func (s *Server) deleteSession(c *fiber.Ctx) error {
	c.Cookie(&fiber.Cookie{
		Name:     sessionCookie,
		Path:     "/",
		Expires:  fasthttp.CookieExpireDelete,
		Secure:   c.Protocol() == "https",
		HTTPOnly: true,
		SameSite: fiber.CookieSameSiteStrictMode,
	})
	return c.SendStatus(fiber.StatusNoContent)
}
