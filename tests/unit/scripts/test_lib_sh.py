"""Tests for scripts/lib.sh's write_endpoints: the endpoints file that make run/serve/chat hand Rasa, as Rasa
reads it (the action server's URL on ACTIONS_PORT, the token from ACTION_SERVER_TOKEN)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def write_endpoints(workdir: Path, **environ: str) -> Path:
    """Runs write_endpoints in ``workdir`` (holding a copy of endpoints.yml); returns the file it wrote."""
    shutil.copy(ROOT / "endpoints.yml", workdir / "endpoints.yml")
    env = {key: value for key, value in os.environ.items() if key not in ("ACTIONS_HOST", "ACTIONS_PORT")}
    env.update(VENV=str(Path(sys.executable).parents[1]), **environ)
    result = subprocess.run(
        ["bash", "-c", f"source '{ROOT / 'scripts' / 'lib.sh'}' && write_endpoints"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=120, check=True,
    )
    return workdir / result.stdout.strip()


@pytest.mark.parametrize(
    "environ, url",
    [
        ({}, "http://127.0.0.1:5055/webhook"),
        ({"ACTIONS_PORT": "5155"}, "http://127.0.0.1:5155/webhook"),
        ({"ACTIONS_PORT": "5155", "ACTIONS_HOST": "0.0.0.0"}, "http://127.0.0.1:5155/webhook"),
        ({"ACTIONS_PORT": "6000", "ACTIONS_HOST": "10.1.2.3"}, "http://10.1.2.3:6000/webhook"),
    ],
)
def test_rasa_reads_the_action_servers_port_and_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environ: dict, url: str
) -> None:
    from rasa.core.utils import read_endpoints_from_path

    written = write_endpoints(tmp_path, **environ)
    monkeypatch.setenv("ACTION_SERVER_TOKEN", "a-token_0123456789abcdef")
    endpoints = read_endpoints_from_path(written)
    assert endpoints.action.url == url
    assert endpoints.action.token == "a-token_0123456789abcdef"
