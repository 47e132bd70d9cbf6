# syntax=docker/dockerfile:1
# closeloop: multi-stage build. Dependencies are cached between builds by
# BuildKit cache mounts (cargo registry and target directory); the runtime
# image holds the binary, the shipped configuration and templates, and runs
# as an unprivileged user.
#   docker build -t closeloop .
#   docker run -p 8080:8080 -e CLOSELOOP__DATABASE__URL=postgres://... closeloop

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin closeloop \
 && cp target/release/closeloop /usr/local/bin/closeloop

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin closeloop
WORKDIR /app
COPY --from=build /usr/local/bin/closeloop /usr/local/bin/closeloop
COPY --chown=root:root config/ /app/config/
USER 10001
ENV CLOSELOOP_CONFIG=/app/config/closeloop.toml \
    CLOSELOOP__HTTP__LISTEN=0.0.0.0:8080 \
    CLOSELOOP__LOG__FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["curl", "-fsS", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["closeloop"]
CMD ["serve"]
