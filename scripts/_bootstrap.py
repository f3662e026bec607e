"""Makes the project's packages importable for a script run as a file (`python scripts/tune_text.py`).

Python puts the script's folder (scripts/) on `sys.path`, not the project root, so `import assistant` would
fail. Every Python script in this folder therefore starts with `import _bootstrap`, which puts the folder
above it (the project root) first on `sys.path`; from then on the script takes paths from `assistant.paths`
(`PROJECT_ROOT`, `project_path`), never from its own location. Tests that import a script put scripts/ on the
path the same way a file run does (tests/unit/scripts/conftest.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

_PROJECT_ROOT = str(Path(__file__).resolve().parents[1])
if _PROJECT_ROOT not in sys.path:
    sys.path.insert(0, _PROJECT_ROOT)
