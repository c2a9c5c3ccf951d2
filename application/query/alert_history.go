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
	p := pageOf(q.Page, q.PageSize)
	f := q.Filter
	f.Offset, f.Limit = p.offset(), p.size
	list, total, err := h.anomalies.Find(ctx, f)
	if err != nil {
		return AlertPage{}, fmt.Errorf("list anomalies: %w", err)
	}
	return AlertPage{Alerts: list, Page: p.number, PageSize: p.size, Total: total, TotalPages: p.count(total)}, nil
}

// page is a page asked for, the contract's defaults filled in.
type page struct{ number, size int }

// pageOf fills in the defaults for a number or size below 1 (1, DefaultPageSize).
func pageOf(number, size int) page {
	if number < 1 {
		number = 1
	}
	if size < 1 {
		size = DefaultPageSize
	}
	return page{number, size}
}

func (p page) offset() int { return (p.number - 1) * p.size }

// count is how many pages total items fill.
func (p page) count(total int64) int64 { return (total + int64(p.size) - 1) / int64(p.size) }
