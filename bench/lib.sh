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
