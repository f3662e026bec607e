"""Tests of the command-line scripts import them as Python runs them: with scripts/ first on `sys.path`
(each script then puts the project root there itself, scripts/_bootstrap.py)."""
from __future__ import annotations

import sys

from assistant.paths import PROJECT_ROOT

SCRIPTS = str(PROJECT_ROOT / "scripts")
if SCRIPTS not in sys.path:
    sys.path.insert(0, SCRIPTS)
