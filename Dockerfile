# imserver: a static binary on distroless, run as a non-root user, data in
# the /data volume. Build: docker build -t imserver . (or make docker-build).
# cmd/imserver/packaging_test.go checks that the flags and IM_* variables
# used here, in compose.yaml and in docs/deploy/imserver.service exist.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a change to the code does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO off: a static binary that runs on an image without a C library.
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/imserver ./cmd/imserver
# The volume's mount point, owned by the user the server runs as: a new
# named volume takes the ownership of the directory it is mounted on.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/imserver /imserver
COPY --from=build --chown=65532:65532 /out/data /data
# nonroot is UID 65532 in distroless; the server keeps its JWT secret in
# /data readable by this user only.
USER 65532:65532
# HTTP API, WebSocket (/ws), TCP. The default listen addresses (:8080,
# :8081, :8082) take every interface, as a container needs.
EXPOSE 8080 8081 8082
VOLUME /data
ENTRYPOINT ["/imserver", "-data", "/data"]
