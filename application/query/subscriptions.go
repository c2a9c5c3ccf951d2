package query

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/production-line-monitor/plm/application/notify"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
)

// SubscriptionView is a subscription as it is shown after its creation: without its secret.
type SubscriptionView struct {
	ID        string
	URL       string
	Types     []event.Type
	CreatedAt time.Time
	Breaker   BreakerView
}

// BreakerView is a subscription's circuit breaker at the time it is read.
type BreakerView struct {
	State notify.BreakerState
	// Failures is how many attempts in a row have failed.
	Failures int
	// PausedUntil is when an open breaker lets the next attempt through (zero when it
	// has not opened since its last success).
	PausedUntil time.Time
}

// ViewOf is s as shown at now: its secret left out, its breaker's state read.
func ViewOf(s ports.Subscription, now time.Time) SubscriptionView {
	return SubscriptionView{
		ID: s.ID, URL: s.URL, Types: slices.Clone(s.Types), CreatedAt: s.CreatedAt,
		Breaker: BreakerView{State: notify.StateOf(s, now), Failures: s.Failures, PausedUntil: s.PausedUntil},
	}
}

// DeliveryList asks for one page of a subscription's deliveries, newest first.
type DeliveryList struct {
	SubscriptionID string
	States         []ports.DeliveryState // none means all
	Page           int
	PageSize       int
}

// DeliveryPage is one page of deliveries with the paging figures.
type DeliveryPage struct {
	Deliveries []ports.Delivery
	Page       int
	PageSize   int
	Total      int64
	TotalPages int64
}

// SubscriptionsHandler lists subscriptions and their deliveries.
type SubscriptionsHandler struct {
	repo  ports.SubscriptionRepository
	clock ports.Clock
}

// NewSubscriptionsHandler builds the handler.
func NewSubscriptionsHandler(repo ports.SubscriptionRepository, c ports.Clock) *SubscriptionsHandler {
	return &SubscriptionsHandler{repo: repo, clock: c}
}

// List returns every subscription, oldest first.
func (h *SubscriptionsHandler) List(ctx context.Context) ([]SubscriptionView, error) {
	subs, err := h.repo.Subscriptions(ctx)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	now := h.clock.Now()
	out := make([]SubscriptionView, len(subs))
	for i, s := range subs {
		out[i] = ViewOf(s, now)
	}
	return out, nil
}

// Get returns one subscription; ports.ErrNotFound when unknown.
func (h *SubscriptionsHandler) Get(ctx context.Context, id string) (SubscriptionView, error) {
	s, err := h.repo.Subscription(ctx, id)
	if err != nil {
		return SubscriptionView{}, fmt.Errorf("get subscription %s: %w", id, err)
	}
	return ViewOf(s, h.clock.Now()), nil
}

// Deliveries returns the page asked for (a page past the end is empty); ports.ErrNotFound
// when the subscription is unknown.
func (h *SubscriptionsHandler) Deliveries(ctx context.Context, q DeliveryList) (DeliveryPage, error) {
	p := pageOf(q.Page, q.PageSize)
	list, total, err := h.repo.Deliveries(ctx, ports.DeliveryQuery{
		SubscriptionID: q.SubscriptionID, States: q.States, Offset: p.offset(), Limit: p.size,
	})
	if err != nil {
		return DeliveryPage{}, fmt.Errorf("list deliveries of subscription %s: %w", q.SubscriptionID, err)
	}
	return DeliveryPage{Deliveries: list, Page: p.number, PageSize: p.size, Total: total, TotalPages: p.count(total)}, nil
}
