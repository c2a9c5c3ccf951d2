package command

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
)

// Limits of a subscription.
const (
	MaxSubscriptionURLLen = 2048 // bytes
	MinSecretLen          = 16   // characters
	MaxSecretLen          = 256  // characters
	// GeneratedSecretBytes is how many random bytes make a secret the service chooses
	// (written in hex: twice as many characters).
	GeneratedSecretBytes = 32
)

// The rules a subscription's fields break, as their violations say.
var (
	ErrSubscriptionURL = errors.New("must be an absolute http or https URL with a host")
	ErrURLTooLong      = fmt.Errorf("must be at most %d characters long", MaxSubscriptionURLLen)
	ErrNoTypes         = errors.New("must list at least one event type")
	ErrNotTransition   = fmt.Errorf("must be one of %s", transitionNames())
	ErrAnomalyNotified = errors.New("anomaly events are not notified: a subscription receives transitions only")
	ErrTypeRepeated    = errors.New("is listed twice")
	ErrSecret          = fmt.Errorf("must be %d to %d printable ASCII characters, without spaces", MinSecretLen, MaxSecretLen)
)

func transitionNames() string {
	names := make([]string, len(event.Transitions))
	for i, t := range event.Transitions {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// CheckSubscriptionURL checks where a subscription's deliveries go: an absolute http or
// https URL with a host, at most MaxSubscriptionURLLen bytes, without white space or
// control characters.
func CheckSubscriptionURL(s string) error {
	if len(s) > MaxSubscriptionURLLen {
		return ErrURLTooLong
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return ErrSubscriptionURL
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return ErrSubscriptionURL
	}
	return nil
}

// CheckEventType checks one type a subscription asks for: a transition (event.Transitions).
func CheckEventType(t event.Type) error {
	switch {
	case t == event.AnomalyDetected:
		return ErrAnomalyNotified
	case !t.Transition():
		return ErrNotTransition
	}
	return nil
}

// CheckSecret checks a secret given for a subscription: MinSecretLen to MaxSecretLen
// printable ASCII characters (0x21 to 0x7e), so that it survives shells and configuration
// files unchanged.
func CheckSecret(s string) error {
	if len(s) < MinSecretLen || len(s) > MaxSecretLen {
		return ErrSecret
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return ErrSecret
		}
	}
	return nil
}

// CreateSubscription asks for the events of Types to be POSTed to URL, signed with Secret;
// with no Secret, the service makes one.
type CreateSubscription struct {
	URL    string
	Types  []event.Type
	Secret string
}

// Violations lists every rule cmd breaks, named as the API names the fields ("types[1]").
func (cmd CreateSubscription) Violations() []ports.Violation {
	var out []ports.Violation
	add := func(field string, err error) {
		if err != nil {
			out = append(out, ports.Violation{Field: field, Message: err.Error()})
		}
	}
	add("url", CheckSubscriptionURL(cmd.URL))
	if len(cmd.Types) == 0 {
		add("types", ErrNoTypes)
	}
	seen := make(map[event.Type]bool, len(cmd.Types))
	for i, t := range cmd.Types {
		field := fmt.Sprintf("types[%d]", i)
		if err := CheckEventType(t); err != nil {
			add(field, err)
		} else if seen[t] {
			add(field, ErrTypeRepeated)
		}
		seen[t] = true
	}
	if cmd.Secret != "" {
		add("secret", CheckSecret(cmd.Secret))
	}
	return out
}

// CreateSubscriptionHandler creates subscriptions.
type CreateSubscriptionHandler struct {
	repo   ports.SubscriptionRepository
	clock  ports.Clock
	ids    ports.IDGenerator
	random io.Reader
}

// NewCreateSubscriptionHandler builds the handler; secrets it makes come from crypto/rand.
func NewCreateSubscriptionHandler(repo ports.SubscriptionRepository, c ports.Clock, ids ports.IDGenerator) *CreateSubscriptionHandler {
	return &CreateSubscriptionHandler{repo: repo, clock: c, ids: ids, random: rand.Reader}
}

// Handle stores the subscription and returns it, its secret included: the only time the
// secret is told. It returns a *ports.ValidationError naming every field that breaks the
// rules (see Violations).
func (h *CreateSubscriptionHandler) Handle(ctx context.Context, cmd CreateSubscription) (ports.Subscription, error) {
	if v := cmd.Violations(); len(v) > 0 {
		return ports.Subscription{}, &ports.ValidationError{Violations: v}
	}
	secret := cmd.Secret
	if secret == "" {
		b := make([]byte, GeneratedSecretBytes)
		if _, err := io.ReadFull(h.random, b); err != nil {
			return ports.Subscription{}, fmt.Errorf("make a secret: %w", err)
		}
		secret = hex.EncodeToString(b)
	}
	s := ports.Subscription{
		ID:        h.ids.NewID(),
		URL:       cmd.URL,
		Types:     append([]event.Type(nil), cmd.Types...),
		Secret:    secret,
		CreatedAt: h.clock.Now().UTC().Truncate(time.Microsecond), // as storage keeps it
	}
	if err := h.repo.CreateSubscription(ctx, s); err != nil {
		return ports.Subscription{}, fmt.Errorf("create subscription: %w", err)
	}
	return s, nil
}
