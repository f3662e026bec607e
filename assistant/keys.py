"""The names that travel between channels, NLU components, policies, actions and the agent console.

One message passes through many hands: a channel writes references into the message metadata, NLU components
add their results to the message (and, with ``add_to_output=True``, to the parse result that the tracker
keeps), policies and actions read them back. Every such key and every status value is defined here once; a
module that needs one imports it from here instead of spelling the string again. docs/architecture.md
describes what each key holds.

Nothing in this module imports Rasa, so channels, actions and the media package can use it.
"""
from __future__ import annotations

from typing import FrozenSet

# ---------------------------------------------------------------------------------------------------------
# Message metadata (written by channels)
# ---------------------------------------------------------------------------------------------------------
#: Message attribute (Rasa's ``METADATA``) holding what the channel sent beside the text.
METADATA = "metadata"
#: ``metadata[ATTACHMENTS]``: attachment references ``{"type", "id" | "url", "mime_type", "size", "name"}``.
ATTACHMENTS = "attachments"
#: ``metadata[ATTACHMENT_PROBLEMS]`` and output: ``[{"type", "code", "message"}]`` per rejected attachment.
ATTACHMENT_PROBLEMS = "attachment_problems"

# ---------------------------------------------------------------------------------------------------------
# What NLU components add to a message (parse result keys unless noted)
# ---------------------------------------------------------------------------------------------------------
#: SpeechRecognizer: ``{"text", "confidence", "duration_s"}`` of the voice notes of a message.
TRANSCRIPT = "transcript"
#: TextSanitizer: ``True`` when the message text was cut to the configured length.
TEXT_TRUNCATED = "text_truncated"
#: Message attribute of the ImageFeaturizer's dense sentence feature (not in the parse result).
IMAGE = "image"
#: ImageFeaturizer: top-5 ImageNet labels per accepted image, ``[[{"label", "confidence"}]]``.
IMAGE_LABELS = "image_labels"
#: ImageFeaturizer: one pooled embedding per accepted image, ``float32 (n_images, dims)`` (not in the output).
IMAGE_EMBEDDINGS = "image_embeddings"
#: MultimodalFusionClassifier: ``{"label", "confidence"}``; also the metadata key of labelled examples.
SENTIMENT = "sentiment"
#: ProductRecognizer: ``{"status", "method", "sku", "name", "confidence", "candidates"}`` for a photo.
PRODUCT_RECOGNITION = "product_recognition"
#: ProductRecognizer: ``[{"sku", "score"}]`` best first, for the ``similar_products`` intent.
SIMILAR_PRODUCTS = "similar_products"
#: ProductRecognizer: ``{"sku", "name", "query", "source"}``: the product the similar products are similar to.
SIMILAR_TO = "similar_to"
#: OutOfScopeDetector: ``{"familiarity", "similarity", "oos_similarity", "verdict"}`` of a message with text.
SCOPE_CHECK = "scope_check"
#: AttachmentRouter: the first ``attachment_problems`` entry of a message left with nothing usable.
ATTACHMENT_PROBLEM = "attachment_problem"
#: MultiRequestCollector: the requests of a message that asks for several things ("where is order 10023 and
#: cancel 10027"), in the order asked: ``[{"intent", "confidence", "text", "start", "end", "order_numbers",
#: "entities"}]``; only set when the message holds at least two order requests (see components/multi_request.py).
REQUESTS = "requests"
#: Message attribute (not in the output) of the clause messages the ClauseSplitter adds to a parse batch:
#: ``{"parent": <id of the message>, "start", "end"}`` (character offsets into the parent's text).
CLAUSE_OF = "clause_of"

#: ``metadata[CUSTOMER]``: ``{"id": <customer id>}`` of a customer the shop's site vouched for with a signed token;
#: set by channels only, after checking the token (never from client-sent metadata).
CUSTOMER = "customer"

#: Slot set to ``True`` by "delete my data" once the customer's data is erased: the SQL tracker store then deletes
#: the whole conversation instead of saving it (``stores.tracker.SQLConversationStore``).
ERASE_CONVERSATION_SLOT = "erase_conversation"

#: Keys that only the channel and the NLU components may set; a client's values for them are dropped.
RESERVED_METADATA_KEYS: FrozenSet[str] = frozenset(
    {ATTACHMENTS, ATTACHMENT_PROBLEMS, TRANSCRIPT, IMAGE_LABELS, CUSTOMER}
)

# ---------------------------------------------------------------------------------------------------------
# Entities
# ---------------------------------------------------------------------------------------------------------
#: Entity (and slot) naming a catalog product; the ProductRecognizer adds one for a recognised photo.
PRODUCT_ENTITY = "product"
#: ``extractor`` of the entities the ProductRecognizer adds (its class name); actions trust only those.
PRODUCT_RECOGNIZER_EXTRACTOR = "ProductRecognizer"

# ---------------------------------------------------------------------------------------------------------
# Intents that components set or react to
# ---------------------------------------------------------------------------------------------------------
#: A message with no text and at least one decoded photo.
INTENT_SEND_IMAGE = "send_image"
#: A message with no text whose every attachment was rejected.
INTENT_ATTACHMENT_PROBLEM = "attachment_problem"
#: A message with no text and no attachment.
INTENT_EMPTY_MESSAGE = "empty_message"
#: A message the server had no capacity to read (worker pool full or past its deadline).
INTENT_SERVER_BUSY = "server_busy"
#: The request for products similar to one named, shown or discussed.
INTENT_SIMILAR_PRODUCTS = "similar_products"

# ---------------------------------------------------------------------------------------------------------
# Status values
# ---------------------------------------------------------------------------------------------------------
#: ``product_recognition["status"]``: one product is named with enough confidence.
RECOGNISED = "recognised"
#: ``product_recognition["status"]``: a few candidates, none sure enough.
UNCERTAIN = "uncertain"
#: ``product_recognition["status"]``: the photo matches no catalog product.
UNKNOWN = "unknown"
#: ``product_recognition["method"]``: nearest catalog photos.
METHOD_KNN = "knn"
#: ``product_recognition["method"]``: ImageNet labels mapped to product kinds.
METHOD_IMAGENET_LABEL = "imagenet_label"

#: Sentiment labels, as the fusion classifier predicts them by default and data/sentiment.yml labels examples.
NEGATIVE = "negative"
NEUTRAL = "neutral"
POSITIVE = "positive"
SENTIMENT_LABELS = (NEGATIVE, NEUTRAL, POSITIVE)

# ---------------------------------------------------------------------------------------------------------
# Attachment types
# ---------------------------------------------------------------------------------------------------------
#: ``attachments[i]["type"]`` of a photo.
IMAGE_ATTACHMENT = "image"
#: ``attachments[i]["type"]`` of a voice note.
AUDIO_ATTACHMENT = "audio"
ATTACHMENT_TYPES = (IMAGE_ATTACHMENT, AUDIO_ATTACHMENT)
