package http

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Scope is what an API key may do.
type Scope string

// The scopes. A key without one (a bare key) is an admin key.
const (
	// ScopeIngest may post readings to the webhook and nothing else: a machine's key.
	ScopeIngest Scope = "ingest"
	// ScopeRead may read equipment, history, alerts and metrics: a dashboard's key.
	ScopeRead Scope = "read"
	// ScopeAdmin may do everything, including changing equipment metadata.
	ScopeAdmin Scope = "admin"
)

// APIKey is one configured key and its scope.
type APIKey struct {
	Key   string
	Scope Scope
}

// ParseAPIKey reads one entry of PLM_API_KEYS: "ingest:<key>", "read:<key>", "admin:<key>",
// or a bare "<key>" with full access. An entry that starts like a scope (lowercase letters,
// then a colon) must name a known one, so that a mistyped scope is refused rather than taken
// as part of an admin key. The error never quotes the key.
func ParseAPIKey(entry string) (APIKey, error) {
	k := APIKey{Key: entry, Scope: ScopeAdmin}
	if prefix, rest, ok := strings.Cut(entry, ":"); ok && isScopeWord(prefix) {
		switch s := Scope(prefix); s {
		case ScopeIngest, ScopeRead, ScopeAdmin:
			k = APIKey{Key: rest, Scope: s}
		default:
			return APIKey{}, fmt.Errorf("unknown scope %q: use ingest:, read: or admin: before the key, or none for full access", prefix)
		}
	}
	if k.Key == "" {
		return APIKey{}, errors.New("a key must not be empty")
	}
	if strings.ContainsAny(k.Key, " \t\r\n\v\f") {
		return APIKey{}, errors.New("a key must not contain white space")
	}
	return k, nil
}

func isScopeWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

// allows reports whether a key of scope have may make a request that needs scope need.
func (have Scope) allows(need Scope) bool { return have == ScopeAdmin || have == need }

// require lets through callers whose key allows scope need and refuses the others with 403.
func (s *Server) require(need Scope) fiber.Handler {
	refusal := &apiError{status: fiber.StatusForbidden, code: codeForbidden,
		message: fmt.Sprintf("this API key may not do this: it needs the %s scope", need)}
	return func(c *fiber.Ctx) error {
		if have, _ := c.Locals(localScope).(Scope); !have.allows(need) {
			return refusal
		}
		return c.Next()
	}
}
