"""``SQLConversationStore``: the tracker store every server uses by default (SQLite file, or PostgreSQL).

Rasa's ``SQLTrackerStore`` with four changes that a shop in production needs:

1. **Strict.** Rasa wraps every tracker store in ``FailSafeTrackerStore``, which answers a failed read with a
   new, empty conversation and a failed write with process memory: a database outage silently forgets customers
   mid-conversation. This store is left unwrapped (:func:`install_strict_tracker_store`), so the error reaches
   the channel, which answers "I'm having trouble right now" and saves nothing; the customer's next try
   continues where the conversation was. Unreachable at start-up: :class:`~stores.errors.StoreUnavailable`
   after :data:`~stores.settings.CONNECT_TIMEOUT_S` instead of Rasa's endless retry loop.
2. **Serialised saves on PostgreSQL.** Rasa finds the new events of a save by counting the stored rows, so two
   concurrent saves of one conversation duplicate or drop events. Each save here first takes a transaction-level
   advisory lock on the conversation (``pg_advisory_xact_lock``); the lease lock store already keeps two servers
   from handling one conversation, this keeps the rows right even if a lease lapses mid-turn.
3. **Off the event loop.** Queries and tracker (de)serialisation run in a small thread pool instead of blocking
   the server's event loop for every turn.
4. **Configured by environment** (:mod:`stores.settings`): ``TRACKER_STORE_URL``, default ``var/tracker.db``;
   SQLite runs in WAL mode with a busy timeout. The ``events`` table and its ``sender_id`` index are Rasa's.

endpoints.yml::

    tracker_store:
      type: stores.tracker.SQLConversationStore
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Text, TypeVar

import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore, create_engine_kwargs
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from assistant.keys import ERASE_CONVERSATION_SLOT
from stores import settings
from stores.errors import StoreUnavailable, wait_until_answering

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Threads for database work (per server process).
DB_THREADS = 4

#: Seconds libpq waits for a PostgreSQL server to complete a connection.
POSTGRES_CONNECT_TIMEOUT_S = 5

#: Milliseconds SQLite waits for another writer before it reports "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 5000


class SQLConversationStore(SQLTrackerStore):
    """Conversations in an SQL database: a restart continues every conversation where it was.

    Args:
        domain: The assistant's domain (Rasa passes it).
        host: endpoints.yml's ``url``: an SQLAlchemy URL that wins over ``TRACKER_STORE_URL``.
        event_broker: Rasa's event broker, if configured.
        url: Same as ``host`` (for code); ``host`` wins.
        connect_timeout_s: Seconds to wait for the database at start-up.
        **kwargs: Other endpoints.yml keys, passed to Rasa's ``TrackerStore``.

    Raises:
        StoreUnavailable: when the database does not answer within ``connect_timeout_s``, or the URL is not an
            SQLAlchemy URL.
    """

    def __init__(
        self,
        domain: Optional[Domain] = None,
        host: Optional[Text] = None,
        event_broker: Optional[EventBroker] = None,
        url: Optional[Text] = None,
        connect_timeout_s: float = settings.CONNECT_TIMEOUT_S,
        **kwargs: Any,
    ) -> None:
        install_strict_tracker_store()
        self.url = host or url or settings.tracker_store_url()
        try:
            self.engine = _engine(self.url)
        except sa.exc.ArgumentError as error:
            raise StoreUnavailable(
                f"TRACKER_STORE_URL is not an SQLAlchemy URL ({str(error).splitlines()[0][:160]}); write it as "
                "sqlite:///path/to/file.db or postgresql://user@host:5432/database"
            ) from None
        wait_until_answering(
            functools.partial(_select_one, self.engine),
            float(connect_timeout_s),
            (sa.exc.SQLAlchemyError,),
            f"the tracker store at {self.engine.url!r}",
        )
        try:
            self.Base.metadata.create_all(self.engine)
        except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError) as error:
            # several servers starting at once may race to create the table; one of them wins
            logger.info("Tracker store tables not created by this server (%s)", type(error).__name__)
        self.sessionmaker = sa.orm.sessionmaker(bind=self.engine)
        self._executor = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="tracker-store")
        TrackerStore.__init__(self, domain, event_broker, **kwargs)
        logger.info("Tracker store: %s", self.engine.url.__repr__())

    # ---- work in threads -------------------------------------------------------------------------------
    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    async def _retrieve(
        self, sender_id: Text, fetch_events_from_all_sessions: bool
    ) -> Optional[DialogueStateTracker]:
        return await self._in_thread(self._retrieve_now, sender_id, fetch_events_from_all_sessions)

    def _retrieve_now(self, sender_id: Text, all_sessions: bool) -> Optional[DialogueStateTracker]:
        with self.session_scope() as session:
            rows = (
                self._event_query(session, sender_id, fetch_events_from_all_sessions=all_sessions)
                .with_entities(self.SQLEvent.data)
                .all()
            )
        if not rows or not self.domain:
            return None
        return DialogueStateTracker.from_dict(sender_id, [json.loads(row.data) for row in rows], self.domain.slots)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Appends the tracker's events that are not stored yet (one transaction)."""
        await self.stream_events(tracker)
        await self._in_thread(self._save_now, tracker)

    def _save_now(self, tracker: DialogueStateTracker) -> None:
        if erasure_requested(tracker):
            deleted = self.delete_conversation(tracker.sender_id)
            logger.info("Conversation %.40s erased on request (%d events deleted)", tracker.sender_id, deleted)
            return
        with self.session_scope() as session:
            for event in list(self._additional_events(session, tracker)):
                data = event.as_dict()
                session.add(
                    self.SQLEvent(
                        sender_id=tracker.sender_id,
                        type_name=event.type_name,
                        timestamp=data.get("timestamp"),
                        intent_name=(data.get("parse_data") or {}).get("intent", {}).get(INTENT_NAME_KEY),
                        action_name=data.get("name"),
                        data=json.dumps(data),
                    )
                )
            session.commit()

    def _additional_events(self, session: "sa.orm.Session", tracker: DialogueStateTracker) -> Iterator:
        if session.get_bind().dialect.name == "postgresql":
            # held until this save's transaction ends: concurrent saves of one conversation run one by one
            session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:sender))"), {"sender": tracker.sender_id})
        return super()._additional_events(session, tracker)

    async def keys(self):  # type: ignore[override]
        """Every stored conversation id (one query, in a thread)."""
        return await self._in_thread(self._keys_now)

    def _keys_now(self):
        with self.session_scope() as session:
            return [sender for (sender,) in session.query(self.SQLEvent.sender_id).distinct()]

    async def ping(self) -> None:
        """Raises :class:`~stores.errors.StoreUnavailable` when the database does not answer ``SELECT 1``."""
        try:
            await self._in_thread(_select_one, self.engine)
        except sa.exc.SQLAlchemyError as error:
            raise StoreUnavailable(f"tracker store does not answer: {type(error).__name__}") from error

    def purge_inactive(self, before: float, batch: int = 500) -> int:
        """Deletes every conversation whose latest event is older than ``before`` (Unix time, seconds).

        Returns:
            How many conversations were deleted (all their events, every session).
        """
        latest = sa.func.max(self.SQLEvent.timestamp)
        with self.session_scope() as session:
            stale = [
                sender
                for (sender,) in session.execute(
                    sa.select(self.SQLEvent.sender_id).group_by(self.SQLEvent.sender_id).having(latest < before)
                )
            ]
            for start in range(0, len(stale), batch):
                chunk = stale[start : start + batch]
                session.execute(sa.delete(self.SQLEvent).where(self.SQLEvent.sender_id.in_(chunk)))
            session.commit()
        return len(stale)

    async def has_user_message(self, sender_id: Text, message_id: Text) -> bool:
        """Whether any session of ``sender_id`` holds a user event with ``message_id`` (one indexed query, no
        tracker deserialised; for :func:`channels.dedupe.replies_in_tracker`)."""
        return await self._in_thread(self._has_user_message_now, sender_id, message_id)

    def _has_user_message_now(self, sender_id: Text, message_id: Text) -> bool:
        needle = json.dumps({"message_id": message_id})[1:-1]  # '"message_id": "<id>"' as json.dumps writes it
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self.session_scope() as session:
            row = (
                session.query(self.SQLEvent.id)
                .filter(
                    self.SQLEvent.sender_id == sender_id,
                    self.SQLEvent.type_name == "user",
                    self.SQLEvent.data.like(f"%{escaped}%", escape="\\"),
                )
                .first()
            )
        return row is not None

    def delete_conversation(self, sender_id: Text) -> int:
        """Deletes every stored event of ``sender_id`` (all sessions); returns how many rows went."""
        with self.session_scope() as session:
            deleted = session.execute(sa.delete(self.SQLEvent).where(self.SQLEvent.sender_id == sender_id))
            session.commit()
            return int(deleted.rowcount or 0)


def erasure_requested(tracker: DialogueStateTracker) -> bool:
    """Whether the latest turn of ``tracker`` set :data:`assistant.keys.ERASE_CONVERSATION_SLOT` to true ("delete
    my data" erased the customer's data: the conversation's history goes too)."""
    from rasa.shared.core.events import SlotSet, UserUttered

    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            return False
        if isinstance(event, SlotSet) and event.key == ERASE_CONVERSATION_SLOT and event.value is True:
            return True
    return False


def _engine(url: str) -> "sa.engine.Engine":
    """The SQLAlchemy engine: pre-ping (a server restart costs no failed turn); SQLite in WAL mode."""
    kwargs: Dict[str, Any] = dict(create_engine_kwargs(url))
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database in (None, "", ":memory:"):
            kwargs.update(poolclass=sa.pool.StaticPool, connect_args={"check_same_thread": False})
        else:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            # connections are kept and reused (SQLAlchemy 1.4 opens a new one per session for a SQLite file:
            # a connect, the pragmas and a close on every query cost a quarter of a turn under load)
            kwargs.update(
                poolclass=sa.pool.QueuePool,
                pool_size=DB_THREADS,
                max_overflow=DB_THREADS,
                connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            )
    else:
        kwargs["pool_pre_ping"] = True
        if url.startswith("postgresql"):
            # a server that accepts the connection but never answers must not hang start-up or a turn
            connect_args = dict(kwargs.get("connect_args") or {})
            connect_args.setdefault("connect_timeout", int(POSTGRES_CONNECT_TIMEOUT_S))
            kwargs["connect_args"] = connect_args
    engine = sa.create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _select_one(engine: "sa.engine.Engine") -> None:
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))


_ORIGINAL_CREATE_TRACKER_STORE = None


def install_strict_tracker_store() -> None:
    """Makes Rasa's ``Agent`` use a :class:`SQLConversationStore` as it is, not inside ``FailSafeTrackerStore``.

    Other tracker stores keep Rasa's wrapper. Idempotent; called by the store's constructor, which runs before
    Rasa builds the ``Agent``.
    """
    global _ORIGINAL_CREATE_TRACKER_STORE
    from rasa.core.agent import Agent

    if _ORIGINAL_CREATE_TRACKER_STORE is not None:
        return
    original = Agent.__dict__["_create_tracker_store"].__func__
    _ORIGINAL_CREATE_TRACKER_STORE = original

    def _create_tracker_store(store: Optional[TrackerStore], domain: Domain) -> TrackerStore:
        if isinstance(store, SQLConversationStore):
            store.domain = domain
            return store
        return original(store, domain)

    Agent._create_tracker_store = staticmethod(_create_tracker_store)
