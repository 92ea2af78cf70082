# syntax=docker/dockerfile:1
#
# shardcast in a container: a multi-stage build (the Rust toolchain stays in the builder)
# and a small Debian runtime that runs the server as an unprivileged user.
#
#   docker build --build-arg SHARDCAST_GIT_COMMIT="$(git rev-parse --short=12 HEAD)" -t shardcast .
#   docker run --rm -p 8081:8081 -e SHARDCAST_JWT_SECRET=change-me -e SHARDCAST_API_KEY=change-me shardcast
#
# Configuration: every `shardcast serve` flag is also an environment variable
# `SHARDCAST_<NAME>`; or mount a TOML file and pass `serve --config /etc/shardcast/shardcast.toml`.
# The image listens on 0.0.0.0:8081 (SHARDCAST_LISTEN) and answers `GET /health`.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
# The build context has no .git: build.rs takes the commit from here (`--version`,
# the shardcast_build_info metric). SOURCE_DATE_EPOCH, when given, fixes the build date.
ARG SHARDCAST_GIT_COMMIT=unknown
ARG SOURCE_DATE_EPOCH
ENV SHARDCAST_GIT_COMMIT=${SHARDCAST_GIT_COMMIT} \
    SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH} \
    CARGO_TERM_COLOR=never
WORKDIR /src
COPY . .
# --locked: exactly the versions of Cargo.lock. The cache mounts keep the registry and
# the target directory between builds (BuildKit); the binary is copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin shardcast \
 && install -D -m 0755 target/release/shardcast /out/shardcast

FROM ${RUNTIME_IMAGE} AS runtime
# curl for the HEALTHCHECK only; nothing else is added to the slim image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 shardcast \
 && useradd --system --uid 10001 --gid shardcast --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin shardcast
COPY --from=build /out/shardcast /usr/local/bin/shardcast
COPY LICENSE-MIT LICENSE-APACHE /usr/share/doc/shardcast/

USER 10001:10001
ENV SHARDCAST_LISTEN=0.0.0.0:8081
EXPOSE 8081
# /health answers 200 while the process serves HTTP. With --tls-cert every connection is
# TLS (use `curl -k https://…` here); on another port, change the URL here too. /ready
# (Redis linked) is for a load balancer, not for restarting the container.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD curl --fail --silent --show-error --max-time 2 http://127.0.0.1:8081/health || exit 1
# SIGTERM (docker stop) drains: clients get close 1001 "Server shutting down".
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/shardcast"]
CMD ["serve"]
