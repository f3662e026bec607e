"""Unit tests of scripts/train_if_changed.py: the catalog snapshot is refreshed first and names the model.

`rasa train` itself is replaced by a stub that records its command line; the model name's other inputs are
the project's real config, domain, data and components (assistant/training.py, tests/unit/assistant).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List

import pytest

import train_if_changed  # scripts/ is on sys.path (conftest.py)
from tests.unit.components.products.synthetic_catalog import seeded_database


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A seeded SQLite database as DATABASE_URL, the snapshot in tmp_path (CATALOG_SNAPSHOT); yields the
    repository."""
    with seeded_database(tmp_path) as (url, repository):
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("CATALOG_SNAPSHOT", str(tmp_path / "snapshot.json"))
        monkeypatch.setenv("CATALOG_IMAGE_DIR", str(tmp_path / "images"))
        yield repository


@pytest.fixture
def rasa_train(monkeypatch: pytest.MonkeyPatch) -> List[List[str]]:
    """The command lines `rasa train` was called with (nothing is trained)."""
    calls: List[List[str]] = []

    def record(cmd, **kwargs) -> int:
        calls.append(list(cmd))
        return 0

    monkeypatch.setattr(train_if_changed.subprocess, "call", record)
    monkeypatch.setattr(train_if_changed, "ensure_tuned_encoder", lambda config: 0)  # tested below
    return calls


def _config(tmp_path: Path, model_path: str) -> Path:
    config = tmp_path / "config.yml"
    config.write_text(
        "pipeline:\n- name: WhitespaceTokenizer\n- name: components.text_featurizer.TransformerTextFeaturizer\n"
        f"  model_path: {model_path}\n"
    )
    return config


@pytest.mark.parametrize("model_path, tuned", [("models/text-encoder", True), ("null", False),
                                                ("/elsewhere/encoder", False)])
def test_the_text_encoder_is_tuned_first_only_when_the_pipeline_reads_the_tuned_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_path: str, tuned: bool
) -> None:
    import tune_text

    calls: List[List[str]] = []
    monkeypatch.setattr(tune_text, "main", lambda argv: calls.append(list(argv)) or 7)
    result = train_if_changed.ensure_tuned_encoder(_config(tmp_path, model_path))
    assert (calls != []) is tuned
    assert result == (7 if tuned else 0), "tune_text's exit code is passed on"
    if tuned:
        assert calls[0][-1].endswith("models/text-encoder")


def test_the_snapshot_is_written_first_and_names_the_model(shop, rasa_train, tmp_path: Path) -> None:
    models = tmp_path / "models"
    assert train_if_changed.main(["--out", str(models)]) == 0
    snapshot = tmp_path / "snapshot.json"
    assert snapshot.is_file()
    [command] = rasa_train
    name = command[command.index("--fixed-model-name") + 1]
    (models / f"{name}.tar.gz").write_bytes(b"model")

    rasa_train.clear()
    assert train_if_changed.main(["--out", str(models)]) == 0
    assert rasa_train == [], "nothing changed: the existing model is used"

    shop.add_product_image("FRU-KIWI", "ab/kiwi.jpg", "a" * 64)  # `make catalog-images`, no --force needed
    assert train_if_changed.main(["--out", str(models)]) == 0
    [command] = rasa_train
    assert command[command.index("--fixed-model-name") + 1] != name
    assert "ab/kiwi.jpg" in snapshot.read_text()


def test_an_unreadable_database_keeps_the_last_snapshot(shop, rasa_train, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert train_if_changed.main(["--out", str(tmp_path / "models")]) == 0
    snapshot = tmp_path / "snapshot.json"
    before = snapshot.read_bytes()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'absent.db'}")
    assert train_if_changed.main(["--out", str(tmp_path / "models")]) == 0
    assert snapshot.read_bytes() == before
    assert not (tmp_path / "absent.db").exists(), "a missing database file is not created"
    assert rasa_train[0][-1] == rasa_train[1][-1], "same snapshot, same model name"


def test_a_touched_photo_renames_no_model(shop, rasa_train, tmp_path: Path) -> None:
    photo = tmp_path / "images" / "ab" / "kiwi.jpg"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"kiwi photo")
    shop.add_product_image("FRU-KIWI", "ab/kiwi.jpg", "a" * 64)
    assert train_if_changed.main(["--out", str(tmp_path / "models")]) == 0
    status = photo.stat()
    os.utime(photo, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))
    assert train_if_changed.main(["--out", str(tmp_path / "models")]) == 0
    recorded = (tmp_path / "snapshot.json").read_text()
    assert str(photo.stat().st_mtime_ns) in recorded, "the new time is recorded"
    assert rasa_train[0][-1] == rasa_train[1][-1], "same catalog, same model name"
