"""Unit tests for assistant/training.py: what names the model (its fingerprint), capped configs."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from assistant.training import capped_config, model_directories, model_fingerprint, pipeline_value
from shop.catalog_snapshot import catalog_content


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
    assert model_directories(config, project) == [project / "models/text-encoder"]
    before = model_fingerprint(config, project)
    (project / "models" / "text-encoder" / "model.safetensors").write_bytes(b"weights-2")
    assert model_fingerprint(config, project) != before


def test_without_model_path_the_encoder_directory_does_not_matter(project: Path) -> None:
    config = write_config(project, None)
    assert model_directories(config, project) == []
    before = model_fingerprint(config, project)
    (project / "models" / "text-encoder" / "model.safetensors").write_bytes(b"weights-2")
    assert model_fingerprint(config, project) == before
    (project / "data" / "a.txt").write_text("changed\n")
    assert model_fingerprint(config, project) != before


def test_a_broken_config_names_no_directories(project: Path) -> None:
    config = project / "config.yml"
    config.write_text("pipeline: [unclosed\n")
    assert model_directories(config, project) == []


def test_a_tuned_image_weight_file_named_in_the_config_is_part_of_the_fingerprint(project: Path) -> None:
    weights = project / "models" / "image-encoder" / "weights.safetensors"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"image-weights-1")
    config = project / "config.yml"
    config.write_text("pipeline:\n  - name: components.image_featurizer.ImageFeaturizer\n"
                      "    weights_path: models/image-encoder/weights.safetensors\n")
    assert model_directories(config, project) == [weights]
    before = model_fingerprint(config, project)
    weights.write_bytes(b"image-weights-2")
    assert model_fingerprint(config, project) != before


def test_the_catalog_snapshot_is_part_of_the_fingerprint(project: Path) -> None:
    config = write_config(project, None)
    snapshot = project / "var" / "catalog" / "snapshot.json"
    without = model_fingerprint(config, project)
    missing = model_fingerprint(config, project, catalog=catalog_content(snapshot))
    assert missing != without
    snapshot.parent.mkdir(parents=True)
    snapshot.write_text('{"format": 1, "products": [], "photos": []}\n')
    first = model_fingerprint(config, project, catalog=catalog_content(snapshot))
    assert first not in (without, missing)
    assert model_fingerprint(config, project, catalog=catalog_content(snapshot)) == first
    snapshot.write_text('{"format": 1, "products": [], "photos": [{"sku": "A"}]}\n')
    assert model_fingerprint(config, project, catalog=catalog_content(snapshot)) != first


def test_pipeline_values_are_read_by_component_name(project: Path) -> None:
    config = project / "config.yml"
    config.write_text("pipeline:\n  - name: components.product_recognizer.ProductRecognizer\n"
                      "    catalog_snapshot: var/other.json\n    k: 3\n")
    assert pipeline_value(config, "ProductRecognizer", "catalog_snapshot") == "var/other.json"
    assert pipeline_value(config, "ProductRecognizer", "k") is None  # not a string
    assert pipeline_value(config, "ImageFeaturizer", "weights_path") is None
    config.write_text("pipeline: [unclosed\n")
    assert pipeline_value(config, "ProductRecognizer", "catalog_snapshot") is None


def test_capped_config_caps_every_epochs(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("pipeline:\n  - name: DIETClassifier\n    epochs: 30\n  - name: WhitespaceTokenizer\n"
                      "policies:\n  - name: TEDPolicy\n    epochs: 2\n")
    capped = capped_config(config, 5, tmp_path / "out")
    assert capped == tmp_path / "out" / "config.max5.yml"
    data = yaml.safe_load(capped.read_text())
    assert data["pipeline"][0]["epochs"] == 5 and "epochs" not in data["pipeline"][1]
    assert data["policies"][0]["epochs"] == 2
