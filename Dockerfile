# ESG Scoring API: the `esg` binary serving the HTTP API.
#
#   docker build --build-arg ESG_BUILD_COMMIT="$(git rev-parse --short HEAD)" -t esg-scoring-api .
#   docker run -p 8000:8000 -v esg-data:/var/lib/esg esg-scoring-api
#
# The build command below is exactly the one CI runs:
#   cargo build --release --locked
# so the image holds the binary CI tested. CI machines have no
# container engine: this file is checked by hadolint there, not built (see
# DEPLOYMENT.md).

# ---------------------------------------------------------------- builder
# rust:1.95 on Debian bookworm, so the binary links against the same glibc
# (2.36) as the bookworm-slim runtime stage below.
FROM rust:1.95-bookworm AS builder
WORKDIR /src

# 1. Dependencies only: the manifests, the lock file and an empty crate per
#    workspace member. This layer is rebuilt only when a manifest or
#    Cargo.lock changes, so a source edit does not recompile ~400 crates.
COPY Cargo.toml Cargo.lock ./
COPY crates/esg-core/Cargo.toml crates/esg-core/Cargo.toml
COPY crates/esg-ingest/Cargo.toml crates/esg-ingest/Cargo.toml
COPY crates/esg-store/Cargo.toml crates/esg-store/Cargo.toml
COPY crates/esg-score/Cargo.toml crates/esg-score/Cargo.toml
COPY crates/esg-server/Cargo.toml crates/esg-server/Cargo.toml
COPY crates/esg-cli/Cargo.toml crates/esg-cli/Cargo.toml
COPY crates/esg-embed/Cargo.toml crates/esg-embed/Cargo.toml
COPY crates/esg-testpg/Cargo.toml crates/esg-testpg/Cargo.toml
RUN for c in esg-core esg-ingest esg-store esg-score esg-server esg-cli esg-embed esg-testpg; do \
        mkdir -p "crates/$c/src" && : > "crates/$c/src/lib.rs"; \
    done \
    && echo 'fn main() {}' > crates/esg-cli/src/main.rs \
    && cargo build --release --locked

# 2. The real sources. COPY keeps the files' original mtimes, which can be
#    older than the placeholder build above; touching them makes cargo
#    rebuild the workspace crates (dependencies stay cached).
COPY rubric rubric
COPY crates crates
ARG ESG_BUILD_COMMIT=unknown
ENV ESG_BUILD_COMMIT=${ESG_BUILD_COMMIT}
RUN find crates -name '*.rs' -exec touch {} + \
    && cargo build --release --locked \
    && install -D -m 0755 target/release/esg /out/esg \
    && install -d -m 0750 /out/data

# ---------------------------------------------------------------- runtime
# bookworm-slim already has everything the binary links against (libc,
# libm, libgcc_s; SQLite is compiled in, no TLS library is used), so no
# packages are installed.
FROM debian:bookworm-slim AS runtime

ARG ESG_BUILD_COMMIT=unknown
ARG ESG_VERSION=0.1.0
LABEL org.opencontainers.image.title="esg-scoring-api" \
      org.opencontainers.image.description="ESG Scoring API: ingests sustainability reports and scores ESG maturity on rubric v3.0 with page-cited evidence." \
      org.opencontainers.image.version="${ESG_VERSION}" \
      org.opencontainers.image.revision="${ESG_BUILD_COMMIT}" \
      org.opencontainers.image.source="https://example.invalid/esg-scoring-api" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"

# A fixed, unprivileged UID/GID (10001) that owns nothing but the data dir;
# Kubernetes' runAsUser uses the same number.
RUN groupadd --system --gid 10001 esg \
    && useradd --system --no-log-init --uid 10001 --gid 10001 \
               --home-dir /var/lib/esg --no-create-home --shell /usr/sbin/nologin esg

COPY --from=builder /out/esg /usr/local/bin/esg
COPY --from=builder --chown=10001:10001 /out/data /var/lib/esg

ENV ESG_DATA_DIR=/var/lib/esg \
    ESG_LISTEN=0.0.0.0:8000 \
    ESG_LOG_FORMAT=json \
    ESG_HEALTHCHECK_URL=http://127.0.0.1:8000/health \
    OTEL_SERVICE_NAME=esg-scoring-api

VOLUME ["/var/lib/esg"]
EXPOSE 8000
USER 10001:10001
WORKDIR /var/lib/esg

# No curl in the image: the binary checks itself (GET /health, exit 1 unless
# 200 and "status":"healthy"). Keep ESG_HEALTHCHECK_URL's port in step with
# ESG_LISTEN when changing it.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["esg", "healthcheck", "--timeout-ms", "4000"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["esg"]
CMD ["serve"]
