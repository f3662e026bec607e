"""The content-addressed upload store: ``root/<id[:2]>/<id>`` plus a JSON sidecar ``<id>.json``.

``id`` is the SHA-256 of the content. Uploads are checked by content (:func:`media.sniff.inspect_upload`)
before they are kept; platform-hosted files are fetched by the guarded downloader (:mod:`media.fetch`) and
stored the same way. Reading verifies the content against its hash and refuses ids, symlinks and paths that
could leave the store. Uploads expire: :meth:`AttachmentStore.purge` removes those not uploaded again since a
cut-off time (``make purge``), :meth:`AttachmentStore.delete` one upload.
"""
from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import logging
import os
import re
import stat
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, Mapping, Optional, Union

import requests
from pydantic import ValidationError

from assistant.files import write_atomically
from assistant.keys import IMAGE_ATTACHMENT
from assistant.paths import VAR_DIR, project_path
from media.errors import AttachmentError, logs_rejections
from media.fetch import download, make_guarded_session
from media.limits import AttachmentLimits
from media.schema import ID_RE, AttachmentRef, describe, normalise_mime, sanitise_name
from media.sniff import MediaInfo, inspect_upload

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_ATTACHMENT_DIR", "AttachmentStore", "default_store"]

#: Where uploads are kept unless ``ATTACHMENT_DIR`` says otherwise.
DEFAULT_ATTACHMENT_DIR = VAR_DIR / "uploads"
#: A shard directory's name: the first two characters of the ids it holds.
_SHARD_RE = re.compile(r"[0-9a-f]{2}")
#: Permissions of a stored upload and its sidecar (rw-------): customers' files are for the server's user.
PRIVATE_FILE_MODE = 0o600


class AttachmentStore:
    """Content-addressed upload store: ``root/<id[:2]>/<id>`` plus a JSON sidecar ``<id>.json``.

    ``id`` is the SHA-256 of the content (64 lower-case hex characters). The sidecar holds ``type``,
    ``mime_type``, ``size`` (bytes), ``name`` (sanitised), and ``width``/``height`` (pixels) or
    ``duration_s`` (seconds). Writes go to ``root/.tmp`` and are renamed into place, so readers never see
    a partial file, and saving the same content twice stores it once.

    Args:
        root: Directory of the store; created if missing. Resolved once (a symlinked root is fine).
        limits: Size, pixel, duration and URL limits; defaults to :class:`AttachmentLimits` defaults.
        session: requests session used by :meth:`fetch_url`; defaults to
            :func:`media.fetch.make_guarded_session`.

    Raises:
        OSError: the store directory cannot be created.
    """

    def __init__(
        self,
        root: Union[str, os.PathLike],
        limits: Optional[AttachmentLimits] = None,
        session: Optional[requests.Session] = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.limits = limits or AttachmentLimits()
        self._session = session
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "AttachmentStore":
        """Build a store from the environment.

        ``ATTACHMENT_DIR``: store directory (default ``<project root>/var/uploads``; a relative path is
        taken relative to the project root). ``ATTACHMENT_ALLOWED_HOSTS``: comma- or space-separated
        host patterns replacing the default allow-list.
        """
        env = os.environ if environ is None else environ
        root = project_path(env.get("ATTACHMENT_DIR") or DEFAULT_ATTACHMENT_DIR)
        hosts = env.get("ATTACHMENT_ALLOWED_HOSTS")
        limits = AttachmentLimits(url_allowed_hosts=hosts) if hosts else AttachmentLimits()
        return cls(root, limits)

    @property
    def session(self) -> requests.Session:
        """The HTTP session used by :meth:`fetch_url` (created on first use)."""
        if self._session is None:
            self._session = make_guarded_session()
        return self._session

    def __repr__(self) -> str:
        return f"AttachmentStore({str(self.root)!r})"

    # ---- saving ------------------------------------------------------------------------------------------
    @logs_rejections
    def save(
        self, data: bytes, name: Optional[str] = None, declared_mime: Optional[str] = None
    ) -> AttachmentRef:
        """Check and store one upload.

        Args:
            data: The file content.
            name: File name as the client gave it; kept (sanitised) for display only.
            declared_mime: MIME type the client claimed; only compared with the content and logged.

        Returns:
            The reference to put in message metadata, with the type and MIME type sniffed from the content.

        Raises:
            AttachmentError: ``empty``; ``too_large`` (bytes over the type's limit, or pixels);
                ``too_long`` (audio seconds); ``no_speech`` (audio without any samples);
                ``unsupported_type``; ``damaged``.
            TypeError: ``data`` is not bytes-like.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        if len(data) > self.limits.max_upload_bytes:
            raise AttachmentError(
                "too_large", f"{len(data)} bytes > {self.limits.max_upload_bytes} bytes", limits=self.limits
            )
        return self._save_chunks([bytes(data)], name, declared_mime, expected_size=None)

    @logs_rejections
    def save_stream(
        self,
        chunks: Iterable[bytes],
        name: Optional[str] = None,
        declared_mime: Optional[str] = None,
        expected_size: Optional[int] = None,
    ) -> AttachmentRef:
        """Store an upload read chunk by chunk, refusing it as soon as it passes the size limit.

        At most ``max_upload_bytes`` plus one chunk is read from ``chunks`` and nothing is kept when the
        upload is refused, so a 1 GB body costs neither memory nor disk.

        Args:
            chunks: The body, e.g. a request stream; bytes-like chunks of any size.
            name: File name as the client gave it (display only).
            declared_mime: MIME type the client claimed (compared with the content, never trusted).
            expected_size: Declared length in bytes (e.g. Content-Length); refused before reading when it
                is over the limit.

        Returns:
            The stored reference.

        Raises:
            AttachmentError: as :meth:`save`.
        """
        if expected_size is not None and expected_size > self.limits.max_upload_bytes:
            raise AttachmentError(
                "too_large",
                f"declared {expected_size} bytes > {self.limits.max_upload_bytes} bytes",
                limits=self.limits,
            )
        return self._save_chunks(chunks, name, declared_mime, expected_size)

    @logs_rejections
    def save_base64(
        self, text: Union[str, bytes], name: Optional[str] = None, declared_mime: Optional[str] = None
    ) -> AttachmentRef:
        """Decode a base64 upload (as the REST channel receives it) and store it.

        Accepts standard or URL-safe alphabets, missing padding, embedded whitespace and a
        ``data:<mime>;base64,`` prefix (whose MIME type is ignored). The encoded length is checked
        against the size limit before anything is decoded.

        Raises:
            AttachmentError: ``damaged`` when the text is not base64; otherwise as :meth:`save`.
        """
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("ascii")
            except UnicodeDecodeError:
                raise AttachmentError("damaged", "base64 payload is not ASCII", limits=self.limits) from None
        if not isinstance(text, str):
            raise AttachmentError("damaged", f"base64 payload is a {type(text).__name__}", limits=self.limits)
        # 4 characters encode 3 bytes; allow generous room for whitespace and a data: prefix.
        if len(text) > (self.limits.max_upload_bytes + 2) // 3 * 4 * 2 + 1024:
            raise AttachmentError("too_large", f"{len(text)} base64 characters", limits=self.limits)
        text = text.strip()
        if text[:5].lower() == "data:":
            header, comma, text = text.partition(",")
            if not comma or ";base64" not in header.lower():
                raise AttachmentError("damaged", "data: URL is not base64-encoded", limits=self.limits)
        compact = "".join(text.split())
        if len(compact) > (self.limits.max_upload_bytes + 2) // 3 * 4:
            raise AttachmentError(
                "too_large", f"{len(compact)} base64 characters decode to > limit", limits=self.limits
            )
        if "-" in compact or "_" in compact:
            compact = compact.replace("-", "+").replace("_", "/")
        compact += "=" * (-len(compact) % 4)
        try:
            data = base64.b64decode(compact.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError) as error:
            raise AttachmentError("damaged", f"invalid base64: {error}", limits=self.limits) from None
        return self.save(data, name=name, declared_mime=declared_mime)

    def _save_chunks(
        self,
        chunks: Iterable[bytes],
        name: Optional[str],
        declared_mime: Optional[str],
        expected_size: Optional[int],
    ) -> AttachmentRef:
        cap = self.limits.max_upload_bytes
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="upload-")
        tmp_path = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    if not isinstance(chunk, (bytes, bytearray, memoryview)):
                        raise TypeError(f"chunks must be bytes, not {type(chunk).__name__}")
                    size += len(chunk)
                    if size > cap:
                        raise AttachmentError(
                            "too_large", f"upload passed {cap} bytes while streaming", limits=self.limits
                        )
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            if size == 0:
                raise AttachmentError("empty", "zero bytes", limits=self.limits)
            if expected_size is not None and expected_size != size:
                logger.info("Upload declared %d bytes but sent %d bytes", expected_size, size)
            media = inspect_upload(tmp_path.read_bytes(), tmp_path, self.limits)
            attachment_id = digest.hexdigest()
            self._install(tmp_path, attachment_id, media, size, sanitise_name(name))
        finally:
            tmp_path.unlink(missing_ok=True)
        declared = normalise_mime(declared_mime)
        if declared and declared != media.mime:
            logger.info(
                "Declared MIME type %s differs from the content (%s); the content wins", declared, media.mime
            )
        return AttachmentRef(
            type=media.type, id=attachment_id, mime_type=media.mime, size=size, name=sanitise_name(name)
        )

    def _install(
        self, tmp_path: Path, attachment_id: str, media: MediaInfo, size: int, name: Optional[str]
    ) -> None:
        shard = self._shard_dir(attachment_id)
        shard.mkdir(exist_ok=True)
        final = shard / attachment_id
        if not (final.is_file() and not final.is_symlink() and final.stat().st_size == size):
            os.replace(tmp_path, final)  # atomic on one file system; identical content may simply win twice
        else:
            os.utime(final)  # sent again: retention (`purge`) counts from the latest upload
        sidecar = shard / f"{attachment_id}.json"
        if not sidecar.exists():
            info = {
                "id": attachment_id,
                "type": media.type,
                "mime_type": media.mime,
                "size": size,
                "name": name,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            if media.type == IMAGE_ATTACHMENT:
                info.update(width=media.width, height=media.height)
            else:
                info["duration_s"] = media.duration_s
            data = json.dumps(info, ensure_ascii=False).encode("utf-8")
            write_atomically(sidecar, data, temporary_dir=self._tmp, mode=PRIVATE_FILE_MODE)

    # ---- reading -----------------------------------------------------------------------------------------
    def _shard_dir(self, attachment_id: str) -> Path:
        shard = self.root / attachment_id[:2]
        if shard.is_symlink():
            raise AttachmentError("invalid_reference", f"shard directory {attachment_id[:2]} is a symlink")
        return shard

    def _checked_path(self, attachment_id: Any) -> Path:
        if not isinstance(attachment_id, str) or not ID_RE.fullmatch(attachment_id):
            shown = repr(attachment_id[:80]) if isinstance(attachment_id, str) else describe(attachment_id)
            raise AttachmentError("invalid_reference", f"id {shown} is not 64 lower-case hex characters")
        path = self._shard_dir(attachment_id) / attachment_id
        if path.is_symlink():
            raise AttachmentError("invalid_reference", f"{attachment_id} is a symlink")
        resolved = path.resolve()
        if resolved.parent.parent != self.root or resolved.name != attachment_id:
            raise AttachmentError("invalid_reference", f"{attachment_id} resolves outside the store")
        return resolved

    @logs_rejections
    def path_for(self, attachment_id: str) -> Path:
        """The path of a stored upload, for tools that need a file (e.g. ffmpeg).

        Args:
            attachment_id: 64 lower-case hex characters; anything else (``../x``, absolute paths) is refused.

        Raises:
            AttachmentError: ``invalid_reference`` (bad id, symlink, path outside the store),
                ``not_found`` (no regular file with that id).
        """
        path = self._checked_path(attachment_id)
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            raise AttachmentError("not_found", f"no upload {attachment_id}") from None
        if not stat.S_ISREG(mode):
            raise AttachmentError("invalid_reference", f"{attachment_id} is not a regular file")
        return path

    @logs_rejections
    def info(self, attachment_id: str) -> Dict[str, Any]:
        """The sidecar of a stored upload: ``type``, ``mime_type``, ``size`` (bytes), ``name`` and
        ``width``/``height`` (pixels) or ``duration_s`` (seconds).

        Raises:
            AttachmentError: as :meth:`path_for`.
        """
        path = self.path_for(attachment_id)
        sidecar = path.with_name(f"{attachment_id}.json")
        if sidecar.is_symlink() or not sidecar.is_file():
            raise AttachmentError("not_found", f"no sidecar for {attachment_id}")
        try:
            info = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise AttachmentError("damaged", f"sidecar of {attachment_id} unreadable: {error}") from None
        if not isinstance(info, dict):
            raise AttachmentError("damaged", f"sidecar of {attachment_id} is not an object")
        return info

    @logs_rejections
    def ref_for(self, attachment_id: str) -> AttachmentRef:
        """A reference rebuilt from the store's own record (trustworthy type, MIME type and size)."""
        info = self.info(attachment_id)
        try:
            return AttachmentRef(
                type=info.get("type"),
                id=attachment_id,
                mime_type=info.get("mime_type"),
                size=info.get("size"),
                name=info.get("name"),
            )
        except ValidationError:
            raise AttachmentError("damaged", f"sidecar of {attachment_id} is invalid") from None

    @logs_rejections
    def read(self, ref: Union[AttachmentRef, str]) -> bytes:
        """The bytes of an attachment.

        Args:
            ref: An :class:`AttachmentRef` or a bare id. A URL reference is fetched first
                (:meth:`fetch_url`). For a reference, the stored type must equal ``ref.type``.

        Returns:
            The content, verified against its SHA-256 id.

        Raises:
            AttachmentError: ``invalid_reference`` (bad id, escapes the store, type differs from the
                stored one), ``not_found``, ``damaged`` (content no longer matches its hash),
                ``too_large``, and for URL references everything :meth:`fetch_url` raises.
        """
        if isinstance(ref, AttachmentRef):
            if ref.id is None:
                fetched = self.fetch_url(ref.url)  # type: ignore[arg-type]
                if fetched.type != ref.type:
                    raise AttachmentError(
                        "invalid_reference",
                        f"URL declared {ref.type} but holds {fetched.type}",
                        attachment_type=ref.type,
                    )
                ref = fetched
            attachment_id = ref.id
            expected_type: Optional[str] = ref.type
        else:
            attachment_id, expected_type = ref, None
        path = self.path_for(attachment_id)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            raise AttachmentError("not_found", f"no upload {attachment_id}") from None
        except OSError as error:
            raise AttachmentError("invalid_reference", f"cannot open {attachment_id}: {error}") from None
        with os.fdopen(fd, "rb") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise AttachmentError("invalid_reference", f"{attachment_id} is not a regular file")
            if status.st_size > self.limits.max_upload_bytes:
                raise AttachmentError(
                    "too_large", f"stored file {attachment_id} is {status.st_size} bytes", limits=self.limits
                )
            data = handle.read(self.limits.max_upload_bytes + 1)
        if hashlib.sha256(data).hexdigest() != attachment_id:
            raise AttachmentError("damaged", f"content of {attachment_id} no longer matches its hash")
        if expected_type is not None:
            stored_type = self.info(attachment_id).get("type")
            if stored_type != expected_type:
                raise AttachmentError(
                    "invalid_reference",
                    f"reference says {expected_type} but {attachment_id} is {stored_type}",
                    attachment_type=expected_type,
                )
        return data

    # ---- retention ---------------------------------------------------------------------------------------
    def delete(self, attachment_id: str) -> bool:
        """Remove one upload and its sidecar.

        Args:
            attachment_id: 64 lower-case hex characters (anything else is refused, as by :meth:`path_for`).

        Returns:
            True when something was removed; False when neither the upload nor its sidecar was there.

        Raises:
            AttachmentError: ``invalid_reference`` (bad id, symlinked shard, a path that leaves the store, or
                something other than a regular file under the upload's name).
        """
        path = self._checked_path(attachment_id)
        removed = self._remove_file(path)
        removed = self._remove_file(path.with_name(f"{attachment_id}.json")) or removed
        if removed:
            logger.info("Deleted upload %s", attachment_id)
            self._remove_if_empty(path.parent)
        return removed

    def purge(self, older_than: datetime) -> int:
        """Remove every upload last saved before ``older_than``, with its sidecar (retention).

        An upload's age is its file's modification time, which saving the same content again renews. A
        sidecar left without its upload is removed once it is older than the cut-off too, and so are
        leftovers of interrupted writes in ``root/.tmp``. Shards and files that are symlinks, and names that
        are not upload ids, are left alone.

        Args:
            older_than: Timezone-aware cut-off; uploads saved strictly before it are removed.

        Returns:
            How many uploads were removed.

        Raises:
            ValueError: ``older_than`` is not a timezone-aware datetime.
            OSError: the store cannot be listed.
        """
        if not isinstance(older_than, datetime) or older_than.utcoffset() is None:
            raise ValueError(f"older_than must be a timezone-aware datetime, got {older_than!r}")
        cutoff = older_than.timestamp()
        removed = 0
        for shard in self._shards():
            for entry in list(os.scandir(shard)):
                name = entry.name
                upload_id = name[:-5] if name.endswith(".json") else name
                if not ID_RE.fullmatch(upload_id) or upload_id[:2] != shard.name:
                    continue
                try:
                    status = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if not stat.S_ISREG(status.st_mode) or status.st_mtime >= cutoff:
                    continue
                try:
                    if name == upload_id:
                        removed += self._remove_file(Path(entry.path))
                        self._remove_file(shard / f"{upload_id}.json")
                    elif not (shard / upload_id).exists():
                        self._remove_file(Path(entry.path))
                except (AttachmentError, OSError) as error:  # one odd entry must not stop the purge
                    logger.warning("Purge left %s in place: %s", name, getattr(error, "detail", error))
            self._remove_if_empty(shard)
        for entry in list(os.scandir(self._tmp)):
            try:
                status = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(status.st_mode) and status.st_mtime < cutoff:
                self._remove_file(Path(entry.path))
        logger.info("Purged %d uploads saved before %s", removed, older_than.isoformat())
        return removed

    def _shards(self) -> Iterator[Path]:
        """The store's shard directories (two lower-case hex characters), symlinks excluded."""
        for entry in sorted(os.scandir(self.root), key=lambda item: item.name):
            if _SHARD_RE.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
                yield Path(entry.path)

    @staticmethod
    def _remove_file(path: Path) -> bool:
        """Unlink ``path`` (never following a symlink); False when it was not there.

        Raises:
            AttachmentError: ``invalid_reference`` when ``path`` is a directory or another non-file.
        """
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            return False
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            raise AttachmentError("invalid_reference", f"{path.name} is not a regular file")
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def _remove_if_empty(self, shard: Path) -> None:
        try:
            shard.rmdir()
        except OSError:  # not empty (the usual case), or already gone
            pass

    # ---- fetching ----------------------------------------------------------------------------------------
    @logs_rejections
    def fetch_url(self, url: str, name: Optional[str] = None) -> AttachmentRef:
        """Download a platform-hosted file (Messenger, Telegram) and store it.

        The download is guarded as :func:`media.fetch.download` describes: every hop ``https://`` on port 443
        to an allowed host whose DNS answers are all public, the connection made only to a checked address,
        the byte cap enforced while reading, and the whole fetch within ``url_timeout_s`` seconds.

        Args:
            url: The file URL. It is never logged in full (Telegram URLs contain the bot token).
            name: Display name; defaults to the last path segment of the URL.

        Returns:
            The stored reference (``id`` set, ``url`` not kept).

        Raises:
            AttachmentError: ``forbidden_url``, ``fetch_failed`` (DNS, connection, timeout, HTTP status,
                too many redirects), ``too_large`` (declared or streamed bytes), and everything
                :meth:`save` raises.
        """
        with download(self.session, url, self.limits) as fetched:
            display_name = name if name is not None else fetched.name
            return self._save_chunks(fetched.chunks, display_name, fetched.content_type, None)


@functools.lru_cache(maxsize=None)
def default_store() -> AttachmentStore:
    """The process-wide store built by :meth:`AttachmentStore.from_env` on first use."""
    return AttachmentStore.from_env()
