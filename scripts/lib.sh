# Shared shell helpers for the run scripts. Source it; do not run it.
VENV="${VENV:-.venv}"
ACTIONS_PORT="${ACTIONS_PORT:-5055}"
export ACTIONS_PORT
mkdir -p var/log

# ensure_action_server_token: exports ACTION_SERVER_TOKEN, a random one for this start when it is unset.
# Rasa sends it to the action server (endpoints.yml: action_endpoint.token: ${ACTION_SERVER_TOKEN}), which
# refuses every call without it (actions/server.py).
ensure_action_server_token() {
  if [ -z "${ACTION_SERVER_TOKEN:-}" ]; then
    ACTION_SERVER_TOKEN="$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))')"
  fi
  export ACTION_SERVER_TOKEN
}

# action_server_health_url: where the action server answers /health (loopback when it listens on all interfaces).
action_server_health_url() {
  local host="${ACTIONS_HOST:-127.0.0.1}"
  case "$host" in 0.0.0.0|::|"[::]") host=127.0.0.1 ;; esac
  case "$host" in *:*) host="[${host#[}"; host="${host%]}]" ;; esac
  echo "http://${host}:${ACTIONS_PORT}/health"
}

# start_action_server: starts the action server (python -m actions.server: 127.0.0.1 unless ACTIONS_HOST says
# otherwise, token required) in the background and waits until /health answers (max 120 s).
start_action_server() {
  ensure_action_server_token
  "$VENV/bin/python" -m actions.server --port "$ACTIONS_PORT" >>var/log/actions.log 2>&1 &
  ACTIONS_PID=$!
  trap stop_action_server EXIT INT TERM
  local health
  health="$(action_server_health_url)"
  for _ in $(seq 1 240); do
    if curl -fsS "$health" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$ACTIONS_PID" 2>/dev/null; then
      echo "error: the action server exited; see var/log/actions.log" >&2; tail -20 var/log/actions.log >&2; return 1
    fi
    sleep 0.5
  done
  echo "error: the action server did not answer on port ${ACTIONS_PORT} within 120 s" >&2
  return 1
}

stop_action_server() {
  if [ -n "${ACTIONS_PID:-}" ] && kill -0 "$ACTIONS_PID" 2>/dev/null; then
    kill "$ACTIONS_PID" 2>/dev/null || true
    wait "$ACTIONS_PID" 2>/dev/null || true
  fi
  ACTIONS_PID=""
}

# start_retention: purges expired uploads and ticket transcripts now and then every 24 hours, in the background
# (scripts/purge.py; UPLOAD_RETENTION_DAYS, TRANSCRIPT_RETENTION_DAYS). Log: var/log/purge.log.
start_retention() {
  "$VENV/bin/python" scripts/purge.py --every-hours 24 >>var/log/purge.log 2>&1 &
  PURGE_PID=$!
}

stop_retention() {
  if [ -n "${PURGE_PID:-}" ] && kill -0 "$PURGE_PID" 2>/dev/null; then
    kill "$PURGE_PID" 2>/dev/null || true
    wait "$PURGE_PID" 2>/dev/null || true
  fi
  PURGE_PID=""
}

# write_endpoints: writes var/endpoints.yml, endpoints.yml with the action server's URL on ACTIONS_PORT (and
# ACTIONS_HOST; endpoints.yml itself names localhost:5055), and prints its path. The token entry stays the plain
# scalar ${ACTION_SERVER_TOKEN}, which Rasa expands when it reads the file.
write_endpoints() {
  local url
  url="$(action_server_health_url)"
  "$VENV/bin/python" - "${url%/health}/webhook" var/endpoints.yml <<'PY'
import sys, yaml
url, out = sys.argv[1], sys.argv[2]
with open("endpoints.yml", encoding="utf-8") as handle:
    endpoints = yaml.safe_load(handle) or {}
endpoints.setdefault("action_endpoint", {})["url"] = url
with open(out, "w", encoding="utf-8") as handle:
    yaml.safe_dump(endpoints, handle, sort_keys=False)
PY
  echo var/endpoints.yml
}

# RASA_CLI: Rasa's command line with the bounded worker pool for message understanding installed first
# (scripts/rasa_run.py; NLU_* settings). Use as "${RASA_CLI[@]}" <Rasa's arguments>.
RASA_CLI=("$VENV/bin/python" scripts/rasa_run.py)
