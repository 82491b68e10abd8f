#!/usr/bin/env python3
"""Load with faults against two `esg serve` replicas on one PostgreSQL
database, with a database restart (issue 15; run by hand; loopback only).

Starts a throw-away PostgreSQL cluster (initdb/pg_ctl of the Debian
postgresql package, as the postgres user when run as root; in a temp dir on a
free port, fsync on as a real server; stopped and removed on exit, Ctrl-C
included) or, with ESG_BENCH_DATABASE_URL (a role that may CREATE DATABASE),
a fresh database there (dropped on exit; no restart fault then). Ingests the
shipped sample (`esg ingest --no-embed`), adds an API key (`esg keys add`:
keys live in the database), and starts two replicas A and B (`esg serve
--database-url URL --embedder none`), each with its own data dir, one shared
--files-dir, on 127.0.0.1:0, with OpenTelemetry export pointed at a closed
port (the collector is down). Then for a bounded time drives mixed traffic
from threads, each request sent to a replica chosen at random:

  score       POST /score for the sample company
  search      GET /search
  upload      POST /documents with the key, distinct small text documents
  probe       GET /ready and GET /metrics on each replica in a loop

while injecting the faults of bench/load_faults.py:

  malformed   POST /score with broken JSON (expect 400)
  oversized   POST /score over --max-json-kb and POST /documents over
              --max-upload-mb (expect 413)
  disconnect  raw sockets that send half a request line/headers or half a
              declared body, then close
  locker      every --lock-every s a `psql` session holds
              LOCK TABLE documents IN ACCESS EXCLUSIVE MODE for --lock-hold s
              (writers and readers of documents wait; under the server's 30 s
              statement timeout nothing should fail)
  otlp down   OTEL_TRACES_EXPORTER=otlp to a port nobody listens on

plus a database restart: once, at --restart-at of the duration (0.4),
`pg_ctl stop -m fast`, --outage s (5) of nothing, `pg_ctl start`. A watcher
polls /ready of both replicas from the stop on, to time when each went
unready and how long after the database was back each was ready again.

Reports requests by class and by replica with their statuses and p50/p99/max
latency, every 5xx and whether it was intended (503 `store_unavailable`, and
503 from /ready, for a request that overlapped the outage window: from the
stop until --grace s after the database is back; any other 5xx is not),
429s of the concurrency limit (fine), acknowledged uploads (201/200) that
either replica's GET /documents or the `documents` table lacks afterwards
(goal 0), the outage window, per replica when it went unready, how long
after the database was back it was ready again and how many 503
`store_unavailable` it answered while its /ready still said 200, the
probes' latency, the locker's holds, and the error_type counts of each
replica's JSON log.

    python3 bench/load_faults_replicas.py [--duration 60] [--esg PATH]

Exit status 1 when an unintended 5xx was answered, an acknowledged upload is
missing, or a replica was not ready again after the outage (and, with
--probe-max-ms, when a probe took longer). Stdlib only; imports
bench/load_faults.py.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import load_faults as lf  # noqa: E402

ROOT = lf.ROOT
SAMPLE = lf.SAMPLE
COMPANY = lf.COMPANY
UPLOAD_COMPANY = "Load Faults Replicas Ltd"
REPLICAS = ("A", "B")


def q(s):
    return s.replace(" ", "%20")


class Recorder(lf.Recorder):
    """lf.Recorder plus the replica of each answer and the time of each 5xx."""

    def __init__(self, t_start):
        super().__init__()
        self.t_start = t_start
        self.by_replica = defaultdict(lambda: defaultdict(int))  # replica -> status -> n
        self.lat_replica = defaultdict(list)
        self.errors = []  # (class, replica, status, code, t0, t1, body) for every 5xx, times from t_start

    def add_r(self, cls, replica, status, seconds, body, t0):
        self.add(cls, status, seconds, body)
        with self.lock:
            self.by_replica[replica][status] += 1
            self.lat_replica[replica].append(seconds)
            if isinstance(status, int) and status >= 500:
                self.errors.append(
                    (cls, replica, status, error_code(body), t0 - self.t_start, t0 + seconds - self.t_start, body[:300])
                )


def error_code(body):
    try:
        return json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


# ------------------------------------------------------------ PostgreSQL


def as_postgres(cmd):
    """Runs initdb/pg_ctl as the postgres user when we are root (initdb refuses root)."""
    return ["runuser", "-u", "postgres", "--"] + cmd if os.geteuid() == 0 else cmd


def with_db(url, db):
    return re.sub(r"^(\w+://[^/?]*)(/[^?]*)?", lambda m: m.group(1) + "/" + db, url, count=1)


def pg_bin():
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(os.path.realpath(initdb))
    cands = []
    for v in os.listdir("/usr/lib/postgresql") if os.path.isdir("/usr/lib/postgresql") else []:
        d = os.path.join("/usr/lib/postgresql", v, "bin")
        if os.path.exists(os.path.join(d, "initdb")):
            cands.append((int(v) if v.isdigit() else 0, d))
    return max(cands)[1] if cands else None


class Cluster:
    """A throw-away cluster in `work`/pg on a free port."""

    def __init__(self, work):
        self.bin = pg_bin()
        if not self.bin:
            sys.exit("PostgreSQL is not installed (apt-get install postgresql) and ESG_BENCH_DATABASE_URL is unset")
        self.dir = os.path.join(work, "pg")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "log")
        self.port = lf.free_port()
        self.started = False
        self.closing = False
        os.mkdir(self.dir)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            as_postgres(
                [os.path.join(self.bin, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.start()
        self.admin_url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args, check=True):
        return subprocess.run(
            as_postgres([os.path.join(self.bin, "pg_ctl"), "-D", self.data] + list(args)),
            check=check,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def start(self):
        if self.closing:  # the run is being torn down: the restart must not bring it back
            return
        self.pg_ctl("-l", self.log, "-w", "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")
        self.started = True

    def stop(self, check=True):
        r = self.pg_ctl("-m", "fast", "-w", "stop", check=check)
        self.started = False
        return r

    def close(self):
        self.closing = True
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self.stop(check=False)


def psql(url, sql, timeout=60):
    r = subprocess.run(
        ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if r.returncode != 0:
        raise RuntimeError(f"psql {sql!r}: {r.stderr.strip()}")
    return r.stdout


# ------------------------------------------------------------ esg


def esg_run(esg, url, files, data, *args):
    return subprocess.run(
        [esg, "--database-url", url, "--files-dir", files, "--data-dir", data] + list(args),
        capture_output=True,
        text=True,
    )


def start_server(esg, name, url, files, data, args, otlp_port):
    """lf.start_server for one replica: the same flags plus the database,
    the shared files dir and no embedder. Returns (proc, port, log path)."""
    env = dict(os.environ)
    for k in ("ESG_DATA_DIR", "ESG_DATABASE_URL", "ESG_FILES_DIR"):
        env.pop(k, None)
    env.update(
        {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": args.otlp_protocol,
            "OTEL_SERVICE_NAME": f"esg-load-faults-{name}",
        }
    )
    log_path = os.path.join(data, "server.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [
            esg,
            "--database-url",
            url,
            "--files-dir",
            files,
            "--data-dir",
            data,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--embedder",
            "none",
            "--max-json-kb",
            str(args.max_json_kb),
            "--max-upload-mb",
            str(args.max_upload_mb),
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
        start_new_session=True,  # Ctrl-C reaches us only; cleanup stops it
    )
    deadline = time.monotonic() + 60
    port = lf.read_port(proc, log, deadline)
    if port is None:
        proc.kill()
        raise RuntimeError(f"replica {name} did not report its port; see {log_path}")

    def pump():
        for line in proc.stdout:
            log.write(line)
        log.close()

    threading.Thread(target=pump, daemon=True).start()
    while time.monotonic() < deadline:
        st, _, _ = lf.request(port, "GET", "/ready", timeout=5)
        if st == 200:
            return proc, port, log_path
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"replica {name} never became ready; see {log_path}")


def log_errors(path):
    """error_type -> count in a replica's JSON log, plus the first lines of each."""
    counts, first = defaultdict(int), {}
    try:
        with open(path, "rb") as f:
            for line in f:
                try:
                    v = json.loads(line)
                except ValueError:
                    continue
                et = v.get("error_type") or v.get("fields", {}).get("error_type")
                if et:
                    counts[et] += 1
                    first.setdefault(et, line.decode("utf-8", "replace").strip()[:400])
    except OSError:
        pass
    return counts, first


# ------------------------------------------------------------ main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--esg", help="path to a built esg binary (default: cargo build --release)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of traffic (bounded)")
    # High enough that score and search traffic lasts the whole run, through
    # the database restart: warm answers come from each replica's cache
    # (read leases), so 4000 per thread ran out before the restart.
    ap.add_argument("--max-requests", type=int, default=50000, help="per thread, at most")
    ap.add_argument("--max-json-kb", type=int, default=64)
    ap.add_argument("--max-upload-mb", type=int, default=1)
    ap.add_argument("--lock-hold", type=float, default=4.0, help="seconds the psql locker holds the table lock")
    ap.add_argument("--lock-every", type=float, default=10.0, help="seconds between locker starts")
    ap.add_argument("--restart-at", type=float, default=0.4, help="fraction of the duration when the database stops")
    ap.add_argument("--outage", type=float, default=5.0, help="seconds the database stays down")
    ap.add_argument("--grace", type=float, default=5.0, help="seconds after the database is back when 503s are still intended")
    ap.add_argument("--probe-max-ms", type=float, default=None, help="fail when a probe took longer (default: report only)")
    ap.add_argument("--otlp-protocol", default="grpc", choices=["grpc", "http/protobuf"])
    ap.add_argument("--keep", action="store_true", help="keep the work dir (replica logs; the database is stopped)")
    args = ap.parse_args()

    if not shutil.which("psql"):
        sys.exit("psql is required (apt-get install -y postgresql-client)")
    esg = os.path.abspath(lf.build_esg(args))

    # SIGTERM ends the run like Ctrl-C: through the finally below.
    def on_term(*_):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)  # also when started with SIGINT ignored (a background job)
    work = tempfile.mkdtemp(prefix="esg-load-faults-replicas-")
    os.chmod(work, 0o755)  # the postgres user walks into work/pg
    cluster = None
    external = os.environ.get("ESG_BENCH_DATABASE_URL")
    dbname = "esg_bench" if not external else f"esg_bench_{os.getpid()}_{int(time.time())}"
    admin_url = None
    db_created = False
    procs = {}
    try:
        if external:
            admin_url = external
        else:
            cluster = Cluster(work)
            admin_url = cluster.admin_url
        psql(admin_url, f"CREATE DATABASE {dbname}")
        db_created = True
        return run(args, esg, work, cluster, with_db(admin_url, dbname), procs)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for name, p in procs.items():
            if p.poll() is None:
                p.terminate()
        for name, p in procs.items():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        if external and db_created:
            try:
                psql(admin_url, f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                print(f"could not drop {dbname}: {e}", file=sys.stderr)
        if cluster:
            cluster.close()
        if args.keep:
            print(f"work dir kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(args, esg, work, cluster, url, procs):
    files = os.path.join(work, "files")
    os.mkdir(files)
    setup = os.path.join(work, "setup")
    os.mkdir(setup)
    r = esg_run(esg, url, files, setup, "ingest", "--no-embed", "--company", COMPANY, "--year", "2024", SAMPLE)
    if r.returncode != 0:
        raise RuntimeError(f"ingest of the sample failed: {r.stderr}")
    tables = psql(url, "select tablename from pg_tables where schemaname = current_schema()").split()
    if "documents" not in tables:
        raise RuntimeError(f"no documents table in the database (tables: {tables})")
    r = esg_run(esg, url, files, setup, "keys", "add", "--label", "load-faults", "--json")
    if r.returncode != 0:
        raise RuntimeError(f"esg keys add failed: {r.stderr.strip()}")
    key = json.loads(r.stdout)["key"]
    otlp_port = lf.free_port()  # closed: nothing listens there
    ports = {}
    for name in REPLICAS:
        data = os.path.join(work, f"replica-{name}")
        os.mkdir(data)
        proc, port, _ = start_server(esg, name, url, files, data, args, otlp_port)
        procs[name] = proc
        ports[name] = port
    print(
        f"replicas A 127.0.0.1:{ports['A']}, B 127.0.0.1:{ports['B']} on "
        f"{'a throw-away PostgreSQL, port ' + str(cluster.port) if cluster else 'ESG_BENCH_DATABASE_URL'} "
        f"(database {url.rsplit('/', 1)[1]}), shared files {files}, "
        f"OTLP ({args.otlp_protocol}) -> closed port {otlp_port}; tables: {', '.join(sorted(tables))}",
        flush=True,
    )

    t_start = time.monotonic()
    rec = Recorder(t_start)
    stop = threading.Event()
    run_id = f"{os.getpid()}-{int(time.time())}"
    counter = {"upload": 0}
    counter_lock = threading.Lock()

    def pick():
        name = random.choice(REPLICAS)
        return name, ports[name]

    def send(cls, method, path, body=None, headers=None, replica=None, timeout=60):
        name, port = (replica, ports[replica]) if replica else pick()
        t0 = time.monotonic()
        st, s, b = lf.request(port, method, path, body, headers, timeout=timeout)
        rec.add_r(cls, name, st, s, b, t0)
        return name, st, b

    def loop(fn):
        n = 0
        while not stop.is_set() and n < args.max_requests:
            fn()
            n += 1

    def do_score():
        body = json.dumps({"company": COMPANY, "year": 2024}).encode()
        send("score", "POST", "/score?k=10", body, {"Content-Type": "application/json"})

    def do_search():
        qs = random.choice(["scope 1 emissions", "board oversight climate", "renewable electricity", "water"])
        send("search", "GET", f"/search?company={q(COMPANY)}&k=5&q={q(qs)}")

    def do_upload():
        with counter_lock:
            counter["upload"] += 1
            i = counter["upload"]
        body = lf.upload_body(i, run_id)
        h = {"Content-Type": "text/plain"}
        h.update(lf.auth(key))
        name, st, b = send("upload", "POST", f"/documents?company={q(UPLOAD_COMPANY)}&year=2024&filename=load-{i}.txt", body, h)
        if st in (200, 201):
            try:
                doc = json.loads(b)["document"]["doc_id"]
            except (ValueError, KeyError, TypeError):
                doc = None
            with rec.lock:
                rec.acked.append((doc, st, i, name))

    def do_malformed():
        bad = random.choice([b'{"company": "Northwind', b"{,}", b"\x00\xff\xfe", b'{"company": Northwind}', b"[" * 5000])
        send("malformed", "POST", "/score", bad, {"Content-Type": "application/json"})
        time.sleep(0.05)

    def do_oversized():
        send("oversized", *lf.oversized_request(args, key))
        time.sleep(0.1)

    def do_disconnect():
        name, port = pick()
        t0 = time.monotonic()
        try:
            kind = lf.half_request(port, key)
            rec.add_r("disconnect", name, kind, time.monotonic() - t0, b"", t0)
        except OSError as e:
            rec.add_r("disconnect", name, type(e).__name__, time.monotonic() - t0, b"", t0)
        time.sleep(0.05)

    probe_bad = defaultdict(int)  # (replica, path, status) -> n

    def probe_loop(name):
        while not stop.is_set():
            for path in ("/ready", "/metrics"):
                _, st, _ = send("probe " + path, "GET", path, replica=name, timeout=30)
                if st != 200:
                    probe_bad[(name, path, st)] += 1
            time.sleep(0.05)

    # The outage: when the stop began, when the database was back.
    outage = {"down": None, "stopped": None, "up": None, "error": None}
    db_down = threading.Event()

    lock_events = []  # (held, start, end, error), times from t_start

    def locker():
        next_start = time.monotonic() + 3
        while not stop.is_set():
            if time.monotonic() < next_start:
                time.sleep(0.05)
                continue
            if db_down.is_set():  # not while the database is down: the next lock once it is back
                time.sleep(0.05)
                continue
            next_start = time.monotonic() + args.lock_every
            t0 = time.monotonic()
            try:
                psql(
                    url,
                    "BEGIN; LOCK TABLE documents IN ACCESS EXCLUSIVE MODE; "
                    f"SELECT pg_sleep({args.lock_hold}); COMMIT;",
                    timeout=args.lock_hold + 60,
                )
                lock_events.append((True, t0 - t_start, time.monotonic() - t_start, ""))
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                why = " / ".join(l.strip() for l in str(e).split(": ", 1)[-1].splitlines() if l.strip())
                lock_events.append((False, t0 - t_start, time.monotonic() - t_start, why[:160]))

    def restarter():
        at = t_start + args.restart_at * args.duration
        while time.monotonic() < at:
            if stop.wait(0.05):
                return
        db_down.set()
        outage["down"] = time.monotonic() - t_start
        try:
            cluster.stop()
            outage["stopped"] = time.monotonic() - t_start
            time.sleep(args.outage)
            cluster.start()
        except subprocess.CalledProcessError as e:
            outage["error"] = f"{e.cmd}: {e.stderr}"
            try:
                cluster.start()
            except subprocess.CalledProcessError:
                pass
        outage["up"] = time.monotonic() - t_start
        db_down.clear()

    # /ready of both replicas every 50 ms from the stop on: when each went
    # unready, and when it was ready again after the database was back.
    watch = {n: {"unready": None, "ready": None, "polls": defaultdict(int)} for n in REPLICAS}

    def watcher():
        while outage["down"] is None:
            if stop.wait(0.02):
                return
        deadline = time.monotonic() + args.outage + 120
        while time.monotonic() < deadline:
            pending = False
            for n in REPLICAS:
                w = watch[n]
                if w["ready"] is not None:
                    continue
                pending = True
                st, _, _ = lf.request(ports[n], "GET", "/ready", timeout=10)
                now = time.monotonic() - t_start
                w["polls"][st] += 1
                if st != 200 and w["unready"] is None:
                    w["unready"] = now
                if st == 200 and outage["up"] is not None:
                    w["ready"] = now
            if not pending:
                return
            time.sleep(0.05)

    workers = [
        ("score", do_score, 2),
        ("search", do_search, 2),
        ("upload", do_upload, 2),
        ("malformed", do_malformed, 1),
        ("oversized", do_oversized, 1),
        ("disconnect", do_disconnect, 1),
    ]
    threads = [threading.Thread(target=probe_loop, args=(n,), daemon=True) for n in REPLICAS]
    threads.append(threading.Thread(target=locker, daemon=True))
    aux = []
    if cluster:
        aux = [threading.Thread(target=restarter, daemon=True), threading.Thread(target=watcher, daemon=True)]
    for cls, fn, n in workers:
        for _ in range(n):
            threads.append(threading.Thread(target=loop, args=(fn,), daemon=True))
    for t in threads + aux:
        t.start()
    time.sleep(args.duration)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    elapsed = time.monotonic() - t_start
    for t in aux:  # the restart and the watcher finish even when the traffic has stopped
        t.join(timeout=args.outage + 180)

    # Both replicas ready before the checks.
    ready_at_end = {}
    for n in REPLICAS:
        deadline = time.monotonic() + 60
        st = None
        while time.monotonic() < deadline:
            st, _, _ = lf.request(ports[n], "GET", "/ready", timeout=10)
            if st == 200:
                break
            time.sleep(0.2)
        ready_at_end[n] = st

    # Acknowledged uploads, as each replica lists them and as the table holds them.
    listed = {}
    for n in REPLICAS:
        st, _, b = lf.request(ports[n], "GET", f"/documents?company={q(UPLOAD_COMPANY)}", timeout=60)
        listed[n] = {d["doc_id"] for d in json.loads(b)["documents"]} if st == 200 else None
        if st != 200:
            print(f"GET /documents on replica {n}: {st} {b[:300]!r}")
    in_db = set(psql(url, "SELECT doc_id FROM documents").split())
    acked_ids = {a[0] for a in rec.acked if a[0]}
    unparsed = [a for a in rec.acked if not a[0]]
    missing = {n: sorted(acked_ids - (listed[n] or set())) for n in REPLICAS}
    missing_db = sorted(acked_ids - in_db)
    lost = set(missing_db).union(*missing.values())

    # Graceful stop of both replicas.
    rcs = {}
    for n in REPLICAS:
        procs[n].send_signal(signal.SIGTERM)
    for n in REPLICAS:
        try:
            rcs[n] = procs[n].wait(timeout=60)
        except subprocess.TimeoutExpired:
            procs[n].kill()
            rcs[n] = "killed after 60 s"

    # ------------------------------------------------------------ classify
    def in_window(t0, t1):
        if outage["down"] is None:
            return False
        end = (outage["up"] if outage["up"] is not None else float("inf")) + args.grace
        return t0 <= end and t1 >= outage["down"]

    intended, unintended = [], []
    for e in rec.errors:
        cls, _, status, code, t0, t1, _ = e
        ok = status == 503 and in_window(t0, t1) and (code == "store_unavailable" or cls == "probe /ready")
        (intended if ok else unintended).append(e)

    # ------------------------------------------------------------ report
    def skey(kv):
        return (not isinstance(kv[0], int), str(kv[0]))

    def table(title, rows):
        width = max([44] + [len(r[2]) for r in rows])
        print(f"| {title:<16} | {'sent':>5} | {'responses by status':<{width}} | {'p50 ms':>7} | {'p99 ms':>7} | {'max ms':>8} |")
        print(f"|{'-' * 18}|{'-' * 7}|{'-' * (width + 2)}|{'-' * 9}|{'-' * 9}|{'-' * 10}|")
        for name, n, by, lat in rows:
            if lat:
                print(
                    f"| {name:<16} | {n:>5} | {by:<{width}} | {lf.pct(lat, 50) * 1e3:>7.1f} | "
                    f"{lf.pct(lat, 99) * 1e3:>7.1f} | {max(lat) * 1e3:>8.1f} |"
                )
            else:
                print(f"| {name:<16} | {n:>5} | {by:<{width}} | {'':>7} | {'':>7} | {'':>8} |")

    print()
    print(
        f"traffic for {elapsed:.1f} s on 2 replicas; exit after SIGTERM: "
        + ", ".join(f"{n} {rcs[n]}" for n in REPLICAS)
    )
    print()
    rows, total = [], 0
    for cls in sorted(rec.status):
        sts = rec.status[cls]
        n = sum(sts.values())
        total += n
        by = ", ".join(f"{k}: {v}" for k, v in sorted(sts.items(), key=skey))
        rows.append((cls, n, by, rec.lat[cls]))
    rows.append(("total", total, "", []))
    table("class", rows)
    print()
    rows = []
    for n in REPLICAS:
        sts = rec.by_replica[n]
        by = ", ".join(f"{k}: {v}" for k, v in sorted(sts.items(), key=skey))
        rows.append((f"replica {n}", sum(sts.values()), by, rec.lat_replica[n]))
    table("replica", rows)
    print()
    n429 = sum(sts.get(429, 0) for sts in rec.status.values())
    print(f"429 (concurrency limit): {n429}")
    codes = defaultdict(int)
    for cls, rep, status, code, *_ in rec.errors:
        codes[(cls, status, code)] += 1
    print(
        f"5xx answers: {len(rec.errors)} ({len(intended)} intended: 503 store_unavailable or /ready during the outage "
        f"+ {args.grace:.0f} s; {len(unintended)} unintended)"
    )
    for (cls, status, code), k in sorted(codes.items(), key=lambda kv: str(kv[0])):
        print(f"  {cls} {status} {code}: {k}")
    for cls, rep, status, code, t0, t1, body in unintended[:10]:
        print(f"  UNINTENDED {cls} on {rep} at +{t0:.2f}..+{t1:.2f} s: {status} {body.decode('utf-8', 'replace')}")
    if intended:
        print(
            f"  intended 5xx from +{min(e[4] for e in intended):.2f} s to +{max(e[5] for e in intended):.2f} s; "
            + ", ".join(f"{n}: {sum(1 for e in intended if e[1] == n)}" for n in REPLICAS)
        )
    print(
        f"acknowledged uploads: {len(rec.acked)} ({len(acked_ids)} distinct doc ids; "
        + ", ".join(f"by {n}: {sum(1 for a in rec.acked if a[3] == n)}" for n in REPLICAS)
        + f"); lost: {len(lost)} (goal 0) -- missing from GET /documents on "
        + ", ".join(f"{n}: {len(missing[n]) if listed[n] is not None else 'not answered'}" for n in REPLICAS)
        + f"; missing from the documents table: {len(missing_db)}; acks without a doc_id: {len(unparsed)}"
    )
    for d in sorted(lost)[:10]:
        print(f"  LOST {d}: " + ", ".join(f"acked by {a[3]} ({a[1]}, load-{a[2]}.txt)" for a in rec.acked if a[0] == d))
    recovered = True
    if cluster:
        if outage["down"] is None:
            print("database restart: did not happen (the run ended first)")
            recovered = False
        else:
            print(
                f"database restart: pg_ctl stop -m fast at +{outage['down']:.2f} s (stopped +{outage['stopped'] or float('nan'):.2f} s), "
                f"start returned at +{outage['up']:.2f} s: down {outage['up'] - outage['down']:.2f} s"
                + (f"; ERROR {outage['error']}" if outage["error"] else "")
            )
            for n in REPLICAS:
                w = watch[n]
                un = f"+{w['unready']:.2f} s ({w['unready'] - outage['down']:.2f} s after the stop)" if w["unready"] else "never seen"
                if w["ready"] is not None:
                    back = f"ready again at +{w['ready']:.2f} s, {w['ready'] - outage['up']:.2f} s after the database was back"
                else:
                    back = "NOT ready again"
                    recovered = False
                polls = ", ".join(f"{k}: {v}" for k, v in sorted(w["polls"].items(), key=skey))
                print(f"  replica {n}: unready from {un}; {back} (watcher /ready polls {polls})")
                su = [e for e in rec.errors if e[1] == n and e[3] == "store_unavailable"]
                before = sum(1 for e in su if w["unready"] is not None and e[5] < w["unready"])
                after = sum(1 for e in su if w["ready"] is not None and e[4] > w["ready"])
                print(
                    f"    503 store_unavailable answered by {n} while its /ready still said 200: {before} before it went "
                    f"unready, {after} after it was ready again"
                )
    else:
        print("database restart: skipped (ESG_BENCH_DATABASE_URL: not our server to restart)")
    for n in REPLICAS:
        if ready_at_end[n] != 200:
            recovered = False
            print(f"replica {n}: /ready at the end answered {ready_at_end[n]}")
    probe_max = 0.0
    for path in ("/ready", "/metrics"):
        lat = rec.lat.get("probe " + path, [])
        if lat:
            probe_max = max(probe_max, max(lat) * 1e3)
            print(f"probe {path}: {len(lat)} probes, p99 {lf.pct(lat, 99) * 1e3:.1f} ms, max {max(lat) * 1e3:.1f} ms")
    print(f"probe answers other than 200: {dict(probe_bad) or 'none'}")
    held = [e for e in lock_events if e[0]]
    print(
        f"psql locker: {len(held)} of {len(lock_events)} ACCESS EXCLUSIVE locks on documents held {args.lock_hold:.1f} s "
        f"(every {args.lock_every:.0f} s, from +{lock_events[0][1]:.1f} s)" if lock_events else "psql locker: no lock taken"
    )
    for _, a, b, why in (e for e in lock_events if not e[0]):
        cut = " (cut by the database restart)" if in_window(a, b) else ""
        print(f"  lock +{a:.2f}..+{b:.2f} s failed{cut}: {why}")
    for n in REPLICAS:
        counts, first = log_errors(os.path.join(work, f"replica-{n}", "server.log"))
        print(f"replica {n} log error_type counts: {dict(counts) or 'none'}")
        for et, line in first.items():
            if et != "store_unavailable":
                print(f"  first {et}: {line}")
    ok = not unintended and not lost and not unparsed and recovered
    if args.probe_max_ms is not None and probe_max > args.probe_max_ms:
        ok = False
    print("RESULT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
