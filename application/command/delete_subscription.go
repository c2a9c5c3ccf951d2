package command

import (
	"context"
	"fmt"

	"github.com/production-line-monitor/plm/ports"
)

// DeleteSubscription ends a subscription: it and its deliveries, pending ones included, are
// removed, and nothing more is sent to it.
type DeleteSubscription struct {
	ID string
}

// DeleteSubscriptionHandler deletes subscriptions.
type DeleteSubscriptionHandler struct {
	repo ports.SubscriptionRepository
}

// NewDeleteSubscriptionHandler builds the handler.
func NewDeleteSubscriptionHandler(repo ports.SubscriptionRepository) *DeleteSubscriptionHandler {
	return &DeleteSubscriptionHandler{repo: repo}
}

// Handle deletes the subscription; ports.ErrNotFound when it is unknown. A delivery on its
// way when it is deleted is dropped by the dispatcher.
func (h *DeleteSubscriptionHandler) Handle(ctx context.Context, cmd DeleteSubscription) error {
	if err := h.repo.DeleteSubscription(ctx, cmd.ID); err != nil {
		return fmt.Errorf("delete subscription %s: %w", cmd.ID, err)
	}
	return nil
}
