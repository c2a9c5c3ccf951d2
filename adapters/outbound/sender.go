package outbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/fx"

	"github.com/production-line-monitor/plm/ports"
)

// Defaults taken by the zero fields of Config.
const (
	DefaultTimeout          = 5 * time.Second
	DefaultMaxResponseBytes = 4 << 10
	DefaultUserAgent        = "plm-notifications/1"
)

// maxQuoted bounds how much of an endpoint's answer a failure quotes.
const maxQuoted = 200

// Config tunes a Sender.
type Config struct {
	// Timeout bounds an attempt, from connecting to reading the answer (default 5 s,
	// PLM_DELIVERY_TIMEOUT).
	Timeout time.Duration
	// MaxResponseBytes is the most of an answer's body that is read (default 4 KiB); the
	// rest is left unread.
	MaxResponseBytes int64
	// UserAgent is sent with every delivery (default "plm-notifications/1").
	UserAgent string
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	return c
}

// Sender POSTs deliveries to their subscriptions' endpoints, signed. It follows no
// redirect: an endpoint that moved answers 3xx, which is a failure like any answer but 2xx.
type Sender struct {
	cfg    Config
	client *http.Client
	clock  ports.Clock
}

var _ ports.DeliverySender = (*Sender)(nil)

// NewSender builds a sender that signs with timestamps read from clock. cfg's zero fields
// take their defaults.
func NewSender(cfg Config, clock ports.Clock) *Sender {
	cfg = cfg.withDefaults()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = cfg.Timeout
	return &Sender{
		cfg:   cfg,
		clock: clock,
		client: &http.Client{
			Transport: transport,
			Timeout:   cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

// Send implements ports.DeliverySender: it POSTs d's body with its headers and signature
// and reads at most MaxResponseBytes of the answer. Any 2xx answer is a success; another
// status, a timeout or a connection error is returned as the error, with the status (0
// when none came).
func (s *Sender) Send(ctx context.Context, d ports.ClaimedDelivery) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Subscription.URL, bytes.NewReader(d.Body))
	if err != nil {
		return 0, fmt.Errorf("build the request: %w", err)
	}
	ts := s.clock.Now().Unix()
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", s.cfg.UserAgent)
	h.Set(HeaderEventID, d.EventID)
	h.Set(HeaderEventType, string(d.EventType))
	h.Set(HeaderDeliveryID, d.ID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderSignature, Sign(d.Subscription.Secret, ts, d.Body))

	resp, err := s.client.Do(req)
	if err != nil {
		return 0, s.noAnswer(err)
	}
	defer resp.Body.Close()
	answer, readErr := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxResponseBytes))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, nil // what follows the status does not matter
	}
	msg := fmt.Sprintf("the endpoint answered %d", resp.StatusCode)
	if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
		msg += " (redirects are not followed) to " + quote(loc)
	} else if q := quote(string(answer)); q != "" && readErr == nil {
		msg += ": " + q
	}
	return resp.StatusCode, errors.New(msg)
}

// noAnswer describes a failure to get an answer, without the URL (it may carry a token).
func (s *Sender) noAnswer(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("no answer within %s: %w", s.cfg.Timeout, ue.Err)
		}
		return fmt.Errorf("no answer: %w", ue.Err)
	}
	return fmt.Errorf("no answer: %w", err)
}

// quote makes a piece of an answer fit for a one-line reason: control characters and
// invalid UTF-8 become spaces, runs of white space one, and it is cut to maxQuoted bytes.
func quote(s string) string {
	s = strings.ToValidUTF8(s, " ")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if len(s) > maxQuoted {
		cut := maxQuoted
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// Module provides the Sender as the ports.DeliverySender; it needs a Config and a
// ports.Clock.
var Module = fx.Module("outbound",
	fx.Provide(fx.Annotate(NewSender, fx.As(new(ports.DeliverySender)))),
)
