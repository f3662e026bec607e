"""scripts/cluster.sh without a cluster: the HAProxy config it renders from deploy/haproxy/haproxy.cfg.template
(checked by HAProxy itself when it is installed), the cluster endpoints file as Rasa reads it, and the
commands' refusals. Starting the cluster (databases, models, ~3 GB per replica) is `make cluster`'s job."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "cluster.sh"


def bash(snippet: str, cluster_dir: Path, **environ: str) -> subprocess.CompletedProcess:
    """Sources cluster.sh (functions only) with CLUSTER_DIR=cluster_dir and runs ``snippet``."""
    env: Dict[str, str] = {**os.environ, "VENV": str(Path(sys.executable).parents[1]),
                           "CLUSTER_DIR": str(cluster_dir), **environ}
    return subprocess.run(["bash", "-c", f"source '{SCRIPT}' && defaults && {snippet}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_the_haproxy_config_balances_every_replica_on_the_readiness_route(tmp_path: Path) -> None:
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed (WITH_CLUSTER=1 scripts/install_system_packages.sh)")
    done = bash("HEALTH_PATH=/webhooks/multimodal/ready render_haproxy", tmp_path, RASA_REPLICAS="3",
                ACTIONS_REPLICAS="2", CLUSTER_PORT="18080")
    assert done.returncode == 0, done.stderr
    config = (tmp_path / "haproxy.cfg").read_text(encoding="utf-8")
    assert "${" not in config
    for line in ("bind 127.0.0.1:18080", "balance leastconn", "option httpchk GET /webhooks/multimodal/ready",
                 "server rasa1 127.0.0.1:5101 check", "server rasa3 127.0.0.1:5103 check",
                 "server actions2 127.0.0.1:5152 check", "http-request set-header X-Forwarded-For %[src]"):
        assert line in config


def test_the_cluster_endpoints_name_the_action_frontend_and_keep_the_token_for_rasa(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rasa.core.utils import read_endpoints_from_path

    done = bash("write_cluster_endpoints", tmp_path, CLUSTER_ACTIONS_PORT="18081",
                TRACKER_STORE_URL="postgresql+psycopg2://postgres@127.0.0.1:5432/t",
                REDIS_URL="redis://127.0.0.1:6379/5")
    assert done.returncode == 0, done.stderr
    monkeypatch.setenv("ACTION_SERVER_TOKEN", "test-token")
    endpoints = read_endpoints_from_path(tmp_path / "endpoints.yml")
    assert endpoints.action.url == "http://127.0.0.1:18081/webhook"
    assert endpoints.action.token == "test-token"
    assert endpoints.tracker_store is not None and endpoints.lock_store is not None


@pytest.mark.parametrize("command", ["status", "kill-replica 1", "start-replica 1"])
def test_commands_on_a_cluster_that_was_never_started_say_so(tmp_path: Path, command: str) -> None:
    done = subprocess.run(["bash", str(SCRIPT), *command.split()], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "CLUSTER_DIR": str(tmp_path)}, timeout=60)
    assert done.returncode == 1 and "make cluster" in done.stderr


def test_a_replica_index_outside_the_cluster_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cluster.env").write_text("RASA_REPLICAS=2\n", encoding="utf-8")
    done = subprocess.run(["bash", str(SCRIPT), "kill-replica", "3"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "CLUSTER_DIR": str(tmp_path)}, timeout=60)
    assert done.returncode == 1 and "1..2" in done.stderr


def test_a_pid_file_names_our_process_only_while_its_start_time_matches(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        done = bash(f"echo \"{sleeper.pid} $(start_ticks {sleeper.pid})\" >\"$CLUSTER_DIR/a.pid\"; "
                    f"echo '{sleeper.pid} 1' >\"$CLUSTER_DIR/b.pid\"; "
                    "echo \"a=$(pid_of a) b=$(pid_of b) c=$(pid_of c)\"; alive a && alive b || echo 'b not alive'",
                    tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split("\n")[:2] == [f"a={sleeper.pid} b= c=", "b not alive"]
    finally:
        sleeper.kill()
        sleeper.wait()
