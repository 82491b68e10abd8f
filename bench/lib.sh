# Shell helpers shared by the HTTP benches (sourced, not run): a work dir
# and background processes cleaned up on exit, free loopback ports, and
# waiting for a URL to answer 200. $BENCH names the script in messages.

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
