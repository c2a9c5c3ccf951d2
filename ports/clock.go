package ports

import (
	"context"
	"time"
)

// Clock tells the time. Use cases read it through this port so that tests can fix it.
type Clock interface {
	Now() time.Time
}

// IDGenerator makes unique identifiers for readings and anomalies.
type IDGenerator interface {
	NewID() string
}

// Pinger is a dependency that can say whether it answers; readiness asks each one.
type Pinger interface {
	// Name is how readiness reports the dependency ("storage", "queue").
	Name() string
	Ping(ctx context.Context) error
}
