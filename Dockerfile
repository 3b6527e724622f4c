# syntax=docker/dockerfile:1
# The pgvector-loadtest binary on Debian bookworm-slim, for the Kubernetes manifests in
# deploy/kubernetes (docs/kubernetes.md). Build from the repository root:
#   docker build -t ghcr.io/example/pgvector-loadtest:latest .
# The image always needs --database-url / DATABASE_URL: it has no Python, so the embedded
# PostgreSQL (fetched as a Python wheel) cannot be provisioned in it.

FROM rust:1-bookworm AS builder
WORKDIR /src
# What the release build reads and nothing else: the manifest and lockfile (--locked), the
# sources, the load profiles that src/profile.rs embeds with include_str!, and benches/ because
# Cargo.toml declares [[bench]] targets and cargo rejects a manifest whose targets are missing.
# (rust:1-bookworm already has pkg-config and libssl-dev for native-tls.)
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
COPY scenarios ./scenarios
COPY src ./src
# Cache mounts keep the registry and target/ between builds; the binary is copied out of the
# cached target/ because a cache mount is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin pgvector-loadtest \
    && cp target/release/pgvector-loadtest /usr/local/bin/pgvector-loadtest

FROM debian:bookworm-slim
# ca-certificates for sslmode=require/verify-full; it pulls in OpenSSL's libssl3, which the
# binary links (native-tls). libssl3 is named too so that this stays true if that changes.
# Unpinned (DL3008): Debian's archive drops superseded versions, so pins break the build.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/*
# uid/gid 10001, as the manifests' runAsUser expects.
RUN groupadd --gid 10001 loadtest \
    && useradd --uid 10001 --gid 10001 --home-dir /home/loadtest --create-home \
       --shell /usr/sbin/nologin loadtest
COPY --from=builder /usr/local/bin/pgvector-loadtest /usr/local/bin/pgvector-loadtest
# Reports default to ./reports: a directory the user owns. (In Kubernetes the root filesystem
# is read-only and the manifests pass --report-dir on a volume.)
WORKDIR /home/loadtest
USER 10001
# The Prometheus exporter (--metrics-port / METRICS_PORT; listen with --metrics-host 0.0.0.0).
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/pgvector-loadtest"]
CMD ["--help"]
