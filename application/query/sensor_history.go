package query

import (
	"context"
	"fmt"
	"time"

	"github.com/production-line-monitor/plm/ports"
)

// Aggregation chooses raw points or averages per time bucket.
type Aggregation string

// The aggregations.
const (
	AggregationRaw Aggregation = "raw"
	AggregationAvg Aggregation = "avg"
)

// SensorHistory asks for the readings of one equipment.
type SensorHistory struct {
	Query       ports.HistoryQuery
	Aggregation Aggregation
	Interval    time.Duration // with AggregationAvg
}

// SensorHistoryResult holds either Points (raw) or Averages (avg).
type SensorHistoryResult struct {
	Points   []ports.StoredReading
	Averages []ports.AveragePoint
}

// SensorHistoryHandler reads an equipment's sensor history.
type SensorHistoryHandler struct {
	equipment ports.EquipmentRepository
	readings  ports.ReadingRepository
}

// NewSensorHistoryHandler builds the handler.
func NewSensorHistoryHandler(eq ports.EquipmentRepository, r ports.ReadingRepository) *SensorHistoryHandler {
	return &SensorHistoryHandler{equipment: eq, readings: r}
}

// Handle returns ports.ErrNotFound for unknown equipment.
func (h *SensorHistoryHandler) Handle(ctx context.Context, q SensorHistory) (SensorHistoryResult, error) {
	id := q.Query.EquipmentID
	if _, err := h.equipment.Get(ctx, id); err != nil {
		return SensorHistoryResult{}, fmt.Errorf("get equipment %s: %w", id, err)
	}
	if q.Aggregation == AggregationAvg {
		avg, err := h.readings.Averages(ctx, q.Query, q.Interval)
		if err != nil {
			return SensorHistoryResult{}, fmt.Errorf("average history of %s: %w", id, err)
		}
		return SensorHistoryResult{Averages: avg}, nil
	}
	pts, err := h.readings.History(ctx, q.Query)
	if err != nil {
		return SensorHistoryResult{}, fmt.Errorf("history of %s: %w", id, err)
	}
	return SensorHistoryResult{Points: pts}, nil
}
