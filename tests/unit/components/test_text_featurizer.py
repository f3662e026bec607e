"""Unit tests for `components.text_featurizer.TransformerTextFeaturizer`, on a tiny random BERT.

The tiny model (2 layers, hidden size 32, 64 positions, a ~100-entry word-piece vocabulary) is written once
per session to a temporary directory with `save_pretrained` (tests/unit/encoders/tiny_bert.py, the fixture
`tiny_bert_dir`); nothing is downloaded. The encoder's own functions (model location and loading, the
directory fingerprint, sentence pooling) are tested in tests/unit/encoders/test_text.py.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import pytest

from components.text_featurizer import TransformerTextFeaturizer, align_pieces_to_tokens
from assistant.fingerprints import directory_sha256
from encoders.text import load_model, resolve_model_path
from rasa.engine.graph import ExecutionContext
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, FEATURE_TYPE_SEQUENCE, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from tests.unit.components.featurizer_contract import FeaturizerContract
from tests.unit.encoders.tiny_bert import TINY_HIDDEN, TINY_POSITIONS, TINY_WINDOW

PROJECT_ROOT = Path(__file__).resolve().parents[3]


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def whitespace_tokenizer() -> WhitespaceTokenizer:
    return WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())


@pytest.fixture
def tokenized(whitespace_tokenizer: WhitespaceTokenizer):
    """`tokenized(text)` → a message with TEXT tokenized by Rasa's WhitespaceTokenizer."""

    def make(text: str, **data: Any) -> Message:
        message = Message(data={TEXT: text, **data})
        whitespace_tokenizer.process([message])
        return message

    return make


@pytest.fixture
def tiny_config(tiny_bert_dir: Path) -> Dict[str, Any]:
    return {**TransformerTextFeaturizer.get_default_config(), "model_path": str(tiny_bert_dir),
            "max_length": TINY_POSITIONS}


@pytest.fixture
def make_featurizer(tiny_config: Dict[str, Any], execution_context: ExecutionContext, model_storage):
    """`make_featurizer(**overrides)` → a featurizer on the tiny model, named `text_featurizer`."""
    from rasa.engine.storage.resource import Resource

    context = dataclasses.replace(execution_context, node_name="text_featurizer")

    def make(**overrides: Any) -> TransformerTextFeaturizer:
        return TransformerTextFeaturizer.create(
            {**tiny_config, **overrides}, model_storage, Resource("text_featurizer"), context
        )

    return make


def own_features(message: Message, origin: str = "text_featurizer") -> Dict[str, np.ndarray]:
    return {
        f.type: f.features for f in message.features if f.attribute == TEXT and f.origin == origin
    }


def reference_hidden(model_dir: Path, text: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference for a one-window text: (vectors incl. [CLS]/[SEP], text-piece vectors, their offsets)."""
    import torch

    loaded = load_model(resolve_model_path(str(model_dir)))
    encoding = loaded.tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    assert len(encoding["input_ids"]) <= TINY_POSITIONS, "reference only covers one window"
    with torch.inference_mode():
        hidden = loaded.model(input_ids=torch.tensor([encoding["input_ids"]])).last_hidden_state[0].numpy()
    content = np.asarray(encoding["special_tokens_mask"]) == 0
    return hidden, hidden[content], np.asarray(encoding["offset_mapping"])[content]


def brute_force_alignment(vectors: np.ndarray, offsets: np.ndarray, tokens: Sequence[Token]) -> np.ndarray:
    rows = []
    for token in tokens:
        hits = [v for v, (s, e) in zip(vectors, offsets) if s < token.end and e > token.start]
        rows.append(np.mean(hits, axis=0) if hits else np.zeros(vectors.shape[1]))
    return np.asarray(rows, dtype=np.float32)


# ---------------------------------------------------------------------------------------------- the contract
class TestTransformerTextFeaturizerContract(FeaturizerContract):
    @pytest.fixture
    def featurizer_class(self):
        return TransformerTextFeaturizer

    @pytest.fixture
    def featurizer_config(self, tiny_bert_dir: Path) -> Dict[str, Any]:
        return {"model_path": str(tiny_bert_dir), "max_length": TINY_WINDOW}

    @pytest.fixture
    def attribute(self) -> str:
        return TEXT

    @pytest.fixture
    def expected_dims(self) -> int:
        return TINY_HIDDEN

    @pytest.fixture
    def message_with_input(self, tokenized) -> Message:
        return tokenized("where is my order 45172")

    @pytest.fixture
    def message_without_input(self) -> Message:
        return Message(data={INTENT: "greet"})

    @pytest.fixture
    def other_messages_with_input(self, tokenized) -> List[Message]:
        return [
            tokenized("my parcel hasn't arrived, unbelievably!"),
            tokenized("please refund the order " * 12),  # ~60 pieces: four windows of 16
            tokenized("?"),
        ]


# ---------------------------------------------------------------------------------------------- alignment
def test_alignment_of_tokens_split_into_several_pieces(make_featurizer, tiny_bert_dir, tokenized) -> None:
    text = "Where's my order, unbelievably 45172?"
    message = tokenized(text)
    make_featurizer().process([message])

    _, vectors, offsets = reference_hidden(tiny_bert_dir, text)
    tokens = message.get(TOKENS_NAMES[TEXT])
    expected = brute_force_alignment(vectors, offsets, tokens)
    sequence = own_features(message)[FEATURE_TYPE_SEQUENCE]
    assert sequence.shape == (len(tokens), TINY_HIDDEN)
    np.testing.assert_allclose(sequence, expected, atol=1e-5)

    # "unbelievably" is five pieces (un ##bel ##ie ##va ##bly): its row is their mean, not any single piece
    index = [t.text for t in tokens].index("unbelievably")
    start = text.index("unbelievably")
    piece_rows = [i for i, (s, _) in enumerate(offsets) if start <= s < start + len("unbelievably")]
    assert len(piece_rows) == 5
    np.testing.assert_allclose(sequence[index], vectors[piece_rows].mean(axis=0), atol=1e-5)


def test_windows_are_encoded_independently(make_featurizer, tiny_bert_dir, tokenized) -> None:
    import torch

    text = "Where's my order, unbelievably 45172? please refund the parcel to my-address 10115 now!"
    message = tokenized(text)
    make_featurizer(max_length=TINY_WINDOW).process([message])

    loaded = load_model(resolve_model_path(str(tiny_bert_dir)))
    pieces = loaded.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = pieces["input_ids"], np.asarray(pieces["offset_mapping"])
    step = TINY_WINDOW - 2
    assert len(ids) > 2 * step  # at least three windows
    vectors = []
    for start in range(0, len(ids), step):
        window = [loaded.tokenizer.cls_token_id, *ids[start : start + step], loaded.tokenizer.sep_token_id]
        with torch.inference_mode():
            hidden = loaded.model(input_ids=torch.tensor([window])).last_hidden_state[0].numpy()
        vectors.append(hidden[1:-1])
        if start == 0:
            first_window = hidden
    expected = brute_force_alignment(np.concatenate(vectors), offsets, message.get(TOKENS_NAMES[TEXT]))
    features = own_features(message)
    np.testing.assert_allclose(features[FEATURE_TYPE_SEQUENCE], expected, atol=1e-5)
    mean = first_window.mean(axis=0, keepdims=True)
    np.testing.assert_allclose(features[FEATURE_TYPE_SENTENCE], mean / np.linalg.norm(mean), atol=1e-5)


def test_punctuation_tokens_get_their_own_pieces(make_featurizer, tiny_bert_dir) -> None:
    text = "order, please!"
    tokens = [Token("order", 0), Token(",", 5), Token("please", 7), Token("!", 13)]
    message = Message(data={TEXT: text, TOKENS_NAMES[TEXT]: tokens})
    make_featurizer().process([message])

    _, vectors, offsets = reference_hidden(tiny_bert_dir, text)
    sequence = own_features(message)[FEATURE_TYPE_SEQUENCE]
    np.testing.assert_allclose(sequence, brute_force_alignment(vectors, offsets, tokens), atol=1e-5)
    comma = [i for i, (s, e) in enumerate(offsets) if (s, e) == (5, 6)]
    np.testing.assert_allclose(sequence[1], vectors[comma[0]], atol=1e-5)


@pytest.mark.parametrize(
    "text",
    [
        "thanks 😀",
        "😡😡😡",
        "?",
        "hello\u0000world",
        "where\u200b is\u200b my\u200b order",
        "مرحبا أين طلبي",
        "我的订单在哪里？order 45172",
        "where is my order 45172'; DROP TABLE orders; --",
        "what is the price of {{7*7}} bananas",
        "<script>alert(1)</script>",
        "/greet{\"name\": \"x\"}",
        "order number 99999999999999999999999999",
    ],
)
def test_unusual_texts_get_one_finite_row_per_token(make_featurizer, tokenized, text: str) -> None:
    message = tokenized(text)
    make_featurizer().process([message])
    features = own_features(message)
    n_tokens = len(message.get(TOKENS_NAMES[TEXT]))
    assert features[FEATURE_TYPE_SEQUENCE].shape == (n_tokens, TINY_HIDDEN)
    assert features[FEATURE_TYPE_SENTENCE].shape == (1, TINY_HIDDEN)
    for matrix in features.values():
        assert matrix.dtype == np.float32 and np.isfinite(matrix).all()


def test_emoji_token_is_featurised_from_its_unknown_piece(make_featurizer, tiny_bert_dir) -> None:
    text = "thanks 😀"
    tokens = [Token("thanks", 0), Token("😀", 7)]
    message = Message(data={TEXT: text, TOKENS_NAMES[TEXT]: tokens})
    make_featurizer().process([message])

    _, vectors, offsets = reference_hidden(tiny_bert_dir, text)
    assert (7, 8) in [tuple(o) for o in offsets]  # the emoji is one [UNK] piece at its character offset
    sequence = own_features(message)[FEATURE_TYPE_SEQUENCE]
    assert np.abs(sequence[1]).sum() > 0
    np.testing.assert_allclose(sequence, brute_force_alignment(vectors, offsets, tokens), atol=1e-5)


def test_token_without_any_piece_gets_zeros(make_featurizer) -> None:
    text = "order \u200b"  # the normaliser drops the zero-width space: no piece overlaps the second token
    tokens = [Token("order", 0), Token("\u200b", 6)]
    message = Message(data={TEXT: text, TOKENS_NAMES[TEXT]: tokens})
    make_featurizer().process([message])
    sequence = own_features(message)[FEATURE_TYPE_SEQUENCE]
    assert np.abs(sequence[0]).sum() > 0
    np.testing.assert_array_equal(sequence[1], np.zeros(TINY_HIDDEN, dtype=np.float32))


def test_ten_thousand_character_text_is_encoded_window_by_window(make_featurizer, tokenized) -> None:
    words = ["where", "is", "my", "order", "unbelievably", "refund", "please", "45172", "parcel!"]
    text = " ".join(words[i % len(words)] for i in range(2_000))[:10_000]
    assert len(text) == 10_000
    message = tokenized(text)
    featurizer = make_featurizer(max_length=TINY_POSITIONS)
    featurizer.process([message])

    tokens = message.get(TOKENS_NAMES[TEXT])
    features = own_features(message)
    sequence = features[FEATURE_TYPE_SEQUENCE]
    assert len(tokens) > 1000
    assert sequence.shape == (len(tokens), TINY_HIDDEN)
    assert np.isfinite(sequence).all()
    # every token, up to the very last one, has a vector from the window that contains it
    assert (np.abs(sequence).sum(axis=1) > 0).all()
    # the same word near the end and at the start does not get a copied vector: it has its own context
    last_same = max(i for i, token in enumerate(tokens) if token.text == tokens[0].text)
    assert last_same > len(tokens) - len(words) - 1
    assert not np.allclose(sequence[0], sequence[last_same], atol=1e-4)

    # the sentence feature is the first window only (truncation, as sentence-transformers' max_seq_length)
    first_window_end = _first_window_char_end(featurizer, text, TINY_POSITIONS)
    head = tokenized(text[:first_window_end])
    featurizer.process([head])
    np.testing.assert_allclose(
        features[FEATURE_TYPE_SENTENCE], own_features(head)[FEATURE_TYPE_SENTENCE], atol=1e-5
    )


def _first_window_char_end(featurizer: TransformerTextFeaturizer, text: str, max_length: int) -> int:
    encoding = featurizer._loaded.tokenizer(
        text, max_length=max_length, truncation=True, return_offsets_mapping=True
    )
    return max(end for _, end in encoding["offset_mapping"])


def test_single_ten_thousand_character_token(make_featurizer, tokenized) -> None:
    message = tokenized("a" * 10_000)
    make_featurizer().process([message])
    features = own_features(message)
    assert features[FEATURE_TYPE_SEQUENCE].shape == (1, TINY_HIDDEN)
    assert np.isfinite(features[FEATURE_TYPE_SEQUENCE]).all()


def test_align_pieces_to_tokens_fast_path_equals_overlap_matrix() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, 4)).astype(np.float32)
    pieces = np.array([[0, 2], [2, 5], [6, 8], [8, 9], [9, 12], [13, 14]])
    tokens = np.array([[0, 5], [6, 12], [12, 13], [13, 14], [3, 7]])  # [12, 13) overlaps nothing
    fast = align_pieces_to_tokens(vectors, pieces, tokens)
    expected = np.stack(
        [
            vectors[[0, 1]].mean(0),
            vectors[[2, 3, 4]].mean(0),
            np.zeros(4),
            vectors[5],
            vectors[[1, 2]].mean(0),
        ]
    )
    np.testing.assert_allclose(fast, expected, atol=1e-6)
    shuffled = align_pieces_to_tokens(vectors[::-1], pieces[::-1], tokens)  # not monotonic: slow path
    np.testing.assert_allclose(shuffled, expected, atol=1e-6)
    assert fast.dtype == np.float32
    assert align_pieces_to_tokens(vectors[:0], pieces[:0], tokens).shape == (5, 4)


# ------------------------------------------------------------------------------------------ sentence feature
def test_sentence_feature_is_normalised_masked_mean(make_featurizer, tiny_bert_dir, tokenized) -> None:
    text = "where is my order"
    hidden, _, _ = reference_hidden(tiny_bert_dir, text)

    normalised = tokenized(text)
    make_featurizer().process([normalised])
    sentence = own_features(normalised)[FEATURE_TYPE_SENTENCE]
    expected = hidden.mean(axis=0, keepdims=True)  # [CLS] and [SEP] included, as sentence-transformers
    np.testing.assert_allclose(sentence, expected / np.linalg.norm(expected), atol=1e-5)
    assert np.linalg.norm(sentence) == pytest.approx(1.0, abs=1e-5)

    raw = tokenized(text)
    make_featurizer(normalize=False).process([raw])
    np.testing.assert_allclose(own_features(raw)[FEATURE_TYPE_SENTENCE], expected, atol=1e-5)

    cls = tokenized(text)
    make_featurizer(pooling="cls", normalize=False).process([cls])
    np.testing.assert_allclose(own_features(cls)[FEATURE_TYPE_SENTENCE], hidden[:1], atol=1e-5)


# ------------------------------------------------------------------------------------------ inputs skipped
def test_no_features_without_tokens_or_text(make_featurizer) -> None:
    without_tokens = Message(data={TEXT: "where is my order"})
    intent_only = Message(data={INTENT: "greet"})
    messages = [without_tokens, intent_only]
    featurizer = make_featurizer()

    featurizer.process(messages)
    featurizer.process_training_data(TrainingData(messages))
    assert all(not m.features for m in messages)


def test_blank_text_gets_zero_features_of_the_usual_structure(make_featurizer, tokenized) -> None:
    """A photo or voice note without words has blank text; DIET needs dense features beside the sparse ones."""
    empty = tokenized("")
    blank = Message(data={TEXT: " \n\t ", TOKENS_NAMES[TEXT]: [Token(" \n\t ", 0)]})
    featurizer = make_featurizer()
    featurizer.process([empty, blank])
    for message in (empty, blank):
        features = own_features(message)
        n_tokens = len(message.get(TOKENS_NAMES[TEXT]) or [])
        assert features[FEATURE_TYPE_SEQUENCE].shape == (n_tokens, featurizer.dims)
        assert features[FEATURE_TYPE_SENTENCE].shape == (1, featurizer.dims)
        assert not features[FEATURE_TYPE_SEQUENCE].any() and not features[FEATURE_TYPE_SENTENCE].any()


def test_batch_size_does_not_change_features(make_featurizer, tokenized) -> None:
    texts = ["where is my order", "refund please", "my parcel " * 10, "unbelievably!", "?", "order 45172"]
    by_batch_size = {}
    for batch_size in (1, 4, 32):
        messages = [tokenized(t) for t in texts]
        make_featurizer(batch_size=batch_size).process(messages)
        by_batch_size[batch_size] = [own_features(m) for m in messages]
    for batch_size in (4, 32):
        for one, other in zip(by_batch_size[1], by_batch_size[batch_size]):
            for kind in (FEATURE_TYPE_SEQUENCE, FEATURE_TYPE_SENTENCE):
                np.testing.assert_allclose(one[kind], other[kind], atol=1e-5, rtol=1e-4)


def test_alias_names_the_features(make_featurizer, tokenized) -> None:
    message = tokenized("where is my order")
    make_featurizer(alias="minilm").process([message])
    assert set(own_features(message, origin="minilm")) == {FEATURE_TYPE_SEQUENCE, FEATURE_TYPE_SENTENCE}


# ---------------------------------------------------------------------------------------------- model loading
def test_model_is_loaded_once_per_process(make_featurizer) -> None:
    """Featurizers of other settings share one model (`encoders.text.load_model` caches it)."""
    first, second = make_featurizer(), make_featurizer(batch_size=3)
    assert first._loaded is second._loaded
    assert first.dims == TINY_HIDDEN


def test_module_import_does_not_import_torch_or_transformers() -> None:
    code = (
        "import sys; import components.text_featurizer; "
        "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_fingerprint_follows_the_model_files(tiny_bert_dir: Path, tmp_path: Path) -> None:
    """The fingerprint is the model directory's content hash (`assistant.fingerprints.directory_sha256`,
    which follows every file: tests/unit/encoders/test_text.py)."""
    config = {**TransformerTextFeaturizer.get_default_config(), "model_path": str(tiny_bert_dir)}
    before = TransformerTextFeaturizer.fingerprint_addon(config)
    assert before == TransformerTextFeaturizer.fingerprint_addon(config)
    assert before == directory_sha256(resolve_model_path(str(tiny_bert_dir)))

    missing = {**config, "model_path": str(tmp_path / "nowhere")}
    assert TransformerTextFeaturizer.fingerprint_addon(missing) not in (None, before)


# ---------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "key, value, mentions",
    [
        ("pooling", "max", "'mean', 'cls'"),
        ("pooling", None, "'mean', 'cls'"),
        ("max_length", 0, ">= 8"),
        ("max_length", "256", ">= 8"),
        ("max_length", 2.5, ">= 8"),
        ("batch_size", 0, ">= 1"),
        ("batch_size", True, ">= 1"),
        ("num_threads", -1, ">= 0"),
        ("normalize", "yes", "true or false"),
        ("model_path", 42, "directory path or null"),
    ],
)
def test_invalid_config_names_key_and_valid_values(key: str, value: Any, mentions: str) -> None:
    config = {**TransformerTextFeaturizer.get_default_config(), key: value}
    with pytest.raises(InvalidConfigException) as error:
        TransformerTextFeaturizer.validate_config(config)
    assert f"`{key}`" in str(error.value)
    assert mentions in str(error.value)
    assert isinstance(error.value, ValueError)


def test_max_length_above_the_model_positions_is_rejected(make_featurizer) -> None:
    with pytest.raises(InvalidConfigException, match=rf"`max_length` must be <= {TINY_POSITIONS}"):
        make_featurizer(max_length=TINY_POSITIONS + 1)


def test_model_path_without_a_model_is_rejected(make_featurizer, tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigException, match="`model_path`"):
        make_featurizer(model_path=str(tmp_path))


def test_default_config_has_the_documented_keys() -> None:
    config = TransformerTextFeaturizer.get_default_config()
    assert {k: v for k, v in config.items() if k != "alias"} == {
        "model_path": None,
        "max_length": 256,
        "pooling": "mean",
        "batch_size": 32,
        "num_threads": 0,
        "normalize": True,
    }
    TransformerTextFeaturizer.validate_config(config)


def test_default_config_keeps_rasas_alias_first_and_the_keys_in_order() -> None:
    """The defaults come from `TextFeaturizerConfig` alone, after Rasa's `alias`; keys and order as before."""
    assert list(TransformerTextFeaturizer.get_default_config().items()) == [
        ("alias", None),
        ("model_path", None),
        ("max_length", 256),
        ("pooling", "mean"),
        ("batch_size", 32),
        ("num_threads", 0),
        ("normalize", True),
    ]
