#!/usr/bin/env bash
# `make deploy-check`: validates the deployment descriptions in deploy/ offline, without a Docker engine or a
# cluster. Silent when everything is valid; otherwise says what is wrong and exits 1 (2: the tools could not be
# installed).
#
#   deploy/compose/docker-compose.yml  `docker-compose config -q` (the Python v1 CLI reads the file, checks it
#                                      against the Compose schema and interpolates ${VAR}), once with dummy
#                                      secrets, then once per required secret left unset, which must fail
#   deploy/compose/Dockerfile          hadolint
#   deploy/compose/haproxy.cfg         `haproxy -c` when haproxy is installed (make cluster installs it)
#   deploy/kubernetes/*.yaml           kubernetes-validate --strict against K8S_VERSION (default 1.37.0; the
#                                      schemas ship in the package), and kustomization.yaml lists every file
#
# The validators live in .venv-deploy/ (gitignored), pinned in deploy/requirements-check.txt, one venv per
# section of that file; they are installed on the first run and again only when their pins change.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="${DEPLOY_TOOLS_DIR:-.venv-deploy}"
PINS=deploy/requirements-check.txt
COMPOSE_FILE=deploy/compose/docker-compose.yml
K8S_DIR=deploy/kubernetes
K8S_VERSION="${K8S_VERSION:-1.37.0}"
# The secrets the Compose file must refuse to start without.
REQUIRED_SECRETS=(POSTGRES_PASSWORD ACTION_SERVER_TOKEN SENDER_ID_SECRET CUSTOMER_TOKEN_SECRET)

problems=0
problem() { # problem TITLE [OUTPUT]: reports one finding and remembers that the check failed
  echo "deploy-check: $1" >&2
  if [ -n "${2:-}" ]; then printf '%s\n' "$2" | sed 's/^/    /' >&2; fi
  problems=$((problems + 1))
}

# section NAME: the requirement lines of one "# [NAME]" section of $PINS (no comments, no blank lines).
section() {
  awk -v want="# [$1]" '/^# \[/ { on = ($0 == want); next } on && NF && !/^#/' "$PINS"
}

python310() {
  local python
  python="$(pyenv which python3.10 2>/dev/null || command -v python3.10 2>/dev/null || true)"
  if [ -z "$python" ]; then
    echo "deploy-check: Python 3.10 is needed for the validators (e.g. 'pyenv install 3.10.13')" >&2
    exit 2
  fi
  echo "$python"
}

# ensure_venv NAME SECTION...: .venv-deploy/NAME holds exactly the pins of the given sections, installed in
# that order (each later section without build isolation, so it builds with what the earlier ones brought).
ensure_venv() {
  local name="$1"; shift
  local venv="$TOOLS/$name" wanted sec log reqs
  wanted="$(for sec in "$@"; do echo "[$sec]"; section "$sec"; done | sha256sum | cut -d' ' -f1)"
  if [ -f "$venv/.pins" ] && [ "$(cat "$venv/.pins")" = "$wanted" ]; then return 0; fi
  log="$TOOLS/$name.log"
  mkdir -p "$TOOLS"
  rm -rf "$venv"
  "$(python310)" -m venv "$venv"
  local isolation=()
  for sec in "$@"; do
    reqs="$(mktemp)"
    section "$sec" >"$reqs"
    if ! "$venv/bin/python" -m pip install --quiet --no-input "${isolation[@]}" -r "$reqs" >"$log" 2>&1; then
      rm -f "$reqs"
      echo "deploy-check: could not install the [$sec] pins of $PINS into $venv:" >&2
      grep -v "is ignored: it is neither a file nor a directory" "$log" | tail -25 | sed 's/^/    /' >&2
      exit 2
    fi
    rm -f "$reqs"
    isolation=(--no-build-isolation)
  done
  echo "$wanted" >"$venv/.pins"
  rm -f "$log"
}

ensure_venv compose compose-build compose
ensure_venv kube kube

# --- Compose -----------------------------------------------------------------------------------------------
# An empty env file stands in for a local deploy/compose/.env, so only the values given below count.
no_env="$(mktemp)"
trap 'rm -f "$no_env"' EXIT
compose() { # compose VAR=value...: docker-compose config -q with exactly these secrets set
  env -u POSTGRES_PASSWORD -u ACTION_SERVER_TOKEN -u SENDER_ID_SECRET -u CUSTOMER_TOKEN_SECRET "$@" \
    "$TOOLS/compose/bin/docker-compose" --project-directory "$(dirname "$COMPOSE_FILE")" --env-file "$no_env" \
    -f "$COMPOSE_FILE" config -q 2>&1
}
dummies=()
for name in "${REQUIRED_SECRETS[@]}"; do dummies+=("$name=dummy-$name"); done
if ! out="$(compose "${dummies[@]}")"; then
  problem "$COMPOSE_FILE is not a valid Compose file:" "$out"
else
  for name in "${REQUIRED_SECRETS[@]}"; do
    others=()
    for pair in "${dummies[@]}"; do [ "${pair%%=*}" = "$name" ] || others+=("$pair"); done
    if out="$(compose "${others[@]}")"; then
      problem "$COMPOSE_FILE accepts an unset $name: write it as \${$name:?set $name}"
    elif ! grep -q "$name" <<<"$out"; then
      problem "$COMPOSE_FILE without $name fails, but not because of $name:" "$out"
    fi
  done
fi

if ! out="$("$TOOLS/kube/bin/hadolint" --no-color deploy/compose/Dockerfile 2>&1)"; then
  problem "deploy/compose/Dockerfile: hadolint findings:" "$out"
fi

if command -v haproxy >/dev/null 2>&1; then
  if ! out="$(haproxy -c -f deploy/compose/haproxy.cfg 2>&1)"; then
    problem "deploy/compose/haproxy.cfg is not a valid HAProxy configuration:" "$out"
  fi
fi

# --- Kubernetes --------------------------------------------------------------------------------------------
manifests=()
for file in "$K8S_DIR"/*.yaml "$K8S_DIR"/*.yml; do
  [ -e "$file" ] || continue
  [ "$(basename "$file")" = kustomization.yaml ] || manifests+=("$file")
done
if [ ${#manifests[@]} -eq 0 ]; then
  problem "no Kubernetes manifests in $K8S_DIR"
elif ! out="$("$TOOLS/kube/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "${manifests[@]}" 2>&1)" \
     || [ -n "$out" ]; then
  # --quiet prints nothing for a valid file; a warning (e.g. an unknown kind) counts as a finding too.
  problem "Kubernetes manifests do not validate against $K8S_VERSION (--strict):" "$out"
fi

if ! out="$("$TOOLS/kube/bin/python" - "$K8S_DIR" "${manifests[@]}" 2>&1 <<'PY'
import os, sys
import yaml
folder, files = sys.argv[1], {os.path.basename(f) for f in sys.argv[2:]}
with open(os.path.join(folder, "kustomization.yaml"), encoding="utf-8") as handle:
    listed = set(yaml.safe_load(handle).get("resources") or [])
for name in sorted(files - listed):
    print(f"{name} is not in kustomization.yaml's resources")
for name in sorted(listed - files):
    print(f"kustomization.yaml lists {name}, which does not exist")
sys.exit(1 if files != listed else 0)
PY
)"; then
  problem "$K8S_DIR/kustomization.yaml does not match the manifests:" "$out"
fi

if [ "$problems" -gt 0 ]; then
  echo "deploy-check: $problems problem(s) found" >&2
  exit 1
fi
