#!/usr/bin/env bash
# `make cluster`: the assistant as N Rasa replicas and M action servers behind HAProxy, on one machine.
#
#   scripts/cluster.sh start            fresh databases, M action servers, N Rasa replicas, HAProxy; waits until
#                                       every part is ready and prints where it listens
#   scripts/cluster.sh stop             stops HAProxy, the replicas and the action servers (TERM, then KILL)
#   scripts/cluster.sh status           each process, its port and health, and HAProxy's view of the servers
#   scripts/cluster.sh kill-replica I   SIGKILL Rasa replica I (1..N) and its process group, as a crash would
#   scripts/cluster.sh start-replica I  starts Rasa replica I again and waits until it is ready (--no-wait: not)
#   scripts/cluster.sh env              prints the cluster's settings (var/cluster/cluster.env), no secrets
#
# Every replica is stateless apart from the shared stores, which the replicas find through endpoints.yml and
# these variables: DATABASE_URL (the shop: PostgreSQL database $CLUSTER_DB), TRACKER_STORE_URL (conversations:
# database ${CLUSTER_DB}_tracker), REDIS_URL (lock store, idempotency keys: Redis database $CLUSTER_REDIS_DB,
# flushed at start). `start` makes both PostgreSQL databases anew (DROP ... WITH (FORCE)) and seeds the shop
# one as `make db` does; the catalog snapshot goes to var/cluster/catalog/snapshot.json (CATALOG_SNAPSHOT).
#
# Settings (environment; `start` records them in var/cluster/cluster.env, the other commands read them there):
#   RASA_REPLICAS (2), ACTIONS_REPLICAS (2), CLUSTER_PORT (8080: the replicas' frontend, on CLUSTER_BIND,
#   default 127.0.0.1), CLUSTER_ACTIONS_PORT (8081: the action servers' frontend, loopback), CLUSTER_STATS_PORT
#   (8404: HAProxy's stats page), CLUSTER_RASA_BASE_PORT (5100: replica I listens on base+I),
#   CLUSTER_ACTIONS_BASE_PORT (5150), CLUSTER_PG (postgresql+psycopg2://postgres@127.0.0.1:5432: the server),
#   CLUSTER_DB (shop_cluster), CLUSTER_REDIS (redis://127.0.0.1:6379), CLUSTER_REDIS_DB (5),
#   CLUSTER_CREDENTIALS (credentials.yml), CLUSTER_MODEL (newest models/*.tar.gz), CLUSTER_START_TIMEOUT_S (900),
#   CLUSTER_GB_PER_REPLICA (3.2: memory a replica needs; start refuses when MemAvailable is short, unless
#   CLUSTER_IGNORE_MEMORY=1).
# Secrets: ACTION_SERVER_TOKEN, SENDER_ID_SECRET, CUSTOMER_TOKEN_SECRET (and CHAT_API_TOKEN if set) are taken
# from the environment or made at start, the same for every replica (a web conversation id signed by one
# replica is valid on the others), and kept in var/cluster/secrets.env (mode 600) for start-replica.
#
# Client addresses: HAProxy sets X-Forwarded-For to the client's address and the replicas trust one proxy
# (SANIC_PROXIES_COUNT=1), so the REST channel's per-address rate limits of credentials.yml apply per customer,
# not to HAProxy. The replicas listen on loopback only; a local client that bypasses HAProxy could name any
# address in X-Forwarded-For.
#
# Processes run in their own sessions (setsid): they outlive this script and the terminal; pid files and logs
# are in var/cluster/ (rasa-I.log, actions-I.log, haproxy.log).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}" TF_ENABLE_ONEDNN_OPTS="${TF_ENABLE_ONEDNN_OPTS:-0}"
export RASA_TELEMETRY_ENABLED="${RASA_TELEMETRY_ENABLED:-false}" HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
export TRANSFORMERS_OFFLINE="${TRANSFORMERS_OFFLINE:-1}" TOKENIZERS_PARALLELISM="${TOKENIZERS_PARALLELISM:-false}"
export SQLALCHEMY_SILENCE_UBER_WARNING="${SQLALCHEMY_SILENCE_UBER_WARNING:-1}"
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore::DeprecationWarning,ignore::FutureWarning,ignore::UserWarning}"

CLUSTER_DIR="${CLUSTER_DIR:-var/cluster}"
STATE="$CLUSTER_DIR/cluster.env"
SECRETS="$CLUSTER_DIR/secrets.env"
READY_PATH=/webhooks/multimodal/ready
LIVE_PATH=/webhooks/multimodal/

die() { echo "cluster: error: $*" >&2; exit 1; }
note() { echo "cluster: $*"; }

defaults() {
  RASA_REPLICAS="${RASA_REPLICAS:-2}"
  ACTIONS_REPLICAS="${ACTIONS_REPLICAS:-2}"
  CLUSTER_BIND="${CLUSTER_BIND:-127.0.0.1}"
  CLUSTER_PORT="${CLUSTER_PORT:-8080}"
  CLUSTER_ACTIONS_PORT="${CLUSTER_ACTIONS_PORT:-8081}"
  CLUSTER_STATS_PORT="${CLUSTER_STATS_PORT:-8404}"
  CLUSTER_RASA_BASE_PORT="${CLUSTER_RASA_BASE_PORT:-5100}"
  CLUSTER_ACTIONS_BASE_PORT="${CLUSTER_ACTIONS_BASE_PORT:-5150}"
  CLUSTER_PG="${CLUSTER_PG:-postgresql+psycopg2://postgres@127.0.0.1:5432}"
  CLUSTER_DB="${CLUSTER_DB:-shop_cluster}"
  CLUSTER_REDIS="${CLUSTER_REDIS:-redis://127.0.0.1:6379}"
  CLUSTER_REDIS_DB="${CLUSTER_REDIS_DB:-5}"
  CLUSTER_CREDENTIALS="${CLUSTER_CREDENTIALS:-credentials.yml}"
  CLUSTER_START_TIMEOUT_S="${CLUSTER_START_TIMEOUT_S:-900}"
  CLUSTER_GB_PER_REPLICA="${CLUSTER_GB_PER_REPLICA:-3.2}"
  for name in RASA_REPLICAS ACTIONS_REPLICAS CLUSTER_PORT CLUSTER_ACTIONS_PORT CLUSTER_STATS_PORT \
              CLUSTER_RASA_BASE_PORT CLUSTER_ACTIONS_BASE_PORT CLUSTER_REDIS_DB CLUSTER_START_TIMEOUT_S; do
    [[ "${!name}" =~ ^[0-9]+$ ]] || die "$name must be a whole number, got '${!name}'"
  done
  [ "$RASA_REPLICAS" -ge 1 ] && [ "$RASA_REPLICAS" -le 16 ] || die "RASA_REPLICAS must be 1..16"
  [ "$ACTIONS_REPLICAS" -ge 1 ] && [ "$ACTIONS_REPLICAS" -le 16 ] || die "ACTIONS_REPLICAS must be 1..16"
  [[ "$CLUSTER_DB" =~ ^[a-z_][a-z0-9_]{0,40}$ ]] || die "CLUSTER_DB must be a plain lower-case name"
}

# The state of a started cluster (settings + secrets); the commands other than start need it.
load_state() {
  [ -f "$STATE" ] || die "no cluster state in $STATE: start one with 'make cluster'"
  # shellcheck disable=SC1090
  source "$STATE"
  # shellcheck disable=SC1090
  [ -f "$SECRETS" ] && source "$SECRETS"
  export ACTION_SERVER_TOKEN SENDER_ID_SECRET CUSTOMER_TOKEN_SECRET
}

# Pid files hold "PID START": the process's start time (clock ticks since boot, /proc/PID/stat field 22), so
# that a pid the system has given to another process since is never taken for ours (nor signalled).
start_ticks() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  stat="${stat##*) }"
  # shellcheck disable=SC2086
  set -- $stat
  echo "${20:-}"
}
pid_of() {
  local pid start
  [ -f "$CLUSTER_DIR/$1.pid" ] || return 0
  read -r pid start <"$CLUSTER_DIR/$1.pid" || true
  if [ -n "$pid" ] && [ -n "${start:-}" ] && [ "$(start_ticks "$pid")" = "$start" ]; then echo "$pid"; fi
}
# alive NAME: NAME's process exists and has not exited. A killed process is a zombie ("Z") until its parent
# reaps it; while other threads are still being torn down it shows "Zl" and still holds its sockets, so only a
# zombie without "l" counts as gone.
alive() {
  local pid stat
  pid="$(pid_of "$1")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  stat="$(ps -o stat= -p "$pid" 2>/dev/null | tr -d ' ')"
  [ -n "$stat" ] && ! { [ "${stat:0:1}" = Z ] && [[ "$stat" != *l* ]]; }
}
http_code() { curl -s -o /dev/null -m "${2:-3}" -w '%{http_code}' "$1" 2>/dev/null || true; }
rasa_port() { echo $((CLUSTER_RASA_BASE_PORT + $1)); }
actions_port() { echo $((CLUSTER_ACTIONS_BASE_PORT + $1)); }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# launch NAME CMD...: CMD in a session of its own (setsid: its own process group, detached from the terminal),
# output appended to var/cluster/NAME.log, pid in var/cluster/NAME.pid.
launch() {
  local name="$1"; shift
  echo "=== $(date -u +%FT%TZ) start: $*" >>"$CLUSTER_DIR/$name.log"
  setsid "$@" >>"$CLUSTER_DIR/$name.log" 2>&1 </dev/null &
  echo "$! $(start_ticks $!)" >"$CLUSTER_DIR/$name.pid"
}

# terminate NAME [SIGNAL]: the process group of NAME's pid; with TERM it waits up to 20 s, then KILLs.
terminate() {
  local name="$1" signal="${2:-TERM}" pid
  pid="$(pid_of "$name")"
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then rm -f "$CLUSTER_DIR/$name.pid"; return 0; fi
  kill "-$signal" -- "-$pid" 2>/dev/null || kill "-$signal" "$pid" 2>/dev/null || true
  if [ "$signal" = TERM ]; then
    for _ in $(seq 1 40); do alive "$name" || break; sleep 0.5; done
    if alive "$name"; then
      note "$name did not stop within 20 s: KILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  for _ in $(seq 1 100); do alive "$name" || break; sleep 0.1; done
  rm -f "$CLUSTER_DIR/$name.pid"
}

# ---- start ---------------------------------------------------------------------------------------------
check_memory() {
  [ "${CLUSTER_IGNORE_MEMORY:-0}" = 1 ] && return 0
  local available_kib need_kib
  available_kib="$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)"
  need_kib="$(awk -v n="$RASA_REPLICAS" -v gb="$CLUSTER_GB_PER_REPLICA" 'BEGIN {printf "%d", (n * gb + 1) * 1048576}')"
  if [ "$available_kib" -lt "$need_kib" ]; then
    die "$RASA_REPLICAS replicas need about $((need_kib / 1048576)) GiB (CLUSTER_GB_PER_REPLICA=$CLUSTER_GB_PER_REPLICA" \
        "each + 1); $((available_kib / 1048576)) GiB available. Fewer RASA_REPLICAS, or CLUSTER_IGNORE_MEMORY=1"
  fi
}

check_ports() {
  local port i
  local ports=("$CLUSTER_PORT" "$CLUSTER_ACTIONS_PORT" "$CLUSTER_STATS_PORT")
  for i in $(seq 1 "$RASA_REPLICAS"); do ports+=("$(rasa_port "$i")"); done
  for i in $(seq 1 "$ACTIONS_REPLICAS"); do ports+=("$(actions_port "$i")"); done
  for port in "${ports[@]}"; do
    if port_busy "$port"; then die "port $port is in use (another cluster, make serve?); see CLUSTER_*PORT"; fi
  done
}

make_secrets() {
  local name
  umask 077
  : >"$SECRETS"
  for name in ACTION_SERVER_TOKEN SENDER_ID_SECRET CUSTOMER_TOKEN_SECRET; do
    if [ -z "${!name:-}" ]; then
      printf -v "$name" '%s' "$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))')"
    fi
    printf '%s=%q\n' "$name" "${!name}" >>"$SECRETS"
    export "${name?}"
  done
  if [ -n "${CHAT_API_TOKEN:-}" ]; then printf 'CHAT_API_TOKEN=%q\n' "$CHAT_API_TOKEN" >>"$SECRETS"; fi
  umask 022
}

write_state() {
  local name
  : >"$STATE"
  for name in RASA_REPLICAS ACTIONS_REPLICAS CLUSTER_BIND CLUSTER_PORT CLUSTER_ACTIONS_PORT CLUSTER_STATS_PORT \
              CLUSTER_RASA_BASE_PORT CLUSTER_ACTIONS_BASE_PORT CLUSTER_PG CLUSTER_DB CLUSTER_REDIS \
              CLUSTER_REDIS_DB CLUSTER_START_TIMEOUT_S CLUSTER_MODEL DATABASE_URL TRACKER_STORE_URL REDIS_URL \
              CATALOG_SNAPSHOT HEALTH_PATH CLUSTER_STARTED_AT; do
    printf '%s=%q\n' "$name" "${!name:-}" >>"$STATE"
  done
}

# Drops and creates the shop and tracker databases, flushes the cluster's Redis database.
fresh_stores() {
  "$VENV/bin/python" - "$CLUSTER_PG" "$CLUSTER_DB" "${CLUSTER_DB}_tracker" "$REDIS_URL" <<'PY'
import sys

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

server, names, redis_url = sys.argv[1], sys.argv[2:4], sys.argv[4]
url = make_url(server).set(database="postgres")
engine = create_engine(url, isolation_level="AUTOCOMMIT", future=True)
with engine.connect() as connection:
    for name in names:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
engine.dispose()
redis.Redis.from_url(redis_url).flushdb()
print(f"cluster: fresh databases {', '.join(names)} on {url.host}:{url.port or 5432}; flushed {redis_url}")
PY
}

# var/cluster/endpoints.yml: endpoints.yml with the action servers' frontend as action_endpoint. Should
# endpoints.yml name no tracker or lock store (the in-memory defaults, which N replicas cannot share), Rasa's
# stock SQL tracker store on TRACKER_STORE_URL and Redis lock store on REDIS_URL are added, with a warning.
write_cluster_endpoints() {
  "$VENV/bin/python" - "http://127.0.0.1:${CLUSTER_ACTIONS_PORT}/webhook" "$CLUSTER_DIR/endpoints.yml" \
    "$TRACKER_STORE_URL" "$REDIS_URL" <<'PY'
import sys

import yaml
from sqlalchemy.engine import make_url

action_url, out, tracker_url, redis_url = sys.argv[1:5]
with open("endpoints.yml", encoding="utf-8") as handle:
    endpoints = yaml.safe_load(handle) or {}
endpoints.setdefault("action_endpoint", {})["url"] = action_url
if not endpoints.get("tracker_store"):
    url = make_url(tracker_url)
    endpoints["tracker_store"] = {
        "type": "SQL", "dialect": url.get_backend_name(), "url": url.host, "port": url.port or 5432,
        "db": url.database, "username": url.username, "password": url.password or "",
    }
    print("cluster: warning: endpoints.yml names no tracker_store; using Rasa's stock SQL tracker store")
if not endpoints.get("lock_store"):
    from urllib.parse import urlsplit

    parts = urlsplit(redis_url)
    endpoints["lock_store"] = {
        "type": "redis", "url": parts.hostname, "port": parts.port or 6379, "db": int(parts.path.strip("/") or 0),
    }
    print("cluster: warning: endpoints.yml names no lock_store; using Rasa's stock Redis lock store")
with open(out, "w", encoding="utf-8") as handle:
    yaml.safe_dump(endpoints, handle, sort_keys=False)
PY
  # Rasa expands ${...} only in plain scalars: the token must not have been quoted on the way.
  grep -q 'token: \${ACTION_SERVER_TOKEN}$' "$CLUSTER_DIR/endpoints.yml" \
    || die "$CLUSTER_DIR/endpoints.yml has no plain 'token: \${ACTION_SERVER_TOKEN}'"
}

# render_haproxy: deploy/haproxy/haproxy.cfg.template → var/cluster/haproxy.cfg, checked with haproxy -c.
render_haproxy() {
  local rasa_servers="" action_servers="" i
  for i in $(seq 1 "$RASA_REPLICAS"); do
    rasa_servers+="    server rasa$i 127.0.0.1:$(rasa_port "$i") check"$'\n'
  done
  for i in $(seq 1 "$ACTIONS_REPLICAS"); do
    action_servers+="    server actions$i 127.0.0.1:$(actions_port "$i") check"$'\n'
  done
  RASA_SERVERS="${rasa_servers%$'\n'}" ACTION_SERVERS="${action_servers%$'\n'}" BIND_ADDRESS="$CLUSTER_BIND" \
  ACTIONS_FRONTEND_PORT="$CLUSTER_ACTIONS_PORT" STATS_PORT="$CLUSTER_STATS_PORT" CLUSTER_PORT="$CLUSTER_PORT" \
  HEALTH_PATH="$HEALTH_PATH" MAX_CONNECTIONS="${CLUSTER_MAX_CONNECTIONS:-2048}" \
  CLIENT_TIMEOUT="${CLUSTER_CLIENT_TIMEOUT:-120s}" SERVER_TIMEOUT="${CLUSTER_SERVER_TIMEOUT:-90s}" \
  CHECK_INTERVAL="${CLUSTER_CHECK_INTERVAL:-2s}" \
  "$VENV/bin/python" - deploy/haproxy/haproxy.cfg.template "$CLUSTER_DIR/haproxy.cfg" <<'PY'
import os
import re
import sys

template, out = sys.argv[1:3]
text = open(template, encoding="utf-8").read()
missing = sorted({name for name in re.findall(r"\$\{([A-Z_]+)\}", text) if name not in os.environ})
if missing:
    sys.exit(f"cluster: error: the HAProxy template names unknown settings: {', '.join(missing)}")
rendered = re.sub(r"\$\{([A-Z_]+)\}", lambda match: os.environ[match.group(1)], text)
open(out, "w", encoding="utf-8").write(rendered)
PY
  haproxy -c -q -f "$CLUSTER_DIR/haproxy.cfg" || die "HAProxy refused $CLUSTER_DIR/haproxy.cfg"
}

start_action_server_i() {
  local i="$1"
  DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" \
    launch "actions-$i" "$VENV/bin/python" -m actions.server --host 127.0.0.1 --port "$(actions_port "$i")"
}

start_rasa_i() {
  local i="$1"
  DATABASE_URL="$DATABASE_URL" TRACKER_STORE_URL="$TRACKER_STORE_URL" REDIS_URL="$REDIS_URL" \
  CATALOG_SNAPSHOT="$CATALOG_SNAPSHOT" SANIC_PROXIES_COUNT=1 \
    launch "rasa-$i" "${RASA_CLI[@]}" run --endpoints "$CLUSTER_DIR/endpoints.yml" \
      --credentials "$CLUSTER_DIR/credentials.yml" --port "$(rasa_port "$i")" --interface 127.0.0.1 \
      --model "$CLUSTER_MODEL"
}

# wait_ready NAME URL: until URL answers 200 (max CLUSTER_START_TIMEOUT_S); fails when NAME's process exits.
wait_ready() {
  local name="$1" url="$2" deadline=$((SECONDS + CLUSTER_START_TIMEOUT_S))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ "$(http_code "$url")" = 200 ] && return 0
    if ! alive "$name"; then
      echo "cluster: error: $name exited; the end of $CLUSTER_DIR/$name.log:" >&2
      tail -25 "$CLUSTER_DIR/$name.log" >&2
      return 1
    fi
    sleep 1
  done
  echo "cluster: error: $name did not answer 200 on $url within ${CLUSTER_START_TIMEOUT_S} s" >&2
  return 1
}

# The readiness route when the replicas have it (200 or 503), else the channel's liveness route (the model is
# loaded before Rasa listens, so an answer there means the model is in).
detect_health_path() {
  local port code
  port="$(rasa_port 1)"
  code="$(http_code "http://127.0.0.1:${port}${READY_PATH}")"
  if [ "$code" = 404 ]; then
    note "warning: the replicas have no ${READY_PATH} (readiness) route; HAProxy checks ${LIVE_PATH} instead"
    HEALTH_PATH="$LIVE_PATH"
  else
    HEALTH_PATH="$READY_PATH"
  fi
}

wait_replica_ready() {
  local i="$1" port deadline code
  port="$(rasa_port "$i")"
  deadline=$((SECONDS + CLUSTER_START_TIMEOUT_S))
  # Until the port answers at all (the model loads first), then until the health path says 200.
  while [ "$SECONDS" -lt "$deadline" ]; do
    code="$(http_code "http://127.0.0.1:${port}${LIVE_PATH}")"
    [ "$code" = 200 ] && break
    if ! alive "rasa-$i"; then
      echo "cluster: error: rasa-$i exited; the end of $CLUSTER_DIR/rasa-$i.log:" >&2
      tail -25 "$CLUSTER_DIR/rasa-$i.log" >&2
      return 1
    fi
    sleep 1
  done
  [ "$code" = 200 ] || { echo "cluster: error: rasa-$i not up within ${CLUSTER_START_TIMEOUT_S} s" >&2; return 1; }
  [ -n "${HEALTH_PATH:-}" ] || detect_health_path
  wait_ready "rasa-$i" "http://127.0.0.1:${port}${HEALTH_PATH}"
}

cmd_start() {
  defaults
  mkdir -p "$CLUSTER_DIR"
  local i running=0
  for name in haproxy $(seq -f 'rasa-%g' 1 16) $(seq -f 'actions-%g' 1 16); do
    if alive "$name"; then running=1; fi
  done
  [ "$running" = 0 ] || die "a cluster is running (scripts/cluster.sh status); stop it first: make cluster-stop"
  WITH_CLUSTER=1 bash scripts/install_system_packages.sh
  command -v haproxy >/dev/null 2>&1 || die "haproxy is not installed"
  CLUSTER_MODEL="${CLUSTER_MODEL:-$(ls -t models/*.tar.gz 2>/dev/null | head -1 || true)}"
  [ -n "$CLUSTER_MODEL" ] && [ -f "$CLUSTER_MODEL" ] || die "no trained model in models/: run make train"
  check_memory
  check_ports
  rm -f "$CLUSTER_DIR"/*.pid

  DATABASE_URL="${CLUSTER_PG%/}/${CLUSTER_DB}"
  TRACKER_STORE_URL="${CLUSTER_PG%/}/${CLUSTER_DB}_tracker"
  REDIS_URL="${CLUSTER_REDIS%/}/${CLUSTER_REDIS_DB}"
  CATALOG_SNAPSHOT="$CLUSTER_DIR/catalog/snapshot.json"
  export DATABASE_URL TRACKER_STORE_URL REDIS_URL CATALOG_SNAPSHOT
  fresh_stores
  "$VENV/bin/python" -m shop.seed
  mkdir -p "$CLUSTER_DIR/catalog"
  "$VENV/bin/python" -m shop.catalog_snapshot --out "$CATALOG_SNAPSHOT"
  if [ -f var/catalog/snapshot.json ] && ! cmp -s var/catalog/snapshot.json "$CATALOG_SNAPSHOT"; then
    note "warning: the cluster's catalog snapshot differs from var/catalog/snapshot.json (the model's)"
  fi
  make_secrets
  cp "$CLUSTER_CREDENTIALS" "$CLUSTER_DIR/credentials.yml"
  write_cluster_endpoints

  note "starting $ACTIONS_REPLICAS action server(s) and $RASA_REPLICAS Rasa replica(s) (model $CLUSTER_MODEL)"
  CLUSTER_UP=0
  trap '[ "$CLUSTER_UP" = 1 ] || { note "start failed: stopping what was started"; cmd_stop_quiet; }' EXIT
  for i in $(seq 1 "$ACTIONS_REPLICAS"); do start_action_server_i "$i"; done
  for i in $(seq 1 "$RASA_REPLICAS"); do start_rasa_i "$i"; done
  for i in $(seq 1 "$ACTIONS_REPLICAS"); do
    wait_ready "actions-$i" "http://127.0.0.1:$(actions_port "$i")/health" || exit 1
  done
  HEALTH_PATH=""
  for i in $(seq 1 "$RASA_REPLICAS"); do
    wait_replica_ready "$i" || exit 1
    note "rasa-$i ready on 127.0.0.1:$(rasa_port "$i")"
  done
  render_haproxy
  launch haproxy haproxy -db -f "$CLUSTER_DIR/haproxy.cfg"
  CLUSTER_STARTED_AT="$(date -u +%FT%TZ)"
  write_state
  wait_ready haproxy "http://127.0.0.1:${CLUSTER_PORT}${HEALTH_PATH}" || exit 1
  wait_ready haproxy "http://127.0.0.1:${CLUSTER_ACTIONS_PORT}/health" || exit 1
  CLUSTER_UP=1
  local host="$CLUSTER_BIND"
  case "$host" in 0.0.0.0|::) host=127.0.0.1 ;; esac
  cat <<EOF
cluster: ready: $RASA_REPLICAS Rasa replica(s) and $ACTIONS_REPLICAS action server(s) behind HAProxy
  customers (REST channel, web chat):  http://$host:$CLUSTER_PORT/webhooks/multimodal/  (chat: .../chat)
  action servers (for the replicas):   http://127.0.0.1:$CLUSTER_ACTIONS_PORT/webhook
  HAProxy stats:                       http://127.0.0.1:$CLUSTER_STATS_PORT/
  shop database:    $DATABASE_URL
  tracker store:    $TRACKER_STORE_URL
  Redis:            $REDIS_URL
  health check:     $HEALTH_PATH    logs and pids: $CLUSTER_DIR/
  stop with: make cluster-stop
EOF
}

# ---- stop, status, replicas ----------------------------------------------------------------------------
cmd_stop_quiet() {
  local name
  terminate haproxy
  for name in $(seq -f 'rasa-%g' 1 16); do terminate "$name"; done
  for name in $(seq -f 'actions-%g' 1 16); do terminate "$name"; done
}

cmd_stop() {
  mkdir -p "$CLUSTER_DIR"
  cmd_stop_quiet
  note "stopped (state, logs and databases kept; the next start makes the databases anew)"
}

cmd_status() {
  load_state
  local i code all=0 port
  printf '%-10s %-8s %-6s %-22s %s\n' PROCESS PID ALIVE ADDRESS "HEALTH (HTTP code)"
  row() {  # name port path
    local name="$1" port="$2" path="$3" pid alive=no code="-"
    pid="$(pid_of "$name")"
    if alive "$name"; then alive=yes; code="$(http_code "http://127.0.0.1:${port}${path}")"; fi
    [ "$alive" = yes ] && [ "$code" = 200 ] || all=1
    printf '%-10s %-8s %-6s %-22s %s\n' "$name" "${pid:--}" "$alive" "127.0.0.1:$port" "$path $code"
  }
  row haproxy "$CLUSTER_PORT" "$HEALTH_PATH"
  for i in $(seq 1 "$RASA_REPLICAS"); do row "rasa-$i" "$(rasa_port "$i")" "$HEALTH_PATH"; done
  for i in $(seq 1 "$ACTIONS_REPLICAS"); do row "actions-$i" "$(actions_port "$i")" /health; done
  if alive haproxy; then
    echo "HAProxy's view (backend/server status):"
    curl -s -m 3 "http://127.0.0.1:${CLUSTER_STATS_PORT}/;csv" \
      | awk -F, 'NR > 1 && $2 != "FRONTEND" && $2 != "BACKEND" && $1 != "stats" {printf "  %s/%s %s\n", $1, $2, $18}'
  fi
  return "$all"
}

replica_index() {
  [[ "${1:-}" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$RASA_REPLICAS" ] \
    || die "replica index must be 1..$RASA_REPLICAS, got '${1:-}'"
}

cmd_kill_replica() {
  load_state
  replica_index "${1:-}"
  alive "rasa-$1" || die "rasa-$1 is not running"
  echo "cluster: rasa-$1 SIGKILL at epoch $(date +%s.%N)"
  terminate "rasa-$1" KILL
  note "rasa-$1 killed (SIGKILL) at $(date -u +%FT%T.%3NZ)"
}

cmd_start_replica() {
  load_state
  replica_index "${1:-}"
  alive "rasa-$1" && die "rasa-$1 is running (pid $(pid_of "rasa-$1"))"
  for _ in $(seq 1 50); do port_busy "$(rasa_port "$1")" || break; sleep 0.2; done
  port_busy "$(rasa_port "$1")" && die "port $(rasa_port "$1") is in use"
  start_rasa_i "$1"
  note "rasa-$1 started (pid $(pid_of "rasa-$1")) at $(date -u +%FT%T.%3NZ)"
  if [ "${2:-}" != --no-wait ]; then
    wait_replica_ready "$1" || { terminate "rasa-$1"; exit 1; }
    note "rasa-$1 ready at $(date -u +%FT%T.%3NZ)"
  fi
}

main() {
  case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    kill-replica) cmd_kill_replica "${2:-}" ;;
    start-replica) cmd_start_replica "${2:-}" "${3:-}" ;;
    env) load_state; cat "$STATE" ;;
    *) sed -n '2,10p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
  esac
}

# Sourced (the tests): the functions only.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
