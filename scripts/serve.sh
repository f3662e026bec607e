#!/usr/bin/env bash
# `make serve`: the action server and the retention purge (now, then daily) in the background, and Rasa's HTTP
# server (REST channel and the channels in credentials.yml) in the foreground on port ${RASA_PORT:-5005}; the
# background jobs stop with the server. Rasa's management API (--enable-api) is enabled only when
# RASA_AUTH_TOKEN is set, and then only with that token. Message understanding runs in the bounded worker pool
# (NLU_* settings, channels/worker_pool.py).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

stop_all() {
  stop_retention
  stop_action_server
}

start_action_server  # exports ACTION_SERVER_TOKEN (random per start when unset), which endpoints.yml passes on
trap stop_all EXIT
trap 'exit 130' INT TERM  # exit runs the EXIT trap, which stops the background jobs
start_retention
args=(run --endpoints "$(write_endpoints)" --credentials credentials.yml --port "${RASA_PORT:-5005}")
if [ -n "${RASA_CORS:-}" ]; then
  args+=(--cors "$RASA_CORS")
fi
if [ -n "${RASA_AUTH_TOKEN:-}" ]; then
  args+=(--enable-api --auth-token "$RASA_AUTH_TOKEN")
fi
"${RASA_CLI[@]}" "${args[@]}" --log-file var/log/rasa.log
