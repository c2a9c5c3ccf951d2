package outbound_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/production-line-monitor/plm/adapters/outbound"
)

const secret = "0123456789abcdef0123456789abcdef"

var now = time.Date(2026, 11, 27, 8, 15, 0, 0, time.UTC)

// The signature is v1= and the hex HMAC-SHA256 of "<timestamp>.<body>", as the
// documentation tells receivers to compute it.
func TestSign_is_the_documented_hmac(t *testing.T) {
	body := []byte(`{"id":"e-1","type":"alarm.opened"}`)
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte("1795767300." + string(body)))
	assert.Equal(t, "v1="+hex.EncodeToString(h.Sum(nil)), outbound.Sign(secret, 1795767300, body))
	// As computed by openssl, the way docs/NOTIFICATIONS.md shows:
	// printf '%s' '1795767300.{"id":"e-1"}' | openssl dgst -sha256 -hmac "$SECRET" -r
	assert.Equal(t, "v1=dcc8f1f12c9b6c5d670defcc836657443d93e4e0ee7b8c75acc7bdd8da04f014",
		outbound.Sign(secret, 1795767300, []byte(`{"id":"e-1"}`)))
}

func TestVerify(t *testing.T) {
	body := []byte(`{"id":"e-1","type":"alarm.opened","data":{}}`)
	ts := now.Unix()
	tsText := strconv.FormatInt(ts, 10)
	good := outbound.Sign(secret, ts, body)
	otherSecret := outbound.Sign("another-secret-of-16+", ts, body)

	tests := []struct {
		name      string
		secret    string
		timestamp string
		body      string
		signature string
		now       time.Time
		tolerance time.Duration
		want      error // nil: valid
	}{
		{"good", secret, tsText, string(body), good, now, time.Minute, nil},
		{"good_a_minute_late_at_the_tolerance", secret, tsText, string(body), good, now.Add(time.Minute), time.Minute, nil},
		{"good_among_several_signatures", secret, tsText, string(body), otherSecret + ", " + good, now, time.Minute, nil},
		{"good_upper_case_hex", secret, tsText, string(body), "v1=" + upper(good[3:]), now, time.Minute, nil},
		{"default_tolerance_5_minutes", secret, tsText, string(body), good, now.Add(5 * time.Minute), 0, nil},
		{"tampered_body", secret, tsText, `{"id":"e-1","type":"alarm.cleared","data":{}}`, good, now, time.Minute, outbound.ErrMismatch},
		{"body_with_a_trailing_newline", secret, tsText, string(body) + "\n", good, now, time.Minute, outbound.ErrMismatch},
		{"wrong_secret", "not-the-secret-at-all", tsText, string(body), good, now, time.Minute, outbound.ErrMismatch},
		{"timestamp_changed", secret, strconv.FormatInt(ts+1, 10), string(body), good, now, time.Minute, outbound.ErrMismatch},
		{"stale_timestamp", secret, tsText, string(body), good, now.Add(time.Minute + time.Second), time.Minute, outbound.ErrStale},
		{"stale_beyond_the_default", secret, tsText, string(body), good, now.Add(5*time.Minute + time.Second), 0, outbound.ErrStale},
		{"timestamp_from_the_future", secret, tsText, string(body), good, now.Add(-2 * time.Minute), time.Minute, outbound.ErrStale},
		{"timestamp_not_a_number", secret, "yesterday", string(body), good, now, time.Minute, outbound.ErrMalformed},
		{"timestamp_in_milliseconds_mismatches", secret, tsText + "000", string(body), good, now, time.Minute, outbound.ErrMismatch},
		{"no_signature", secret, tsText, string(body), "", now, time.Minute, outbound.ErrMalformed},
		{"other_scheme_only", secret, tsText, string(body), "v0=" + good[3:], now, time.Minute, outbound.ErrMalformed},
		{"signature_not_hex", secret, tsText, string(body), "v1=zz", now, time.Minute, outbound.ErrMalformed},
		{"signature_cut_short", secret, tsText, string(body), good[:len(good)-2], now, time.Minute, outbound.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := outbound.Verify(tt.secret, tt.timestamp, []byte(tt.body), tt.signature, tt.now, tt.tolerance)
			if tt.want == nil {
				assert.NoError(t, err)
				return
			}
			assert.True(t, errors.Is(err, tt.want), "Verify = %v, want %v", err, tt.want)
		})
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
