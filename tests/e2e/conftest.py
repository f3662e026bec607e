"""Fixtures for the browser tests: `rasa run` with the trained test model and credentials.yml, the action
server and its seeded database (shared with tests/integration), and headless Chromium driven by Playwright.

Chromium is the Debian package (`WITH_BROWSER=1 bash scripts/install_system_packages.sh`); Playwright never
downloads a browser here. Without Chromium or Playwright the tests skip.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

# The trained model, the seeded database and the action server are the integration tests' fixtures.
from tests.integration.conftest import (  # noqa: F401  (imported fixtures)
    _free_port,
    action_server,
    action_server_token,
    bot_database_url,
    repository,
    test_model,
)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The system Chromium; the browser tests skip when it or Playwright is missing."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"no Chromium at {CHROMIUM} (WITH_BROWSER=1 bash scripts/install_system_packages.sh)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -c constraints.txt playwright)")
    return CHROMIUM


@pytest.fixture(scope="session")
def upload_dir(tmp_path_factory) -> Path:
    """The upload store of the server under test (ATTACHMENT_DIR)."""
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="session")
def rasa_server(
    chromium_path, test_model, action_server, action_server_token, bot_database_url, upload_dir,
    tmp_path_factory,
) -> Iterator[str]:
    """`rasa run --credentials credentials.yml` with the test model on a free port, started as `make serve`
    does (scripts/rasa_run.py: the worker pool installed; endpoints.yml's token from ACTION_SERVER_TOKEN);
    yields its base URL."""
    work = tmp_path_factory.mktemp("rasa-run")
    endpoints = work / "endpoints.yml"
    shipped = (ROOT / "endpoints.yml").read_text(encoding="utf-8")  # its tracker and lock stores, as make serve
    endpoints.write_text(shipped.replace('"http://localhost:5055/webhook"', f'"{action_server}"'), encoding="utf-8")
    assert action_server in endpoints.read_text(encoding="utf-8")
    port = _free_port()
    env = {
        **os.environ,
        "ACTION_SERVER_TOKEN": action_server_token,
        "ATTACHMENT_DIR": str(upload_dir),
        "DATABASE_URL": bot_database_url,
        "TRACKER_STORE_URL": f"sqlite:///{work / 'tracker.db'}",
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    env.pop("CHAT_API_TOKEN", None)  # the page talks to the channel without a token
    log_path = work / "rasa.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "scripts/rasa_run.py", "run", "--model", str(test_model),
         "--credentials", "credentials.yml", "--endpoints", str(endpoints), "--port", str(port),
         "--interface", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None:
            log.close()
            pytest.fail(f"rasa run exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"{base}/webhooks/multimodal/", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                log.close()
                pytest.fail(f"rasa run did not answer within 300 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(1)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def fake_microphone_wav(tmp_path_factory) -> Path:
    """What Chromium's fake microphone 'hears': a spoken question (espeak-ng), else a tone (ffmpeg)."""
    path = tmp_path_factory.mktemp("mic") / "question.wav"
    if shutil.which("espeak-ng"):
        subprocess.run(
            ["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(path), "how much are bananas"],
            check=True, capture_output=True, timeout=60,
        )
    elif shutil.which("ffmpeg"):
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=300:duration=3", "-ar", "48000",
             "-ac", "1", str(path)],
            check=True, capture_output=True, timeout=60,
        )
    else:
        pytest.skip("neither espeak-ng nor ffmpeg is installed to make the microphone input")
    return path


@pytest.fixture(scope="module")
def browser(chromium_path, fake_microphone_wav) -> Iterator["object"]:
    """Headless system Chromium with a fake microphone that plays `fake_microphone_wav`.

    Module-scoped: Playwright's sync API keeps an asyncio event loop running in this thread while it is
    open, so it must be stopped before any other test calls `asyncio.run`.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=CHROMIUM_FLAGS + [
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={fake_microphone_wav}",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, rasa_server):
    """A fresh browser context (new localStorage, so a new sender id) and page; closed after the test."""
    context = browser.new_context(
        viewport={"width": 760, "height": 1000},
        device_scale_factor=1,
        permissions=["microphone"],
        service_workers="block",
    )
    context.set_default_timeout(30_000)
    page = context.new_page()
    console_errors = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: console_errors.append(str(error)))
    page.console_errors = console_errors
    yield page
    context.close()


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
