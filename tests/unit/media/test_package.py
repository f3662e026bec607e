"""The media package stands alone: no module of it imports Rasa, the components or the channels."""
from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import media

PROJECT_ROOT = Path(media.__file__).resolve().parents[1]
FORBIDDEN = ("rasa", "components", "channels")


def test_no_media_module_imports_rasa_components_or_channels():
    modules = sorted(f"media.{info.name}" for info in pkgutil.iter_modules(media.__path__))
    assert {"media.errors", "media.ffmpeg", "media.store", "media.images"} <= set(modules)
    program = (
        "import importlib, json, sys\n"
        f"for name in {['media', *modules]!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_every_public_name_is_exported_by_the_package():
    for name in media.__all__:
        assert getattr(media, name) is not None, name
