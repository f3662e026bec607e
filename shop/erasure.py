"""A verified customer's "delete my data": their uploads in the media store and their support transcripts.

The actions decide who the customer is and which uploads are theirs (the attachment ids of their own
conversation); this module does the deleting, because the upload store belongs to :mod:`media`, which the
shop may use and the actions may not. Ticket transcripts are erased by
:meth:`shop.repository.ShopRepository.erase_customer_data`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Optional, Protocol

from media import AttachmentError, default_store

if TYPE_CHECKING:
    from shop.repository import ShopRepository

logger = logging.getLogger(__name__)

#: An upload id as the media store writes it (the SHA-256 of the content, lower-case hex).
UPLOAD_ID_RE = re.compile(r"[0-9a-f]{64}")
#: Most uploads deleted for one request (a conversation has far fewer).
MAX_UPLOADS = 1000


class UploadDeleter(Protocol):
    """What erasure needs of the upload store (:class:`media.AttachmentStore`)."""

    def delete(self, attachment_id: str) -> bool:
        """Delete one upload and its sidecar; True when something was deleted."""


@dataclass(frozen=True)
class ErasureReport:
    """What one "delete my data" request removed.

    Attributes:
        uploads: Uploads deleted from the store (ids already gone are not counted).
        tickets: Support tickets whose transcript, sentiment trail and subject were erased.
    """

    uploads: int
    tickets: int


def delete_uploads(attachment_ids: Iterable[str], store: Optional[UploadDeleter] = None) -> int:
    """Delete uploads from the store, skipping ids that are malformed, repeated or already gone.

    Args:
        attachment_ids: Upload ids (64 lower-case hex characters), e.g. from a conversation's metadata.
        store: The upload store; :func:`media.default_store` (``ATTACHMENT_DIR``) by default.

    Returns:
        How many uploads were deleted.
    """
    wanted = sorted(
        {item for item in attachment_ids if isinstance(item, str) and UPLOAD_ID_RE.fullmatch(item)}
    )
    if not wanted:
        return 0
    store = store if store is not None else default_store()
    deleted = 0
    for attachment_id in wanted[:MAX_UPLOADS]:
        try:
            deleted += bool(store.delete(attachment_id))
        except (AttachmentError, OSError) as error:
            logger.warning("Upload %s… could not be deleted: %s", attachment_id[:12], error)
    return deleted


def erase_customer(
    repository: "ShopRepository",
    customer_ids: Iterable[int],
    *,
    sender_id: str,
    attachment_ids: Iterable[str],
    store: Optional[UploadDeleter] = None,
) -> ErasureReport:
    """Erase a verified customer's uploads and support transcripts.

    Args:
        repository: The shop repository.
        customer_ids: The customers the conversation is verified for (usually one).
        sender_id: The conversation the request came from; its tickets are erased too.
        attachment_ids: The uploads of that conversation.
        store: The upload store; :func:`media.default_store` by default.

    Returns:
        How many uploads and tickets were erased.

    Raises:
        shop.errors.InvalidInput: A malformed customer id or sender id (nothing erased).
    """
    customers = sorted(set(customer_ids))
    tickets = 0
    for index, customer in enumerate(customers):
        tickets += repository.erase_customer_data(customer, sender_id=sender_id if index == 0 else None)
    uploads = delete_uploads(attachment_ids, store)
    logger.info("Erased data of %d customer(s): %d uploads, %d tickets", len(customers), uploads, tickets)
    return ErasureReport(uploads=uploads, tickets=tickets)


__all__ = [
    "UPLOAD_ID_RE",
    "MAX_UPLOADS",
    "UploadDeleter",
    "ErasureReport",
    "delete_uploads",
    "erase_customer",
]
