"""Unit tests for scripts/train_if_changed.py: what the model's name (its fingerprint) depends on."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT / "scripts"))

import train_if_changed  # noqa: E402


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("domain.yml", "constraints.txt"):
        (tmp_path / name).write_text(f"{name}\n")
    for folder in ("data", "components"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.txt").write_text("a\n")
    (tmp_path / "models" / "text-encoder").mkdir(parents=True)
    (tmp_path / "models" / "text-encoder" / "model.safetensors").write_bytes(b"weights-1")
    return tmp_path


def write_config(project: Path, model_path: str | None) -> Path:
    line = f"    model_path: {model_path}\n" if model_path else ""
    config = project / "config.yml"
    config.write_text("pipeline:\n  - name: WhitespaceTokenizer\n"
                      f"  - name: components.text_featurizer.TransformerTextFeaturizer\n{line}")
    return config


def test_a_tuned_encoder_named_in_the_config_is_part_of_the_fingerprint(project: Path) -> None:
    config = write_config(project, "models/text-encoder")
    assert train_if_changed.model_directories(config, project) == [project / "models/text-encoder"]
    before = train_if_changed.model_fingerprint(config, project)
    (project / "models" / "text-encoder" / "model.safetensors").write_bytes(b"weights-2")
    assert train_if_changed.model_fingerprint(config, project) != before


def test_without_model_path_the_encoder_directory_does_not_matter(project: Path) -> None:
    config = write_config(project, None)
    assert train_if_changed.model_directories(config, project) == []
    before = train_if_changed.model_fingerprint(config, project)
    (project / "models" / "text-encoder" / "model.safetensors").write_bytes(b"weights-2")
    assert train_if_changed.model_fingerprint(config, project) == before
    (project / "data" / "a.txt").write_text("changed\n")
    assert train_if_changed.model_fingerprint(config, project) != before


def test_a_broken_config_names_no_directories(project: Path) -> None:
    config = project / "config.yml"
    config.write_text("pipeline: [unclosed\n")
    assert train_if_changed.model_directories(config, project) == []


def test_a_tuned_image_weight_file_named_in_the_config_is_part_of_the_fingerprint(project: Path) -> None:
    weights = project / "models" / "image-encoder" / "weights.safetensors"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"image-weights-1")
    config = project / "config.yml"
    config.write_text("pipeline:\n  - name: components.image_featurizer.ImageFeaturizer\n"
                      "    weights_path: models/image-encoder/weights.safetensors\n")
    assert train_if_changed.model_directories(config, project) == [weights]
    before = train_if_changed.model_fingerprint(config, project)
    weights.write_bytes(b"image-weights-2")
    assert train_if_changed.model_fingerprint(config, project) != before
