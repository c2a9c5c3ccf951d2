// Package outbound sends the service's notifications: each delivery is an HTTP POST of the
// event's wire form to the subscription's URL, signed with the subscription's secret so
// that the receiver can tell it came from the service and was not altered or replayed.
//
// The signature is HMAC-SHA256 keyed with the secret, over the timestamp header's value, a
// dot, and the body exactly as received:
//
//	X-PLM-Signature: v1=hex(HMAC-SHA256(secret, timestamp + "." + body))
//
// Receivers written in Go can check it with Verify.
package outbound

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The headers of a delivery, besides Content-Type.
const (
	HeaderEventID    = "X-PLM-Event-Id"
	HeaderEventType  = "X-PLM-Event-Type"
	HeaderDeliveryID = "X-PLM-Delivery-Id"
	HeaderTimestamp  = "X-PLM-Timestamp"
	HeaderSignature  = "X-PLM-Signature"
)

// signatureScheme prefixes a signature of the current scheme in HeaderSignature.
const signatureScheme = "v1="

// DefaultTolerance is how far a delivery's timestamp may be from the receiver's clock when
// Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// Why Verify refuses a delivery.
var (
	// ErrMalformed: the timestamp is not whole Unix seconds, or the signature header holds
	// no v1 signature.
	ErrMalformed = errors.New("malformed timestamp or signature header")
	// ErrMismatch: no signature matches the body and timestamp under the secret; the
	// delivery was altered, or signed with another secret.
	ErrMismatch = errors.New("signature does not match")
	// ErrStale: the signature is right but the timestamp is too far from now; the delivery
	// may be replayed.
	ErrStale = errors.New("timestamp outside the tolerance")
)

// Sign is the value of HeaderSignature for body sent at timestamp (Unix seconds).
func Sign(secret string, timestamp int64, body []byte) string {
	return signatureScheme + hex.EncodeToString(mac(secret, strconv.FormatInt(timestamp, 10), body))
}

func mac(secret, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a delivery as received: timestamp and signature are the values of the
// X-PLM-Timestamp and X-PLM-Signature headers, body the request body, unaltered. It
// returns nil when one of the header's v1 signatures (several, comma-separated, are
// accepted) matches and the timestamp is within tolerance of now (DefaultTolerance when
// tolerance is not positive), either way; otherwise ErrMalformed, ErrMismatch or ErrStale,
// wrapped. The comparison takes constant time.
func Verify(secret, timestamp string, body []byte, signature string, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || ts < 0 {
		return fmt.Errorf("timestamp %q is not Unix seconds: %w", timestamp, ErrMalformed)
	}
	var sigs [][]byte
	for part := range strings.SplitSeq(signature, ",") {
		value, ok := strings.CutPrefix(strings.TrimSpace(part), signatureScheme)
		if !ok {
			continue // another scheme
		}
		if sig, err := hex.DecodeString(value); err == nil && len(sig) == sha256.Size {
			sigs = append(sigs, sig)
		}
	}
	if len(sigs) == 0 {
		return fmt.Errorf("no v1 signature in %s: %w", HeaderSignature, ErrMalformed)
	}
	want := mac(secret, timestamp, body)
	matched := false
	for _, sig := range sigs {
		matched = hmac.Equal(sig, want) || matched
	}
	if !matched {
		return ErrMismatch
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if skew := now.Sub(time.Unix(ts, 0)).Abs(); skew > tolerance {
		return fmt.Errorf("timestamp %s is %s from now: %w", timestamp, skew.Truncate(time.Second), ErrStale)
	}
	return nil
}
