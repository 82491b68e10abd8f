#!/usr/bin/env python3
"""Load with faults against the real `esg serve` (run by hand; loopback only).

Starts the release `esg` on 127.0.0.1:0 with a fresh data dir holding the
shipped sample, with OpenTelemetry export pointed at a closed port (the
collector is down), then for a bounded time drives mixed traffic from threads:

  score       POST /score for the sample company
  search      GET /search
  upload      POST /documents, distinct small generated text documents
  probe       GET /ready and GET /metrics in a loop the whole time

while injecting faults:

  malformed   POST /score with broken JSON (expect 400)
  oversized   POST /score over --max-json-kb and POST /documents over
              --max-upload-mb (expect 413)
  disconnect  raw sockets that send half a request line/headers or half a
              declared body, then close
  locker      a separate `sqlite3` process holding BEGIN IMMEDIATE on the
              database for a few seconds at intervals (blocked store writer)
  otlp down   OTEL_TRACES_EXPORTER=otlp to a port nobody listens on

and reports requests by class and status, p50/p99/max latency, every 5xx
(and whether it was intended: 503 from /ready during shutdown only),
acknowledged uploads (201/200) missing from the database afterwards (checked
with GET /documents and with sqlite3 after the server stopped), and the
maximum latency of the probe loop.

    python3 bench/load_faults.py [--duration 60] [--esg target/release/esg]

Exit status 1 when an unintended 5xx was answered, an acknowledged upload is
missing, or a probe stayed unanswered for more than --probe-max-ms.
Stdlib only.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "samples", "northwind-2024-sustainability.txt")
COMPANY = "Northwind Traders"
UPLOAD_COMPANY = "Load Faults Ltd"


class Recorder:
    """Thread-safe per-class results."""

    def __init__(self):
        self.lock = threading.Lock()
        self.status = defaultdict(lambda: defaultdict(int))  # class -> status -> n
        self.lat = defaultdict(list)  # class -> [seconds]
        self.fivexx = []  # (class, status, body head)
        self.acked = []  # (doc_id, status)
        self.notes = defaultdict(int)

    def add(self, cls, status, seconds, body=b""):
        with self.lock:
            self.status[cls][status] += 1
            self.lat[cls].append(seconds)
            if isinstance(status, int) and status >= 500:
                self.fivexx.append((cls, status, body[:300]))

    def note(self, what):
        with self.lock:
            self.notes[what] += 1


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def request(port, method, path, body=None, headers=None, timeout=60):
    """One request on its own connection: (status or error name, seconds, body)."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        data = res.read()
        return res.status, time.monotonic() - t0, data
    except (OSError, http.client.HTTPException) as e:
        return type(e).__name__, time.monotonic() - t0, b""
    finally:
        conn.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def build_esg(args):
    if args.esg:
        return args.esg
    env = dict(os.environ)
    target = env.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    print(f"building the release esg (CARGO_TARGET_DIR={target}) ...", flush=True)
    subprocess.run(
        ["cargo", "build", "--release", "-p", "esg-cli", "--bin", "esg"],
        cwd=ROOT,
        check=True,
        env=env,
    )
    return os.path.join(target, "release", "esg")


def keys_supported(esg):
    r = subprocess.run([esg, "keys", "--help"], capture_output=True, text=True)
    return r.returncode == 0


def add_key(esg, data):
    """`esg keys add`, if the build has it: returns the key printed, else None."""
    if not keys_supported(esg):
        return None
    r = subprocess.run(
        [esg, "--data-dir", data, "keys", "add", "--label", "load-faults", "--json"],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        sys.exit(f"esg keys add failed: {r.stderr.strip()}")
    return json.loads(r.stdout)["key"]


def read_port(proc, log, deadline):
    """The port in esg serve's JSON `listening` line on proc's stdout (each
    line read is copied to log), or None if it never came before deadline."""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            return None
        log.write(line)
        try:
            v = json.loads(line)
        except ValueError:
            continue
        if v.get("message") == "listening" or "listen" in v:
            addr = v.get("listen") or v.get("fields", {}).get("listen")
            if addr:
                return int(str(addr).rsplit(":", 1)[1])
    return None


def start_server(esg, data, args, otlp_port):
    env = dict(os.environ)
    env.pop("ESG_DATA_DIR", None)
    env.update(
        {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": args.otlp_protocol,
            "OTEL_SERVICE_NAME": "esg-load-faults",
        }
    )
    log = open(os.path.join(data, "server.log"), "wb")
    proc = subprocess.Popen(
        [
            esg,
            "--data-dir",
            data,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--max-json-kb",
            str(args.max_json_kb),
            "--max-upload-mb",
            str(args.max_upload_mb),
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
    )
    deadline = time.monotonic() + 30
    lines = []

    def pump():
        for line in proc.stdout:
            log.write(line)
            lines.append(line)

    # Find the port in the `listening` line, then keep draining stdout.
    port = read_port(proc, log, deadline)
    if port is None:
        proc.kill()
        sys.exit(f"the server did not report its port; see {data}/server.log")
    threading.Thread(target=pump, daemon=True).start()
    while time.monotonic() < deadline:
        st, _, _ = request(port, "GET", "/ready", timeout=5)
        if st == 200:
            return proc, port, lines
        time.sleep(0.1)
    proc.kill()
    sys.exit("the server never became ready")


def upload_body(i, run_id):
    rnd = random.Random(i)
    words = ["emissions", "renewable", "board", "climate", "water", "safety", "supplier", "audit"]
    lines = [f"Load faults report {run_id} number {i}."]
    for k in range(40):
        lines.append(
            " ".join(rnd.choice(words) for _ in range(10)) + f" rose {rnd.randint(1, 99)} percent in {2020 + k % 5}."
        )
    return ("\n".join(lines) + "\n").encode()


def auth(key):
    return {"Authorization": f"Bearer {key}"} if key else {}


def oversized_request(args, key):
    """A request over a limit, chosen at random: POST /score over
    --max-json-kb, or POST /documents over --max-upload-mb (expect 413).
    Returns (method, path, body, headers)."""
    if random.random() < 0.5:
        big = b'{"company": "' + b"x" * (args.max_json_kb * 1024 + 100) + b'"}'
        return "POST", "/score", big, {"Content-Type": "application/json"}
    big = b"scope 1 emissions " * ((args.max_upload_mb << 20) // 18 + 1000)
    h = {"Content-Type": "text/plain"}
    h.update(auth(key))
    return "POST", "/documents?company=Big%20Co&year=2024", big, h


def half_request(port, key):
    """Sends part of a request at random (headers cut short, a JSON body cut
    short, or an upload cut short), waits up to 0.2 s and hangs up. Returns
    the kind sent; raises OSError when the connection fails."""
    kind = random.choice(["half-headers", "half-json", "half-upload"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        if kind == "half-headers":
            sock.sendall(b"POST /score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        elif kind == "half-json":
            sock.sendall(
                b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 400\r\n\r\n{\"company\": \"Northwind"
            )
        else:
            hdr = "".join(f"{k}: {v}\r\n" for k, v in auth(key).items())
            sock.sendall(
                (
                    "POST /documents?company=Half%20Co&year=2024 HTTP/1.1\r\nHost: x\r\n"
                    "Content-Type: text/plain\r\nContent-Length: 200000\r\n" + hdr + "\r\n"
                ).encode()
                + b"scope 1 emissions fell. " * 2000
            )
        time.sleep(random.uniform(0, 0.2))
    return kind


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--esg", help="path to a built esg binary (default: cargo build --release)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of traffic (bounded)")
    ap.add_argument("--max-requests", type=int, default=4000, help="per class, at most")
    ap.add_argument("--max-json-kb", type=int, default=64)
    ap.add_argument("--max-upload-mb", type=int, default=1)
    ap.add_argument("--lock-hold", type=float, default=4.0, help="seconds the sqlite3 locker holds BEGIN IMMEDIATE")
    ap.add_argument("--lock-every", type=float, default=10.0, help="seconds between locker starts")
    ap.add_argument("--probe-max-ms", type=float, default=1000.0)
    ap.add_argument("--otlp-protocol", default="grpc", choices=["grpc", "http/protobuf"])
    ap.add_argument("--keep", action="store_true", help="keep the data dir")
    args = ap.parse_args()

    if not shutil.which("sqlite3"):
        sys.exit("sqlite3 is required (apt-get install -y sqlite3)")
    esg = build_esg(args)
    data = tempfile.mkdtemp(prefix="esg-load-faults-")
    r = subprocess.run(
        [esg, "--data-dir", data, "ingest", "--company", COMPANY, "--year", "2024", SAMPLE],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        sys.exit(f"ingest of the sample failed: {r.stderr}")
    key = add_key(esg, data)
    otlp_port = free_port()  # closed: nothing listens there
    proc, port, _ = start_server(esg, data, args, otlp_port)
    print(
        f"esg serve on 127.0.0.1:{port}, data {data}, OTLP ({args.otlp_protocol}) -> closed port {otlp_port}, "
        f"auth {'Bearer key' if key else 'not in this build'}",
        flush=True,
    )
    db_path = os.path.join(data, "esg.sqlite3")
    rec = Recorder()
    stop = threading.Event()
    run_id = f"{os.getpid()}-{int(time.time())}"
    counter = {"upload": 0}
    counter_lock = threading.Lock()

    def loop(cls, fn):
        n = 0
        while not stop.is_set() and n < args.max_requests:
            fn()
            n += 1

    def do_score():
        body = json.dumps({"company": COMPANY, "year": 2024}).encode()
        st, s, b = request(port, "POST", "/score?k=10", body, {"Content-Type": "application/json"})
        rec.add("score", st, s, b)

    def do_search():
        q = random.choice(["scope 1 emissions", "board oversight climate", "renewable electricity", "water"])
        path = "/search?company=Northwind%20Traders&k=5&q=" + q.replace(" ", "%20")
        st, s, b = request(port, "GET", path)
        rec.add("search", st, s, b)

    def do_upload():
        with counter_lock:
            counter["upload"] += 1
            i = counter["upload"]
        body = upload_body(i, run_id)
        h = {"Content-Type": "text/plain"}
        h.update(auth(key))
        st, s, b = request(
            port,
            "POST",
            f"/documents?company={UPLOAD_COMPANY.replace(' ', '%20')}&year=2024&filename=load-{i}.txt",
            body,
            h,
        )
        rec.add("upload", st, s, b)
        if st in (200, 201):
            try:
                doc = json.loads(b)["document"]["doc_id"]
            except (ValueError, KeyError, TypeError):
                doc = None
            rec.acked.append((doc, st, i))

    def do_malformed():
        bad = random.choice([b'{"company": "Northwind', b"{,}", b"\x00\xff\xfe", b'{"company": Northwind}', b"[" * 5000])
        st, s, b = request(port, "POST", "/score", bad, {"Content-Type": "application/json"})
        rec.add("malformed", st, s, b)
        time.sleep(0.05)

    def do_oversized():
        method, path, body, headers = oversized_request(args, key)
        st, s, b = request(port, method, path, body, headers)
        rec.add("oversized", st, s, b)
        time.sleep(0.1)

    def do_disconnect():
        t0 = time.monotonic()
        try:
            kind = half_request(port, key)
            rec.add("disconnect", kind, time.monotonic() - t0)
        except OSError as e:
            rec.add("disconnect", type(e).__name__, time.monotonic() - t0)
        time.sleep(0.05)

    probe_lat = {"/ready": [], "/metrics": []}
    probe_bad = defaultdict(int)

    def probe_loop():
        while not stop.is_set():
            for path in ("/ready", "/metrics"):
                st, s, b = request(port, "GET", path, timeout=30)
                probe_lat[path].append(s)
                rec.add("probe " + path, st, s, b)
                if st != 200:
                    probe_bad[(path, st)] += 1
            time.sleep(0.05)

    lock_events = []

    def locker():
        next_start = time.monotonic() + 3
        while not stop.is_set():
            if time.monotonic() < next_start:
                time.sleep(0.05)
                continue
            next_start = time.monotonic() + args.lock_every
            p = subprocess.Popen(
                ["sqlite3", db_path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            p.stdin.write(".timeout 10000\nBEGIN IMMEDIATE;\nSELECT 'locked';\n")
            p.stdin.flush()
            got = p.stdout.readline().strip()
            t_locked = time.monotonic()
            if got == "locked":
                time.sleep(args.lock_hold)
            p.stdin.write("COMMIT;\n.quit\n")
            p.stdin.flush()
            _, err = p.communicate(timeout=30)
            lock_events.append((got == "locked", time.monotonic() - t_locked, err.strip()))

    workers = [
        ("score", do_score, 2),
        ("search", do_search, 2),
        ("upload", do_upload, 2),
        ("malformed", do_malformed, 1),
        ("oversized", do_oversized, 1),
        ("disconnect", do_disconnect, 1),
    ]
    threads = [threading.Thread(target=probe_loop, daemon=True), threading.Thread(target=locker, daemon=True)]
    for cls, fn, n in workers:
        for _ in range(n):
            threads.append(threading.Thread(target=loop, args=(cls, fn), daemon=True))
    t_start = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(args.duration)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    elapsed = time.monotonic() - t_start

    # Acknowledged uploads, as the server lists them.
    st, _, b = request(port, "GET", "/documents?company=" + UPLOAD_COMPANY.replace(" ", "%20"), timeout=60)
    listed = set()
    if st == 200:
        listed = {d["doc_id"] for d in json.loads(b)["documents"]}
    # Graceful stop, then the database itself.
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = "killed after 60 s"
    con = sqlite3.connect(db_path)
    in_db = {r[0] for r in con.execute("SELECT doc_id FROM documents")}
    integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
    con.close()
    acked_ids = {d for d, _, _ in rec.acked if d}
    unparsed = [i for d, _, i in rec.acked if not d]
    missing_api = sorted(acked_ids - listed)
    missing_db = sorted(acked_ids - in_db)

    # ------------------------------------------------------------ report
    print()
    print(f"traffic for {elapsed:.1f} s; server exit after SIGTERM: {rc}; integrity_check: {integrity}")
    print()
    print(f"| {'class':<16} | {'sent':>5} | {'responses by status':<44} | {'p50 ms':>7} | {'p99 ms':>7} | {'max ms':>7} |")
    print(f"|{'-' * 18}|{'-' * 7}|{'-' * 46}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
    total = 0
    for cls in sorted(rec.status):
        sts = rec.status[cls]
        n = sum(sts.values())
        total += n
        by = ", ".join(f"{k}: {v}" for k, v in sorted(sts.items(), key=lambda kv: str(kv[0])))
        lat = rec.lat[cls]
        print(
            f"| {cls:<16} | {n:>5} | {by:<44} | {pct(lat, 50) * 1e3:>7.1f} | {pct(lat, 99) * 1e3:>7.1f} | {max(lat) * 1e3:>7.1f} |"
        )
    print(f"| {'total':<16} | {total:>5} | {'':<44} | {'':>7} | {'':>7} | {'':>7} |")
    print()
    fivexx = rec.fivexx
    # The design sheds load with 503 (and 429/408); any other 5xx is a failure.
    intended = [f for f in fivexx if f[1] == 503]
    unintended = [f for f in fivexx if f not in intended]
    print(f"5xx answers: {len(fivexx)} ({len(intended)} intended 503 shedding, {len(unintended)} unintended)")
    for cls, status, body in unintended[:10]:
        print(f"  {cls} {status}: {body.decode('utf-8', 'replace')}")
    print(
        f"acknowledged uploads: {len(rec.acked)} ({len(acked_ids)} distinct doc ids); "
        f"missing from GET /documents: {len(missing_api)}; missing from the database: {len(missing_db)}; "
        f"acks without a doc_id: {len(unparsed)}"
    )
    for cls in ("probe /ready", "probe /metrics"):
        lat = rec.lat.get(cls, [])
        if lat:
            print(f"{cls}: {len(lat)} probes, p99 {pct(lat, 99) * 1e3:.1f} ms, max {max(lat) * 1e3:.1f} ms")
    print(f"probe answers other than 200: {dict(probe_bad) or 'none'}")
    held = [e for e in lock_events if e[0]]
    print(
        f"sqlite3 locker: {len(held)} of {len(lock_events)} BEGIN IMMEDIATE holds of {args.lock_hold:.1f} s "
        f"(every {args.lock_every:.0f} s)"
        + ("; errors: " + "; ".join(e[2] for e in lock_events if e[2]) if any(e[2] for e in lock_events) else "")
    )
    probe_max = max((max(v) for v in probe_lat.values() if v), default=float("inf")) * 1e3
    ok = not unintended and not missing_api and not missing_db and probe_max <= args.probe_max_ms and integrity == "ok"
    print("RESULT:", "PASS" if ok else "FAIL")
    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)
    else:
        print(f"data kept in {data}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
