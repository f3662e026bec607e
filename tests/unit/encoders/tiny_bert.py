"""A tiny random BERT with a fast WordPiece tokenizer, for unit tests of the text encoder code.

2 layers, hidden size 32, 64 positions, a ~100-entry word-piece vocabulary; written with `save_pretrained`,
nothing is downloaded.
"""
from __future__ import annotations

from pathlib import Path

TINY_HIDDEN = 32
TINY_POSITIONS = 64
TINY_WINDOW = 16  # word pieces per window in these tests, so that short texts already need several windows
TINY_VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + ["where", "is", "my", "order", "parcel", "refund", "please", "the"]
    + ["un", "##bel", "##ie", "##va", "##bly"]
    + list("!,?.#-'/{}<>();:\"*")
    + list("abcdefghijklmnopqrstuvwxyz0123456789")
    + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
)


def build_tiny_bert(root: Path) -> Path:
    """Writes the tiny model and its tokenizer under `root` and returns the model directory (`root/model`)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab_dir = root / "vocab"
    vocab_dir.mkdir()
    (vocab_dir / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast.from_pretrained(str(vocab_dir), local_files_only=True)

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(TINY_VOCAB),
        hidden_size=TINY_HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=TINY_POSITIONS,
    )
    model_dir = root / "model"
    BertModel(config).eval().save_pretrained(str(model_dir))
    tokenizer.save_pretrained(str(model_dir))
    return model_dir
