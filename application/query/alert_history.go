package query

import (
	"context"
	"fmt"

	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/ports"
)

// DefaultPageSize is the page size of the contract when none is asked for.
const DefaultPageSize = 50

// AlertHistory asks for one page of anomalies. Page counts from 1; a Page or PageSize below 1
// takes the contract's default (1, DefaultPageSize).
type AlertHistory struct {
	Filter   ports.AnomalyQuery // Offset and Limit are set from Page and PageSize
	Page     int
	PageSize int
}

// AlertPage is one page of anomalies with the paging figures.
type AlertPage struct {
	Alerts     []anomaly.Anomaly
	Page       int
	PageSize   int
	Total      int64
	TotalPages int64
}

// AlertHistoryHandler pages through stored anomalies.
type AlertHistoryHandler struct {
	anomalies ports.AnomalyRepository
}

// NewAlertHistoryHandler builds the handler.
func NewAlertHistoryHandler(a ports.AnomalyRepository) *AlertHistoryHandler {
	return &AlertHistoryHandler{anomalies: a}
}

// Handle returns the page asked for; a page past the end is empty.
func (h *AlertHistoryHandler) Handle(ctx context.Context, q AlertHistory) (AlertPage, error) {
	if q.Page < 1 {
		q.Page = 1
	}
	if q.PageSize < 1 {
		q.PageSize = DefaultPageSize
	}
	f := q.Filter
	f.Offset = (q.Page - 1) * q.PageSize
	f.Limit = q.PageSize
	list, total, err := h.anomalies.Find(ctx, f)
	if err != nil {
		return AlertPage{}, fmt.Errorf("list anomalies: %w", err)
	}
	pages := (total + int64(q.PageSize) - 1) / int64(q.PageSize)
	return AlertPage{Alerts: list, Page: q.Page, PageSize: q.PageSize, Total: total, TotalPages: pages}, nil
}
