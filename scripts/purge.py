"""Retention (`make purge`, and daily under `make serve`): remove expired uploads and support-ticket transcripts.

- Uploads (photos and voice notes in the upload store, `ATTACHMENT_DIR`) not uploaded again for
  `UPLOAD_RETENTION_DAYS` days (default 30) are deleted with their sidecars (`AttachmentStore.purge`).
- Support tickets created more than `TRANSCRIPT_RETENTION_DAYS` days ago (default 90) lose their conversation
  transcript and sentiment trail; the ticket itself stays for the support team's records
  (`ShopRepository.purge_transcripts`, on `DATABASE_URL`).
- Conversations in the tracker store (`TRACKER_STORE_URL`) without a new message for
  `TRANSCRIPT_RETENTION_DAYS` days are deleted (`SQLConversationStore.purge_inactive`).

With `--every-hours H` it keeps running and purges again every H hours until SIGTERM or SIGINT (how
`scripts/serve.sh` runs it beside the server); a purge that fails is logged and tried again next time.

Usage: python scripts/purge.py [--upload-days N] [--transcript-days N] [--attachment-dir DIR]
       [--database-url URL] [--tracker-url URL] [--every-hours H]
Exit code: 0 done, 1 a purge failed (single run), 2 bad arguments or settings.
"""
from __future__ import annotations

import _bootstrap  # noqa: F401  (the project root on sys.path: scripts/_bootstrap.py)

import argparse
import logging
import os
import signal
import sys
import threading
from datetime import datetime, timedelta, timezone
from typing import Dict, Mapping, Optional, Sequence

logger = logging.getLogger("purge")

#: Days an upload is kept after its last upload, unless UPLOAD_RETENTION_DAYS says otherwise.
DEFAULT_UPLOAD_DAYS = 30.0
#: Days a support ticket keeps its transcript, unless TRANSCRIPT_RETENTION_DAYS says otherwise.
DEFAULT_TRANSCRIPT_DAYS = 90.0


def retention_days(name: str, default: float, environ: Optional[Mapping[str, str]] = None) -> float:
    """The retention in days from the environment variable ``name`` (a positive number), else ``default``.

    Raises:
        ValueError: the variable is set to something that is not a positive number.
    """
    env = os.environ if environ is None else environ
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        days = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a positive number of days, got {raw!r}") from None
    if not days > 0 or days == float("inf"):
        raise ValueError(f"{name} must be a positive number of days, got {raw!r}")
    return days


def purge_once(
    upload_days: float,
    transcript_days: float,
    attachment_dir: Optional[str] = None,
    database_url: Optional[str] = None,
    now: Optional[datetime] = None,
    tracker_url: Optional[str] = None,
) -> Dict[str, int]:
    """One purge of both kinds of data.

    Args:
        upload_days: Uploads saved more than this many days before ``now`` are deleted.
        transcript_days: Tickets created more than this many days before ``now`` lose their transcript.
        attachment_dir: The upload store (default: `ATTACHMENT_DIR` or var/uploads).
        database_url: The shop database (default: `DATABASE_URL` or var/shop.db).
        now: The current time (aware; default: now, UTC).
        tracker_url: The tracker store whose conversations idle for ``transcript_days`` are deleted; ``None``:
            conversations are not purged (the command line passes ``TRACKER_STORE_URL`` or its default).

    Returns:
        ``{"uploads": n, "transcripts": m}`` (and ``"conversations"`` with ``tracker_url``): what was removed;
        -1 for a kind whose purge failed (logged).
    """
    from media import AttachmentStore
    from shop.repository import ShopRepository

    now = now or datetime.now(timezone.utc)
    result = {"uploads": -1, "transcripts": -1}
    try:
        env = dict(os.environ)
        if attachment_dir:
            env["ATTACHMENT_DIR"] = attachment_dir
        store = AttachmentStore.from_env(env)
        result["uploads"] = store.purge(now - timedelta(days=upload_days))
    except Exception as error:  # reported and counted as failed; the transcripts are still purged
        logger.error("Purging uploads failed: %s: %s", type(error).__name__, error)
    try:
        repository = ShopRepository.from_url(database_url)
        result["transcripts"] = repository.purge_transcripts(now - timedelta(days=transcript_days))
    except Exception as error:  # e.g. the database is down: reported, tried again next time
        logger.error("Purging ticket transcripts failed: %s: %s", type(error).__name__, error)
    if tracker_url:
        result["conversations"] = -1
        try:
            from stores.tracker import SQLConversationStore

            tracker = SQLConversationStore(host=tracker_url)
            try:
                result["conversations"] = tracker.purge_inactive((now - timedelta(days=transcript_days)).timestamp())
            finally:
                tracker.engine.dispose()
            logger.info("Retention: %s conversations idle for %g days deleted", result["conversations"],
                        transcript_days)
        except Exception as error:  # e.g. the tracker store is down: reported, tried again next time
            logger.error("Purging conversations failed: %s: %s", type(error).__name__, error)
    logger.info(
        "Retention: %s uploads older than %g days removed, %s ticket transcripts older than %g days cleared",
        _shown(result["uploads"]), upload_days, _shown(result["transcripts"]), transcript_days,
    )
    return result


def _shown(count: int) -> str:
    return "failed:" if count < 0 else str(count)


def main(argv: Optional[Sequence[str]] = None, stop: Optional[threading.Event] = None) -> int:
    """Command-line entry point; returns the exit code (0 ok, 1 a purge failed, 2 bad arguments)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--upload-days", type=float, default=None,
                        help=f"default: UPLOAD_RETENTION_DAYS or {DEFAULT_UPLOAD_DAYS:g}")
    parser.add_argument("--transcript-days", type=float, default=None,
                        help=f"default: TRANSCRIPT_RETENTION_DAYS or {DEFAULT_TRANSCRIPT_DAYS:g}")
    parser.add_argument("--attachment-dir", default=None, help="default: ATTACHMENT_DIR or var/uploads")
    parser.add_argument("--database-url", default=None, help="default: DATABASE_URL or var/shop.db")
    parser.add_argument("--tracker-url", default=None, help="default: TRACKER_STORE_URL or var/tracker.db")
    parser.add_argument("--every-hours", type=float, default=None,
                        help="keep running and purge again every H hours (until SIGTERM/SIGINT)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        upload_days = args.upload_days or retention_days("UPLOAD_RETENTION_DAYS", DEFAULT_UPLOAD_DAYS)
        transcript_days = args.transcript_days or retention_days(
            "TRANSCRIPT_RETENTION_DAYS", DEFAULT_TRANSCRIPT_DAYS
        )
    except ValueError as error:
        parser.error(str(error))
    for flag, value in (("--upload-days", upload_days), ("--transcript-days", transcript_days),
                        ("--every-hours", args.every_hours)):
        if value is not None and not 0 < value < float("inf"):
            parser.error(f"{flag} must be a positive number")

    from stores.settings import tracker_store_url

    tracker_url = args.tracker_url or tracker_store_url()

    def run() -> bool:
        counts = purge_once(upload_days, transcript_days, args.attachment_dir, args.database_url,
                            tracker_url=tracker_url)
        return min(counts.values()) >= 0

    if args.every_hours is None:
        return 0 if run() else 1
    stop = stop or _stop_on_signals()
    while not stop.is_set():
        run()
        stop.wait(args.every_hours * 3600)
    logger.info("Retention: stopped")
    return 0


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT (the server stopping)."""
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    return stop


if __name__ == "__main__":
    sys.exit(main())
