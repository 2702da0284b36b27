# syntax=docker/dockerfile:1
# The ledger API image for ECS Fargate: `ledger serve --backend aws` on port 8000.
#   docker buildx build --platform linux/arm64 -t <repo>:<tag> --push .

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/ledger ./cmd/ledger

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ledger /ledger
USER 65532:65532
EXPOSE 8000
ENTRYPOINT ["/ledger"]
CMD ["serve", "--backend", "aws", "--addr", ":8000"]
