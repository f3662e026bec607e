# Shared shell helpers for the run scripts. Source it; do not run it.
VENV="${VENV:-.venv}"
ACTIONS_PORT="${ACTIONS_PORT:-5055}"
mkdir -p var/log

# start_action_server: starts `rasa run actions` in the background and waits until /health answers (max 120 s).
start_action_server() {
  "$VENV/bin/rasa" run actions --actions actions --port "$ACTIONS_PORT" >var/log/actions.log 2>&1 &
  ACTIONS_PID=$!
  trap stop_action_server EXIT INT TERM
  for _ in $(seq 1 240); do
    if curl -fsS "http://127.0.0.1:${ACTIONS_PORT}/health" >/dev/null 2>&1; then return 0; fi
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
