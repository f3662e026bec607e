"""Offline fine-tuning of the image encoder on the shop's catalog photos (`make tune-images`).

The packaged EfficientNet-Lite0 was trained to tell ImageNet's 1000 classes apart; a shop's products draw
finer lines (two brands of oat milk, Granny Smith vs Pink Lady). This module fine-tunes the last stages of the
network once, on CPU, on photos labelled with their product (the catalog photos `make catalog-images`
attached, or a benchmark's training photos), and writes a state_dict that `ImageFeaturizer` loads through
`weights_path`. The ProductRecognizer then builds its catalog index from the tuned embeddings as usual;
nothing is downloaded and nothing is pickled.

Method (partial fine-tuning on cached activations):

1. Each photo is decoded and pre-processed exactly as the ImageFeaturizer does (`decode_image`,
   `crop_and_resize`), in `VIEWS` views: the evaluation crop (`image_size / resize_size` of the shorter side),
   the whole shorter side, and the mirror image of both — a fixed, cheap augmentation.
2. The frozen front of the network (stem and blocks before `first_tuned_block`) runs once per view, in
   inference mode; its activations (`float16 (views, channels, h, w)`, 112 × 14 × 14 for block 11 of Lite0)
   are kept in memory.
3. The tail (blocks from `first_tuned_block`, the head convolution and its batch norm's affine parameters) is
   trained on those activations with a cosine-softmax classifier over the globally pooled 1280-d embedding
   (`scale * normalize(e) @ normalize(W).T`, NormFace, Wang et al. 2017), cross-entropy with label smoothing,
   AdamW and a one-cycle schedule (Smith & Topin 2019). Batch-norm statistics stay frozen (eval mode): batches
   of a few dozen photos would give noisy ones.
4. The classifier is thrown away; the whole network's state_dict, including the untouched ImageNet classifier
   `_fc` (the ImageNet-label fallback keeps working, on slightly moved features), is saved as safetensors.

Training only the tail keeps the cost to one forward pass over the photos plus a few seconds per epoch; the
front layers (edges, textures) transfer well and are what the few catalog photos per product could overfit.

Output: `<out_dir>/weights.safetensors` and `<out_dir>/tuning.json` (base weights, labels, data digest,
hyper-parameters, per-epoch loss and training accuracy, seconds). The directory is written beside the target
and renamed into place, so a failed run leaves the old one intact.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from assistant.fingerprints import UNREADABLE, file_sha256_or
from assistant.torch_runtime import seed_everything, torch_threads
from tuning.io import (  # noqa: F401 (REPORT_FILE, read_report: re-exported)
    REPORT_FILE,
    check_settings,
    finish_epoch,
    read_report,
    report_matches,
    staged_directory,
    write_report,
)

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.safetensors"
FORMAT_VERSION = 1
#: Pre-processing views per training photo: (crop fraction of the shorter side, mirrored).
VIEWS = (("eval", False), ("full", False), ("eval", True), ("full", True))


@dataclass
class ImageTuningConfig:
    """Hyper-parameters of `fine_tune_images` (defaults: what the Grocery Store benchmark was tuned with).

    Attributes:
        first_tuned_block: index of the first MBConv block that is trained (Lite0 has 16, 0..15; 11 starts
            the 192-channel stage); earlier layers stay frozen.
        epochs: passes over the views (count).
        batch_size: views per optimiser step (count).
        learning_rate: peak AdamW step size of the tuned layers (float > 0).
        head_learning_rate: peak AdamW step size of the cosine classifier (float > 0; it starts from random).
        weight_decay: AdamW decoupled weight decay (float >= 0).
        label_smoothing: cross-entropy label smoothing (fraction, 0..1).
        scale: cosine-softmax scale, i.e. inverse temperature (float > 0).
        image_size: network input side (pixels), as the ImageFeaturizer's `image_size`.
        resize_size: shorter side the evaluation crop refers to (pixels), as the ImageFeaturizer's
            `resize_size`.
        seed: seed of python's `random`, numpy and torch (int).
        num_threads: torch CPU threads (count; 0 = all cores).
    """

    first_tuned_block: int = 11
    epochs: int = 3
    batch_size: int = 64
    learning_rate: float = 1e-3
    head_learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    scale: float = 20.0
    image_size: int = 224
    resize_size: int = 256
    seed: int = 42
    num_threads: int = 0

    def validate(self) -> None:
        """Raises ValueError naming the first invalid field."""
        checks = {
            "first_tuned_block": 0 <= self.first_tuned_block <= 16,
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 2,
            "learning_rate": self.learning_rate > 0,
            "head_learning_rate": self.head_learning_rate > 0,
            "weight_decay": self.weight_decay >= 0,
            "label_smoothing": 0 <= self.label_smoothing < 1,
            "scale": self.scale > 0,
            "image_size": self.image_size >= 32,
            "resize_size": self.resize_size >= self.image_size,
            "num_threads": self.num_threads >= 0,
        }
        check_settings("image tuning", self, checks)


def photo_digest(paths: Sequence[Path], labels: Sequence[str]) -> str:
    """SHA-256 (hex) over each photo file's content hash and its label, in order: names the data of a tuning.

    Content hashes come from `assistant.fingerprints.file_sha256_or` (memoised per process); an unreadable
    file counts as `UNREADABLE` (it is skipped by the tuning either way).
    """
    digest = hashlib.sha256()
    for path, label in zip(paths, labels):
        content = file_sha256_or(Path(path), UNREADABLE)
        digest.update(content.encode("ascii") + b"\x00" + label.encode("utf-8") + b"\x01")
    return digest.hexdigest()


def training_views(image: Any, image_size: int, resize_size: int) -> List[np.ndarray]:
    """The `VIEWS` network inputs of one decoded RGB photo: `float32 (3, image_size, image_size)` each.

    Args:
        image: an upright RGB `PIL.Image` from `media.images.decode_image`.
        image_size: network input side (pixels).
        resize_size: the evaluation crop keeps `image_size / resize_size` of the shorter side.
    """
    from encoders.image import crop_and_resize

    crops = {"eval": crop_and_resize(image, image_size, resize_size),
             "full": crop_and_resize(image, image_size, image_size)}
    return [np.ascontiguousarray(crops[crop][:, :, ::-1]) if mirrored else crops[crop]
            for crop, mirrored in VIEWS]


def iter_photos(
    paths: Sequence[Path], labels: Sequence[str], config: "ImageTuningConfig", max_bytes: int, max_pixels: int
) -> Iterator[Tuple[List[np.ndarray], str]]:
    """Yields `(training_views, label)` per usable photo, decoding one photo at a time.

    A photo is skipped, with one log line, when it is larger than `max_bytes`, unreadable, not a
    JPEG/PNG/WebP/GIF, damaged, or larger than `max_pixels` (`media.images.decode_image`, the
    checks customer photos get).
    """
    from media import AttachmentError
    from media.images import decode_image

    for path, label in zip(paths, labels):
        try:
            size = Path(path).stat().st_size
            if size > max_bytes:
                raise AttachmentError("too_large", f"{size} bytes > {max_bytes} bytes",
                                      attachment_type="image")
            image = decode_image(Path(path).read_bytes(), max_pixels, config.resize_size)
        except (AttachmentError, OSError) as error:
            logger.warning("image tuning: photo %s of %s skipped (%s)", Path(path).name, label, error)
            continue
        yield training_views(image, config.image_size, config.resize_size), label


def is_up_to_date(out_dir: Path, data_sha256: str, config: "ImageTuningConfig", base_weights: Path) -> bool:
    """Whether `out_dir` holds weights tuned from the same photos, settings and base weights."""
    from assistant.fingerprints import file_sha256 as file_fingerprint

    if not (Path(out_dir) / WEIGHTS_FILE).is_file():
        return False
    wanted = {"data_sha256": data_sha256, "config": asdict(config),
              "base_weights_sha256": file_fingerprint(base_weights)}
    return report_matches(out_dir, wanted)


class _Tail:
    """The trained part of an EfficientNet-Lite: blocks from `first`, head convolution, pooling."""

    def __init__(self, net: Any, first: int) -> None:
        self.net = net
        self.first = first

    def front(self, x: Any) -> Any:
        """Stem and blocks before `first`: `float32 (n, 3, s, s)` → activations."""
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        for block in net._blocks[: self.first]:
            x = block(x)
        return x

    def embed(self, x: Any) -> Any:
        """Activations of `front` → `float32 (n, 1280)` pooled embeddings (what the ImageFeaturizer emits)."""
        net = self.net
        for block in net._blocks[self.first :]:
            x = block(x)
        return net._swish(net._bn1(net._conv_head(x))).mean(dim=(2, 3))

    def parameters(self) -> List[Any]:
        net = self.net
        params = [p for block in net._blocks[self.first :] for p in block.parameters()]
        return params + list(net._conv_head.parameters()) + list(net._bn1.parameters())


def fine_tune_images(
    photos: Iterable[Tuple[Sequence[np.ndarray], str]],
    base_weights: Path,
    out_dir: Path,
    config: Optional[ImageTuningConfig] = None,
    progress: Optional[Callable[[str], None]] = None,
    data_digest: str = "",
) -> Dict[str, Any]:
    """Fine-tunes the tail of EfficientNet-Lite0 to tell the photos' labels apart and saves it to `out_dir`.

    Args:
        photos: `(views, label)` per photo, e.g. `iter_photos(...)`: its pre-processed views
            (`training_views`, `float32 (3, image_size, image_size)` each) and its label (a product sku).
            Consumed once, a batch at a time: only the frozen front's activations are kept (`float16`, 44 KB
            per view at 224 pixels and block 11).
        base_weights: the EfficientNet-Lite0 state_dict to start from (the packaged ImageNet weights).
        out_dir: where the tuned model directory goes (replaced atomically when the run succeeds).
        config: hyper-parameters (`ImageTuningConfig()` when None).
        progress: called with one line per epoch (e.g. `print`); the module logger gets them too.
        data_digest: recorded in the report (e.g. `photo_digest` of the photo files), to tell whether a later
            run would tune on the same data.

    Returns:
        The report written to `out_dir/tuning.json`.

    Raises:
        ValueError: for an invalid config, a photo without views, or photos of fewer than 2 labels.
        OSError: if the output cannot be written.
        rasa.shared.exceptions.InvalidConfigException: if `base_weights` is not a matching state_dict.
    """
    import torch

    from encoders.image import build_network, read_state_dict

    from assistant.fingerprints import file_sha256 as file_fingerprint

    config = config or ImageTuningConfig()
    config.validate()
    started = time.perf_counter()
    with torch_threads(config.num_threads):
        seed_everything(config.seed)
        net = build_network(config.image_size)
        net.load_state_dict(read_state_dict(base_weights), strict=True)
        net.eval()  # batch-norm statistics stay frozen; only weights and affine parameters learn
        for parameter in net.parameters():
            parameter.requires_grad_(False)
        tail = _Tail(net, config.first_tuned_block)

        cached: List[Any] = []
        view_labels: List[str] = []
        pending: List[np.ndarray] = []
        photo_count = 0

        def flush() -> None:
            if pending:
                with torch.inference_mode():
                    cached.append(tail.front(torch.from_numpy(np.stack(pending))).to(torch.float16))
                pending.clear()

        for views, label in photos:
            if not len(views):
                raise ValueError(f"image tuning: a photo of {label} has no views")
            photo_count += 1
            pending.extend(views)
            view_labels.extend([label] * len(views))
            if len(pending) >= 32:
                flush()
        flush()
        label_names = sorted(set(view_labels))
        if len(label_names) < 2:
            raise ValueError("image tuning: photos of at least 2 different products are needed")
        label_index = {name: i for i, name in enumerate(label_names)}
        targets = torch.tensor([label_index[label] for label in view_labels])
        activations = torch.cat(cached)
        del cached
        front_s = time.perf_counter() - started
        logger.info("image tuning: %d views of %d photos through the frozen front in %.0f s", len(targets),
                    photo_count, front_s)

        trained = tail.parameters()
        for parameter in trained:
            parameter.requires_grad_(True)
        head = torch.nn.Parameter(torch.randn(len(label_names), 1280) * 0.02)
        optimizer = torch.optim.AdamW(
            [
                {"params": trained, "lr": config.learning_rate, "weight_decay": config.weight_decay},
                {"params": [head], "lr": config.head_learning_rate, "weight_decay": 0.0},
            ]
        )
        steps_per_epoch = -(-len(targets) // config.batch_size)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[config.learning_rate, config.head_learning_rate],
            total_steps=steps_per_epoch * config.epochs, pct_start=0.1,
        )
        generator = torch.Generator().manual_seed(config.seed)
        normalize = torch.nn.functional.normalize
        history: List[Dict[str, float]] = []
        for epoch in range(1, config.epochs + 1):
            order = torch.randperm(len(targets), generator=generator)
            total_loss, correct = 0.0, 0
            for start in range(0, len(order), config.batch_size):
                rows = order[start : start + config.batch_size]
                embedding = tail.embed(activations[rows].to(torch.float32))
                logits = config.scale * normalize(embedding, dim=1) @ normalize(head, dim=1).T
                loss = torch.nn.functional.cross_entropy(logits, targets[rows],
                                                         label_smoothing=config.label_smoothing)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
                total_loss += float(loss.detach()) * len(rows)
                correct += int((logits.argmax(dim=1) == targets[rows]).sum())
            history.append(finish_epoch("tune-images", epoch, config.epochs, total_loss, correct,
                                        len(targets), started, logger, progress))
        report = {
            "format_version": FORMAT_VERSION,
            "base_weights": str(base_weights),
            "base_weights_sha256": file_fingerprint(base_weights),
            "labels": label_names,
            "photos": photo_count,
            "views": len(targets),
            "data_sha256": data_digest,
            "config": asdict(config),
            "history": history,
            "front_seconds": round(front_s, 1),
            "seconds": round(time.perf_counter() - started, 1),
            "objective": "cosine-softmax cross-entropy over the pooled 1280-d embedding; blocks before "
                         f"{config.first_tuned_block} frozen",
        }
        state = {key: value.detach().contiguous() for key, value in net.state_dict().items()}
        _save(state, report, Path(out_dir))
        return report


def _save(state: Dict[str, Any], report: Dict[str, Any], out_dir: Path) -> None:
    """Writes the weights and the report next to `out_dir`, then swaps the directory into place."""
    from safetensors.torch import save_file

    with staged_directory(out_dir) as staging:
        save_file(state, str(staging / WEIGHTS_FILE), metadata={"format": "pt"})
        write_report(staging, report)
