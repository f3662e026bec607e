"""Training data checks and the test stories, run with Rasa's own tools against the trained test model."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RASA = str(Path(sys.executable).with_name("rasa"))

# Intents that NLU components (or the worker pool, for messages it had no room for) set without the classifier;
# they have no text examples by design.
COMPONENT_INTENTS = {"send_image", "attachment_problem", "empty_message", "server_busy"}


@pytest.mark.integration
def test_rasa_data_validate_has_no_unexpected_warnings():
    result = subprocess.run(
        [RASA, "data", "validate", "--max-history", "5"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "No story structure conflicts found" in output, output[-4000:]
    rasa_warnings = [line for line in output.splitlines() if "UserWarning:" in line]
    unexpected = [
        line for line in rasa_warnings
        if not any(f"'{intent}' is listed in the domain file" in line for intent in COMPONENT_INTENTS)
        # responses uttered by custom actions (dispatcher.utter_message(response=...)) are not in stories
        and "is not used in any story or rule" not in line
    ]
    assert not unexpected, "\n".join(unexpected)


@pytest.mark.integration
@pytest.mark.slow
def test_test_stories_pass(test_model, tmp_path):
    result = subprocess.run(
        [RASA, "test", "core", "--model", str(test_model), "--stories", "tests/test_stories.yml",
         "--fail-on-prediction-errors", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )
    failed = tmp_path / "failed_test_stories.yml"
    details = failed.read_text() if failed.exists() else ""
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:] + "\n" + details[-4000:]
