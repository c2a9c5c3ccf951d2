// Package system implements the clock and identifier ports with the real clock and UUIDs.
package system

import (
	"time"

	"github.com/google/uuid"

	"github.com/production-line-monitor/plm/ports"
)

// Clock reads the machine's clock.
type Clock struct{}

var _ ports.Clock = Clock{}

// Now implements ports.Clock.
func (Clock) Now() time.Time { return time.Now() }

// IDs makes time-ordered UUIDs (version 7), which keep index inserts local.
type IDs struct{}

var _ ports.IDGenerator = IDs{}

// NewID implements ports.IDGenerator.
func (IDs) NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
