"""The parts of `components.fusion_classifier.MultimodalFusionClassifier`, one responsibility per module.

- `features`: reads the sentence features that the featurizers put on Rasa messages into batch arrays
  (`Batch`), the training labels (`sentiment_label_of`, `training_set`);
- `network`: the torch modules (branch projections with their learned "absent" embeddings, the trunk, the wide
  path, the linear and cosine heads, `FusionNetwork`) and the `Architecture` that describes them;
- `inference`: the batched forward pass without gradients, and the torch thread count while it runs;
- `training`: the fit loop (Adam, early stopping, refit on all data), the masked losses, the stratified split
  and modality dropout;
- `persistence`: safetensors + JSON in the component's resource, the format version and the stored key layout.

The constants below fix the column order of the `Batch` arrays, which the network and stored models rely on.
Nothing here imports torch: the network, inference and training modules import it themselves.
"""
from __future__ import annotations

#: Component name used in log lines and error messages.
NAME = "MultimodalFusionClassifier"

#: Input branch of the dense TEXT sentence features (e.g. MiniLM).
TEXT_DENSE = "text_dense"
#: Input branch of the sparse TEXT sentence features (count vectors, regex), concatenated by Rasa.
TEXT_SPARSE = "text_sparse"
#: Input branch of the image sentence features (ImageFeaturizer).
IMAGE_BRANCH = "image"
#: Input branches, in the order of the `present` mask columns.
BRANCHES = (TEXT_DENSE, TEXT_SPARSE, IMAGE_BRANCH)
#: Modality indicators, in the order of the indicator columns (has_text, has_image, has_audio).
MODALITIES = ("text", "image", "audio")

#: Values of the `input_normalization` config key (see `features.FeatureReader`).
NORMALIZATIONS = ("l2", "none")
#: Values of the `intent_head` config key (see `network.intent_head`).
INTENT_HEADS = ("linear", "cosine")
#: Values of the `early_stopping_metric` config key (see `training.fit`).
EARLY_STOPPING_METRICS = ("accuracy", "loss")
