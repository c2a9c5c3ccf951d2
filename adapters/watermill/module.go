package watermill

import (
	"go.uber.org/fx"

	"github.com/production-line-monitor/plm/ports"
)

// EmbeddedModule provides the in-process pipeline as the ports.ReadingsPublisher and as the
// "queue" readiness check. Its lifecycle (Start, Stop) is wired by the caller.
var EmbeddedModule = fx.Module("watermill",
	fx.Provide(
		NewProcessor,
		NewEmbedded,
		func(e *Embedded) ports.ReadingsPublisher { return e },
		fx.Annotate(func(e *Embedded) ports.Pinger { return e }, fx.ResultTags(`group:"pingers"`)),
	),
)
