#!/usr/bin/env bash
# `make chat`: the action server and `rasa run` (the channels of credentials.yml) in the background, then the
# terminal client on the multimodal REST channel (text, /image, /voice). Both servers stop when the client ends.
# RASA_PORT (default 5005) and RASA_MODEL (default: the newest model in models/) can be set.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
RASA_PORT="${RASA_PORT:-5005}"
HEALTH_URL="http://127.0.0.1:${RASA_PORT}/webhooks/multimodal/"
RASA_PID=""

stop_rasa() {
  if [ -n "${RASA_PID:-}" ] && kill -0 "$RASA_PID" 2>/dev/null; then
    kill "$RASA_PID" 2>/dev/null || true
    wait "$RASA_PID" 2>/dev/null || true
  fi
  RASA_PID=""
}

stop_all() {
  stop_rasa
  stop_action_server
}

if curl -fsS "$HEALTH_URL" >/dev/null 2>&1; then
  echo "error: something already answers on port ${RASA_PORT}; stop it or set RASA_PORT" >&2
  exit 1
fi

start_action_server  # exports ACTION_SERVER_TOKEN (random per start when unset), which endpoints.yml passes on
trap stop_all EXIT
trap 'exit 130' INT TERM  # exit runs the EXIT trap, which stops both servers

ENDPOINTS="$(write_endpoints)"  # endpoints.yml with the action server on ACTIONS_PORT
args=(run --endpoints "$ENDPOINTS" --credentials credentials.yml --port "$RASA_PORT" --log-file var/log/rasa.log)
if [ -n "${RASA_MODEL:-}" ]; then
  args+=(--model "$RASA_MODEL")  # default: the newest model in models/
fi
"${RASA_CLI[@]}" "${args[@]}" >var/log/rasa-chat.log 2>&1 &
RASA_PID=$!
echo "Starting the assistant on port ${RASA_PORT} (loading the model takes a minute)..."
for _ in $(seq 1 600); do  # 300 s
  if curl -fsS "$HEALTH_URL" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$RASA_PID" 2>/dev/null; then
    echo "error: rasa run exited; see var/log/rasa-chat.log" >&2
    tail -20 var/log/rasa-chat.log >&2
    exit 1
  fi
  sleep 0.5
done
if ! curl -fsS "$HEALTH_URL" >/dev/null 2>&1; then
  echo "error: the assistant did not answer on port ${RASA_PORT} within 300 s; see var/log/rasa-chat.log" >&2
  exit 1
fi

"$VENV/bin/python" scripts/chat_client.py --url "http://127.0.0.1:${RASA_PORT}/webhooks/multimodal/webhook" "$@"
