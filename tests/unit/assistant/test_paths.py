"""Unit tests for assistant/paths.py: the project root and how relative paths in configuration resolve."""
from __future__ import annotations

from pathlib import Path

import pytest

import assistant.paths as paths
from assistant.paths import DATA_DIR, MODELS_DIR, PROJECT_ROOT, VAR_DIR, project_path


def test_the_project_root_holds_the_config_and_the_packages() -> None:
    assert (PROJECT_ROOT / "config.yml").is_file() and (PROJECT_ROOT / "assistant" / "paths.py").is_file()
    assert VAR_DIR == PROJECT_ROOT / "var"
    assert MODELS_DIR == PROJECT_ROOT / "models"
    assert DATA_DIR == PROJECT_ROOT / "data"


def test_a_relative_path_is_taken_from_the_project_root(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the working directory does not matter
    assert project_path("models/text-encoder") == PROJECT_ROOT / "models" / "text-encoder"
    assert project_path(Path("data") / "nlu.yml") == DATA_DIR / "nlu.yml"
    monkeypatch.setattr(paths, "PROJECT_ROOT", tmp_path)  # read at each call; other tests rely on it
    assert project_path("var/uploads") == tmp_path / "var" / "uploads"


def test_an_absolute_path_is_unchanged(tmp_path: Path) -> None:
    absolute = tmp_path / "somewhere" / ".." / "weights.pth"
    assert project_path(absolute) == absolute
    assert project_path(str(absolute)) == absolute  # neither resolved nor checked for existence


def test_the_home_directory_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert project_path("~/models/vosk") == tmp_path / "models" / "vosk"
    assert project_path("~") == tmp_path
