package http

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/gofiber/fiber/v2"

	"github.com/production-line-monitor/plm/domain/event"
)

// FuzzSubscriptionBody: POST /subscriptions. A body is accepted (201) exactly when, read as
// encoding/json reads it, its url is an absolute http or https URL with a host, of at most
// 2048 bytes without white space or control characters; its types a non-empty list of
// transition types, none twice; and its secret absent, null, or 16 to 256 printable ASCII
// characters without spaces. Anything else is a 4xx of the contract, never a 5xx. What is
// accepted is stored as given, the secret is shown once (the one given, or 32 random bytes
// in hex), and never again.
func FuzzSubscriptionBody(f *testing.F) {
	for _, seed := range []string{
		`{"url":"https://pager.example/hook","types":["alarm.opened"],"secret":"0123456789abcdef"}`,
		`{"url":"http://10.0.0.1:8080/x?y=1","types":["alarm.opened","alarm.cleared","equipment.status_changed"]}`,
		`{"url":"ftp://x","types":["alarm.opened"]}`, `{"url":"https://x","types":[]}`,
		`{"url":"https://x","types":["anomaly"]}`, `{"url":"https://x","types":["alarm.opened","alarm.opened"]}`,
		`{"url":"https://x","types":["alarm.opened"],"secret":"short"}`, `{"url":"https://x","types":"alarm.opened"}`,
		`{"url":"/relative","types":["alarm.acknowledged"]}`, `{"URL":"https://x","Types":["alarm.escalated"]}`,
		`{"url":"https://x","types":["alarm.opened"],"secret":null}`, `[]`, `{}`, `null`, `{"url":1}`,
		`{"url":"https://x y","types":["alarm.opened"]}`, `{"url":"https://a","types":["alarm.opened"],"URL":"https://b"}`,
		`{"secret":"aaaaaaaaaaaaaaaa","url":"https://a","types":["alarm.opened"],"ſecret":"bbbbbbbbbbbbbbbb"}`, `{"url":"https://x","types":["alarm.opened"],"secret":"with a space inside!"}`,
	} {
		f.Add(seed)
	}
	s := newFuzzService(f)
	f.Fuzz(func(t *testing.T, body string) {
		if strings.TrimSpace(body) == "" {
			return
		}
		status, answer := s.serve(t, fiber.MethodPost, "/subscriptions", body, nil)
		want, ok := wantSubscription(body)
		if status != fiber.StatusCreated {
			if ok {
				t.Fatalf("%s: %d %s, want 201", body, status, answer)
			}
			errorOf(t, status, answer)
			return
		}
		if !ok {
			t.Fatalf("%s: accepted: %s", body, answer)
		}
		var got struct {
			ID     string   `json:"id"`
			URL    string   `json:"url"`
			Types  []string `json:"types"`
			Secret string   `json:"secret"`
		}
		if err := json.Unmarshal(answer, &got); err != nil {
			t.Fatalf("%s: %s (%v)", body, answer, err)
		}
		if got.URL != want.url || !slices.Equal(got.Types, want.types) {
			t.Fatalf("%s: stored %s", body, answer)
		}
		if want.secret != nil && got.Secret != *want.secret {
			t.Fatalf("%s: secret %q, want the one given", body, got.Secret)
		}
		if b, err := hex.DecodeString(got.Secret); want.secret == nil && (err != nil || len(b) != 32) {
			t.Fatalf("%s: generated secret %q, want 32 random bytes in hex", body, got.Secret)
		}
		status, again := s.serve(t, fiber.MethodGet, "/subscriptions/"+url.PathEscape(got.ID), "", nil)
		if status != fiber.StatusOK || bytes.Contains(again, []byte(`"secret"`)) || !bytes.Contains(again, []byte(got.ID)) {
			t.Fatalf("%s: GET %d %s", body, status, again)
		}
		if status, _ := s.serve(t, fiber.MethodDelete, "/subscriptions/"+url.PathEscape(got.ID), "", nil); status != fiber.StatusNoContent {
			t.Fatalf("%s: DELETE %d", body, status)
		}
	})
}

type wantedSubscription struct {
	url    string
	types  []string
	secret *string
}

// givenTwice reports whether the object body names url, types or secret twice (in any case,
// as encoding/json matches names).
func givenTwice(body string) bool {
	dec := json.NewDecoder(strings.NewReader(body))
	if _, err := dec.Token(); err != nil {
		return false
	}
	count := map[string]int{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return false
		}
		for _, name := range []string{"url", "types", "secret"} {
			if strings.EqualFold(fmt.Sprint(t), name) {
				count[name]++
			}
		}
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return false
		}
	}
	return count["url"] > 1 || count["types"] > 1 || count["secret"] > 1
}

// wantSubscription reads body as encoding/json does and says whether the contract accepts it.
func wantSubscription(body string) (wantedSubscription, bool) {
	var raw struct {
		URL    *string   `json:"url"`
		Types  *[]string `json:"types"`
		Secret *string   `json:"secret"`
	}
	if b := strings.TrimSpace(body); !strings.HasPrefix(b, "{") || json.Unmarshal([]byte(b), &raw) != nil || givenTwice(b) {
		return wantedSubscription{}, false
	}
	if raw.URL == nil || raw.Types == nil || len(*raw.Types) == 0 {
		return wantedSubscription{}, false
	}
	w := wantedSubscription{url: *raw.URL, types: *raw.Types, secret: raw.Secret}
	u, err := url.Parse(w.url)
	if len(w.url) > 2048 || strings.IndexFunc(w.url, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 ||
		err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return w, false
	}
	for i, typ := range w.types {
		if !event.Type(typ).Transition() || slices.Contains(w.types[:i], typ) {
			return w, false
		}
	}
	if sec := w.secret; sec != nil {
		if len(*sec) < 16 || len(*sec) > 256 {
			return w, false
		}
		for i := 0; i < len(*sec); i++ {
			if (*sec)[i] <= ' ' || (*sec)[i] > '~' {
				return w, false
			}
		}
	}
	return w, true
}
