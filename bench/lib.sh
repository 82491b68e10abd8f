# Shell helpers shared by the HTTP benches (sourced, not run): the tools
# and release binaries they need, a work dir and background processes
# cleaned up on exit, free loopback ports, waiting for a URL to answer 200,
# and starting esg servers. $BENCH names the script in messages.

# http_binaries: checks for cargo, wrk, curl and python3, builds the release
# esg and the examples hello and otlp_sink (unless NO_BUILD is set), and sets
# ESG, HELLO and SINK to their paths under $CARGO_TARGET_DIR (default target).
http_binaries() {
  local tool target=${CARGO_TARGET_DIR:-target}
  for tool in cargo wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "$BENCH: $tool is required" >&2; exit 1; }
  done
  if [ -z "${NO_BUILD:-}" ]; then
    echo "building release binaries (esg, examples hello and otlp_sink)..." >&2
    cargo build --release --quiet -p esg-cli --bin esg
    cargo build --release --quiet -p esg-server --example hello --example otlp_sink
  fi
  ESG="$target/release/esg"
  HELLO="$target/release/examples/hello"
  SINK="$target/release/examples/otlp_sink"
}

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_ready() { # url
  for _ in $(seq 1 200); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = 200 ]; then return 0; fi
    sleep 0.05
  done
  echo "$BENCH: $1 never answered 200" >&2
  exit 1
}

# esg_serve NAME BINARY PORT [VAR=VALUE ...]: BINARY serve on 127.0.0.1:PORT
# over $WORK/data in the background, with the caller's OTLP endpoint and
# protocol variables cleared and then VAR=VALUE set; stdout and stderr go to
# $WORK/NAME.log and $WORK/NAME.err. $! is its pid afterwards.
esg_serve() {
  local name=$1 bin=$2 port=$3
  shift 3
  env -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_EXPORTER_OTLP_TRACES_ENDPOINT \
    -u OTEL_EXPORTER_OTLP_PROTOCOL -u OTEL_EXPORTER_OTLP_TRACES_PROTOCOL "$@" \
    "$bin" --data-dir "$WORK/data" serve --listen "127.0.0.1:$port" \
    --max-concurrent-requests 1024 >"$WORK/$name.log" 2>"$WORK/$name.err" &
  PIDS+=($!)
}

# The environments of the two modes the HTTP benches compare. on_env SINK_PORT:
# JSON logs at info and OTLP/gRPC export of every span to the receiver there.
on_env() {
  echo RUST_LOG=info OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
    "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$1" OTEL_SERVICE_NAME=esg-bench
}
# Logs at warn (none per request) and no span export.
OFF_ENV="RUST_LOG=warn OTEL_TRACES_EXPORTER=none"
