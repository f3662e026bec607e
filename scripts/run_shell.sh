#!/usr/bin/env bash
# `make run`: action server in the background, then an interactive chat in the terminal.
# The action server is stopped when the chat ends (Ctrl-D, /stop or Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
start_action_server  # exports ACTION_SERVER_TOKEN (random per start when unset), which endpoints.yml passes on
echo "Chat with the shop assistant. Type /stop to leave."
# `rasa shell` talks to itself over Rasa's stock REST channel on port 5005: listen on loopback only.
"${RASA_CLI[@]}" shell --endpoints "$(write_endpoints)" --interface 127.0.0.1 --log-file var/log/rasa.log
