# syntax=docker/dockerfile:1
# Production Line Monitor. Needs BuildKit (Docker's default builder since 23.0).
#
#   docker build -t production-line-monitor:local .
#   docker run -p 8080:8080 -v plm-data:/data production-line-monitor:local   # embedded set-up
#
# docker-compose.yml runs the same image as `plm serve` and `plm worker` on PostgreSQL + Redis.

# Build: a static binary (no cgo), compiled on the build machine's platform for the target's.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w" -o /out/plm .

# Run: distroless static (no shell, no package manager), non-root, nothing but the binary.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/plm /plm
USER 65532:65532
# BuildKit creates a WORKDIR owned by the USER above: the embedded set-up keeps its SQLite
# file and generated API key here, and a volume mounted on /data starts with that owner.
WORKDIR /data
ENV PLM_ADDR=:8080 \
    PLM_DATA_DIR=/data \
    PLM_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/plm", "healthcheck"]
ENTRYPOINT ["/plm"]
CMD ["run"]
