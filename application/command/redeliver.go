package command

import (
	"context"
	"fmt"

	"github.com/production-line-monitor/plm/ports"
)

// Redeliver gives a DEAD delivery a new run of attempts.
type Redeliver struct {
	SubscriptionID string
	DeliveryID     string
}

// RedeliverHandler redelivers dead deliveries.
type RedeliverHandler struct {
	repo  ports.SubscriptionRepository
	clock ports.Clock
	wake  func()
}

// NewRedeliverHandler builds the handler.
func NewRedeliverHandler(repo ports.SubscriptionRepository, c ports.Clock) *RedeliverHandler {
	return &RedeliverHandler{repo: repo, clock: c, wake: func() {}}
}

// WithWake has wake called after each redelivery: a process that runs a dispatcher passes
// its Wake, so that the delivery is attempted at once rather than at the next poll.
func (h *RedeliverHandler) WithWake(wake func()) *RedeliverHandler {
	h.wake = wake
	return h
}

// Handle makes the delivery PENDING again, due now, its attempts reset, and returns it.
// ports.ErrNotFound when the subscription or the delivery (of that subscription) is
// unknown, ports.ErrConflict when the delivery is not DEAD.
func (h *RedeliverHandler) Handle(ctx context.Context, cmd Redeliver) (ports.Delivery, error) {
	d, err := h.repo.Redeliver(ctx, cmd.SubscriptionID, cmd.DeliveryID, h.clock.Now().UTC())
	if err != nil {
		return ports.Delivery{}, fmt.Errorf("redeliver %s of subscription %s: %w", cmd.DeliveryID, cmd.SubscriptionID, err)
	}
	h.wake()
	return d, nil
}
