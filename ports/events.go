package ports

import (
	"context"
	"fmt"
	"time"

	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
)

// EventEntry is one event as the live stream keeps it: its position, what the stream's
// filters look at, and the event in its wire form (JSON, see adapters/eventwire).
type EventEntry struct {
	Cursor      event.Cursor
	Type        event.Type
	EquipmentID string
	Data        []byte
}

// EventLog is the live event stream behind GET /stream: a Redis stream in production, shared
// by every process; a bounded ring in memory in the embedded mode. It keeps the latest events
// only (a bounded number), so a client that comes back after a long while has missed some.
type EventLog interface {
	// Append adds events, in order, after everything appended before.
	Append(ctx context.Context, events []event.Event) error
	// Read returns up to limit entries after the cursor, oldest first. When there are none
	// it waits up to wait for some (0: it does not wait), and returns none if none came
	// (or ctx ended: then with ctx's error).
	Read(ctx context.Context, after event.Cursor, limit int, wait time.Duration) ([]EventEntry, error)
	// Tail returns the cursor of the newest entry (the zero cursor when there is none):
	// reading after it returns only what comes next.
	Tail(ctx context.Context) (event.Cursor, error)
}

// Subscription is an outbound notification endpoint: events of its Types are POSTed to its
// URL, signed with its Secret.
type Subscription struct {
	ID        string
	URL       string
	Types     []event.Type // transitions only (event.Type.Transition)
	Secret    string
	CreatedAt time.Time
	// The circuit breaker, shared by every process: how many deliveries in a row have
	// failed, and until when no delivery is attempted (zero: closed).
	Failures    int
	PausedUntil time.Time
}

// Wants reports whether the subscription asks for events of type t.
func (s Subscription) Wants(t event.Type) bool {
	for _, x := range s.Types {
		if x == t {
			return true
		}
	}
	return false
}

// DeliveryState is where a delivery is in its life.
type DeliveryState string

// The states: PENDING until the endpoint accepts it (DELIVERED) or its attempts run out
// (DEAD); a dead delivery may be redelivered, which makes it PENDING again.
const (
	DeliveryPending   DeliveryState = "PENDING"
	DeliveryDelivered DeliveryState = "DELIVERED"
	DeliveryDead      DeliveryState = "DEAD"
)

// Delivery is one event on its way to one subscription: the outbox row.
type Delivery struct {
	ID             string
	SubscriptionID string
	EventID        string
	EventType      event.Type
	Body           []byte // the event's wire form, exactly as POSTed
	State          DeliveryState
	Attempts       int
	CreatedAt      time.Time
	NextAttemptAt  time.Time // when a PENDING delivery is next due
	LastAttemptAt  time.Time // zero before the first attempt
	LastStatus     int       // the endpoint's HTTP status at the last attempt (0: none)
	LastError      string
	DeliveredAt    time.Time
}

// DeliveryQuery selects one page of a subscription's deliveries, newest first.
type DeliveryQuery struct {
	SubscriptionID string
	States         []DeliveryState // none means all
	Offset, Limit  int
}

// SubscriptionRepository keeps subscriptions and their deliveries.
type SubscriptionRepository interface {
	// CreateSubscription stores s; ErrConflict when its id is taken.
	CreateSubscription(ctx context.Context, s Subscription) error
	// Subscription returns one; ErrNotFound when unknown.
	Subscription(ctx context.Context, id string) (Subscription, error)
	// Subscriptions returns all, oldest first.
	Subscriptions(ctx context.Context) ([]Subscription, error)
	// DeleteSubscription removes one and its deliveries; ErrNotFound when unknown.
	DeleteSubscription(ctx context.Context, id string) error
	// Deliveries returns one page of q and how many match in all; ErrNotFound when the
	// subscription is unknown.
	Deliveries(ctx context.Context, q DeliveryQuery) ([]Delivery, int64, error)
	// Redeliver makes a DEAD delivery PENDING again, due at, with its attempts reset.
	// ErrNotFound when the subscription or the delivery (of that subscription) is unknown,
	// ErrConflict when the delivery is not DEAD.
	Redeliver(ctx context.Context, subscriptionID, deliveryID string, at time.Time) (Delivery, error)
}

// ClaimedDelivery is a delivery handed to one dispatcher, with where it goes.
type ClaimedDelivery struct {
	Delivery
	Subscription Subscription
}

// DeliveryOutcome is what one attempt at a delivery came to.
type DeliveryOutcome struct {
	DeliveryID     string
	SubscriptionID string
	At             time.Time // when the attempt was made
	Status         int       // the endpoint's HTTP status (0: no answer)
	Error          string    // why it failed ("" when delivered)
	// State is DELIVERED, PENDING (to be retried at NextAttemptAt) or DEAD.
	State         DeliveryState
	NextAttemptAt time.Time
	// The subscription's circuit breaker after the attempt.
	Failures    int
	PausedUntil time.Time
}

// Normalized checks the outcome's state, and makes the next attempt of a PENDING delivery due
// at the attempt at the earliest, and that of a settled one (DELIVERED, DEAD) none: what every
// DeliveryQueue stores.
func (o DeliveryOutcome) Normalized() (DeliveryOutcome, error) {
	switch o.State {
	case DeliveryPending:
		if o.NextAttemptAt.Before(o.At) {
			o.NextAttemptAt = o.At
		}
	case DeliveryDelivered, DeliveryDead:
		o.NextAttemptAt = time.Time{}
	default:
		return o, fmt.Errorf("settle delivery %s: unknown state %q", o.DeliveryID, o.State)
	}
	return o, nil
}

// DeliveryQueue hands pending deliveries to the dispatchers of every process. Deliveries are
// enqueued with the changes they report (ProcessedBatch.Events, AlarmRepository.Acknowledge,
// StatusLedger.Announce): one per subscription that wants the event's type, PENDING, created
// and due at the event's time (At), its Body the event's wire form.
type DeliveryQueue interface {
	// Claim takes up to limit PENDING deliveries due at now, oldest first, of subscriptions
	// whose breaker is not paused at now and whose ids are not in skip, and leases them: they
	// are due again only at now+lease, so that no other dispatcher takes them meanwhile and a
	// dispatcher that dies leaves them to the others.
	Claim(ctx context.Context, now time.Time, lease time.Duration, limit int, skip []string) ([]ClaimedDelivery, error)
	// Settle records an attempt's outcome and the subscription's breaker, at once. It
	// returns ErrNotFound when the delivery (of that subscription) is gone, and ErrConflict,
	// changing nothing, when the delivery is no longer PENDING: a dispatcher that stalled past
	// its lease cannot undo what another, which claimed the delivery after, recorded.
	// ErrNotFound when the delivery is gone (its subscription was deleted meanwhile): there
	// is nothing to record, and nothing more to send to that subscription.
	Settle(ctx context.Context, o DeliveryOutcome) error
	// Postpone makes claimed deliveries due at until, their attempts unchanged (a breaker
	// opened before they were tried). Deliveries that are gone are left out silently.
	Postpone(ctx context.Context, deliveryIDs []string, until time.Time) error
}

// DeliverySender makes one attempt at a delivery: it POSTs the delivery's Body to its
// subscription's URL, signed with the subscription's secret.
type DeliverySender interface {
	// Send returns the endpoint's HTTP status (0 when no answer came) and, when the attempt
	// failed (an answer other than 2xx, a timeout, a connection error), why. ctx bounds the
	// attempt.
	Send(ctx context.Context, d ClaimedDelivery) (status int, err error)
}

// StatusLedger keeps the status last announced of each equipment, so that each change is
// announced once, whichever process notices it first.
type StatusLedger interface {
	// Announced returns the status last announced of each equipment.
	Announced(ctx context.Context) (map[string]equipment.Status, error)
	// Announce records the status changes of events (equipment.status_changed events) whose
	// Previous status is still the one announced ("" for none), and enqueues their
	// deliveries, in one transaction. It returns the events it recorded: a change that
	// another process announced first is left out.
	Announce(ctx context.Context, events []event.Event) ([]event.Event, error)
}
