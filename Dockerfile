# hubfleet: one static binary serves the operator, the members, the client and bridge.
# Where no Docker engine exists, `make image` builds the same image without a daemon.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.1.0-dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -X github.com/hubfleet/hubfleet/pkg/version.Version=${VERSION} -X github.com/hubfleet/hubfleet/pkg/version.Commit=${COMMIT}" \
      -o /out/hubfleet .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/hubfleet /hubfleet
# 65532 is distroless' nonroot user; members that bridge a LAN get NET_ADMIN from their
# pod spec, never from the image.
USER 65532:65532
ENTRYPOINT ["/hubfleet"]
