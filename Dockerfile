# Two images from one build:
#   docker build --target manager   -t hakeeper/manager .
#   docker build --target dataplane -t hakeeper/dataplane .
# The build command is the one `make build` runs; keep them identical.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY controllers/ controllers/
COPY internal/ internal/
COPY main.go ./
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/hakeeper .

# The operator: nothing but the binary, as a non-root user.
FROM gcr.io/distroless/static-debian12:nonroot AS manager
COPY --from=build /out/hakeeper /hakeeper
USER 65532:65532
ENTRYPOINT ["/hakeeper", "manager"]

# The data plane: HAProxy and Keepalived from Debian bookworm (the versions
# the tests check configs with: haproxy 2.6, keepalived 2.2.7) and the agent.
# The DaemonSet picks the process per container through its command.
FROM debian:bookworm-slim AS dataplane
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy keepalived iproute2 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/hakeeper /usr/local/bin/hakeeper
ENTRYPOINT ["/usr/local/bin/hakeeper", "agent"]
