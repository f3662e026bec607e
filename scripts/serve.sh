#!/usr/bin/env bash
# `make serve`: the action server in the background and Rasa's HTTP server (REST channel and the channels in
# credentials.yml) in the foreground on port ${RASA_PORT:-5005}. Rasa's management API (--enable-api) is enabled
# only when RASA_AUTH_TOKEN is set, and then only with that token.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
start_action_server
args=(run --endpoints endpoints.yml --credentials credentials.yml --port "${RASA_PORT:-5005}")
if [ -n "${RASA_CORS:-}" ]; then
  args+=(--cors "$RASA_CORS")
fi
if [ -n "${RASA_AUTH_TOKEN:-}" ]; then
  args+=(--enable-api --auth-token "$RASA_AUTH_TOKEN")
fi
"$VENV/bin/rasa" "${args[@]}" --log-file var/log/rasa.log
