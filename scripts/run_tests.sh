#!/usr/bin/env bash
# `make test`: data validation, one small-epoch training run, then the whole pytest suite
# (unit, integration against PostgreSQL when DATABASE_URL is set, real shipped weights, the trained bot and
# `rasa test core` on tests/test_stories.yml).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
mkdir -p var/log

echo "== rasa data validate"
"$VENV/bin/rasa" data validate --max-history 5 >var/log/validate.log 2>&1 || {
  cat var/log/validate.log; echo "rasa data validate failed" >&2; exit 1; }
echo "ok"

echo "== training the test model (config.yml, epochs capped at ${TEST_MAX_EPOCHS:-40})"
"$VENV/bin/python" scripts/train_if_changed.py --max-epochs "${TEST_MAX_EPOCHS:-40}" --out var/test-models --name test \
  >var/log/train-test.log 2>&1 || { tail -40 var/log/train-test.log; exit 1; }
TEST_MODEL="$(ls -t var/test-models/test-*.tar.gz | head -1)"
export TEST_MODEL
echo "ok: $TEST_MODEL"

echo "== pytest"
exec "$VENV/bin/python" -m pytest tests -p no:cacheprovider --durations=15 "$@"
