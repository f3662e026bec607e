"""Candidate retrieval for the product look-up, through the database's own text search.

The repository finds "the product a customer means" in two steps, so that the work per look-up stays bounded
however large the catalog is:

1. **Candidates** (this module): at most ``limit`` product ids whose stored ``products.search_text``
   (:func:`shop.matching.search_text`: the normalised tokens of name, kind and categories) shares enough
   character trigrams with one of the query's normalised tokens, best first.

   * SQLite: an external-content FTS5 table ``products_search`` with the ``trigram`` tokenizer (SQLite 3.34 or
     newer), kept in step with ``products`` by three triggers. The query ORs the trigrams of every query token
     and orders by FTS5's ``rank`` (BM25), so a one-letter typo still shares most trigrams with the word.
   * PostgreSQL: the ``pg_trgm`` extension and a GIN ``gin_trgm_ops`` index on ``products.search_text``; the
     query ORs ``search_text %> token`` (word similarity at least :data:`PG_WORD_SIMILARITY_MIN`, index
     assisted) and orders by the summed word-similarity distance ``<->>`` of the tokens, shorter texts
     first.
   * Any other database: no candidate query (:func:`candidate_ids` returns None) and the caller ranks the
     whole catalog, as before this module existed.

2. **Re-ranking** (:func:`shop.matching.rank`): the candidates are scored with the tolerant matcher (plurals,
   spelling variants and synonyms, filler words, rapidfuzz token similarity), which decides the match, its
   threshold and the suggestions.

Trigram retrieval comes from the pg_trgm documentation (word similarity, F.35) and SQLite's FTS5 trigram
tokenizer (https://sqlite.org/fts5.html, section 4.3.4).

:func:`ensure_search_index` creates the index objects idempotently and refreshes stale search texts; it runs
in :func:`shop.seed.create_and_seed` (``make db``) after the tables are created.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any, Dict, Iterable, List, Optional, Sequence

from sqlalchemy import column, func, inspect, literal, or_, select, table, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from shop import matching
from shop.models import SEARCH_FIELDS, Product

logger = logging.getLogger(__name__)

#: Candidates fetched per look-up and handed to the re-ranking.
CANDIDATE_LIMIT = 100
#: pg_trgm word similarity a product's search text needs with one query token to be a candidate. A one-letter
#: substitution in the middle of a five-letter word keeps 3 of its 6 trigrams (0.5).
PG_WORD_SIMILARITY_MIN = 0.4
#: Most distinct trigrams put into one SQLite FTS5 query (a 256-character query has at most ~250).
MAX_FTS_TERMS = 64
#: The SQLite FTS5 table of the search texts (external content: ``products``).
FTS_TABLE = "products_search"
#: The PostgreSQL trigram index on ``products.search_text``.
TRGM_INDEX = "ix_products_search_text_trgm"
#: Rows updated per statement when search texts are refreshed.
_REFRESH_BATCH = 1000

_SQLITE_DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
    "search_text, content='products', content_rowid='id', tokenize='trigram')",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_ai AFTER INSERT ON products BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, search_text) VALUES (new.id, new.search_text); END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_ad AFTER DELETE ON products BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, search_text) VALUES ('delete', old.id, old.search_text); END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_au AFTER UPDATE OF id, search_text ON products BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, search_text) VALUES ('delete', old.id, old.search_text); "
    f"INSERT INTO {FTS_TABLE}(rowid, search_text) VALUES (new.id, new.search_text); END",
)
_FTS = table(FTS_TABLE, column("rowid"), column("rank"), column(FTS_TABLE))


# ------------------------------------------------------------------------------------------------- schema


def ensure_search_index(engine: Engine) -> int:
    """Create the look-up's index objects when missing and bring every stored search text up to date.

    Idempotent. A ``products`` table made before the column existed gets ``search_text`` added; rows whose
    stored text differs from :func:`shop.matching.search_text` of their fields (a new column, a normalisation
    rule changed in :mod:`shop.matching`, a Core update that left it stale) are rewritten. Then SQLite gets
    the FTS5 table and its triggers (indexing the existing rows when the table is new), PostgreSQL the
    ``pg_trgm`` extension (in schema ``public`` when it exists, so that throw-away schemas can share it) and
    the GIN index.

    Args:
        engine: Engine of the shop database; the ``products`` table must exist.

    Returns:
        Number of products whose search text was rewritten.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: The database refused a statement (e.g. no right to create the
            extension: ask an administrator to run ``CREATE EXTENSION pg_trgm`` once).
        RuntimeError: SQLite without FTS5's trigram tokenizer (SQLite older than 3.34).
    """
    with engine.begin() as connection:
        columns = {item["name"] for item in inspect(connection).get_columns("products")}
        if "search_text" not in columns:
            connection.execute(text("ALTER TABLE products ADD COLUMN search_text TEXT NOT NULL DEFAULT ''"))
            logger.info("Added products.search_text")
        refreshed = _refresh_search_texts(connection)
        if connection.dialect.name == "sqlite":
            _ensure_sqlite(connection)
        elif connection.dialect.name == "postgresql":
            _ensure_postgres(connection)
        else:
            logger.warning("No text index for %s: product look-ups scan the catalog", connection.dialect.name)
    if refreshed:
        logger.info("Refreshed the search text of %d products", refreshed)
    return refreshed


def _refresh_search_texts(connection: Connection) -> int:
    fields = [getattr(Product, name) for name in SEARCH_FIELDS]
    stale: List[Dict[str, Any]] = []
    for row in connection.execute(select(Product.id, Product.search_text, *fields)):
        wanted = matching.search_text(*(getattr(row, name) for name in SEARCH_FIELDS))
        if row.search_text != wanted:
            stale.append({"row_id": row.id, "wanted": wanted})
    statement = text("UPDATE products SET search_text = :wanted WHERE id = :row_id")
    for start in range(0, len(stale), _REFRESH_BATCH):
        connection.execute(statement, stale[start : start + _REFRESH_BATCH])
    return len(stale)


def _ensure_sqlite(connection: Connection) -> None:
    existed = bool(
        connection.execute(
            text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"), {"name": FTS_TABLE}
        ).first()
    )
    try:
        for statement in _SQLITE_DDL:
            connection.execute(text(statement))
    except OperationalError as exc:  # "no such tokenizer: trigram" (or no FTS5 at all)
        if "tokenizer" in str(exc) or "fts5" in str(exc):
            raise RuntimeError(
                f"SQLite {sqlite3.sqlite_version} has no FTS5 trigram tokenizer; the product look-up needs"
                " SQLite 3.34 or newer"
            ) from exc
        raise
    if not existed:
        connection.execute(text(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')"))
        logger.info("Created the FTS5 table %s", FTS_TABLE)


def _ensure_postgres(connection: Connection) -> None:
    schema = trigram_schema(connection)
    if schema is None:
        has_public = connection.execute(
            text("SELECT 1 FROM pg_namespace WHERE nspname = 'public'")
        ).first()
        connection.execute(
            text("CREATE EXTENSION IF NOT EXISTS pg_trgm" + (" WITH SCHEMA public" if has_public else ""))
        )
        schema = trigram_schema(connection)
        logger.info("Created the extension pg_trgm in schema %s", schema)
    quoted = connection.dialect.identifier_preparer.quote_schema(schema)
    connection.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS {TRGM_INDEX} ON products USING gin (search_text {quoted}.gin_trgm_ops)"
        )
    )


def trigram_schema(connection: Connection) -> Optional[str]:
    """The schema that holds the ``pg_trgm`` extension's functions and operators, or None when it is not
    installed in this PostgreSQL database."""
    return connection.execute(
        text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_trgm'"
        )
    ).scalar()


# ------------------------------------------------------------------------------------------------- queries


def fts_match_expression(tokens: Sequence[str]) -> Optional[str]:
    """The FTS5 MATCH expression that ORs the trigrams of the query tokens.

    Tokens come from :func:`shop.matching.query_tokens` (letters and digits only), and each trigram is
    quoted as an FTS5 string (``"`` doubled), so no input can reach FTS5's query syntax. A token of two
    characters becomes the three-character phrase ``"<token> "`` (the token at a word's end).

    Args:
        tokens: Normalised query tokens.

    Returns:
        E.g. ``'"str" OR "tra" OR ...'``, at most :data:`MAX_FTS_TERMS` terms; None for no usable token.
    """
    terms: Dict[str, None] = {}
    for token in tokens:
        if len(token) < 3:
            terms.setdefault(token + " ")
            continue
        for start in range(len(token) - 2):
            terms.setdefault(token[start : start + 3])
    quoted = ['"' + term.replace('"', '""') + '"' for term in list(terms)[:MAX_FTS_TERMS]]
    return " OR ".join(quoted) or None


def _operator(schema: str, name: str) -> str:
    return f"OPERATOR({schema}.{name})"


def candidate_ids(
    session: Session,
    tokens: Sequence[str],
    conditions: Iterable[Any] = (),
    limit: int = CANDIDATE_LIMIT,
    trgm_schema: Optional[str] = None,
) -> Optional[List[int]]:
    """Ids of the products most likely meant by the query tokens, best first.

    Args:
        session: Open session of the shop database.
        tokens: :func:`shop.matching.query_tokens` of the query (non-empty).
        conditions: Further SQLAlchemy conditions on ``Product`` (category, stock), applied before the limit.
        limit: Most ids returned.
        trgm_schema: On PostgreSQL, the schema of ``pg_trgm`` (:func:`trigram_schema`).

    Returns:
        Up to ``limit`` product ids; None when this database has no text index to ask (the caller then ranks
        every product that meets ``conditions``).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: The query failed (e.g. the index objects were never created: run
            ``make db``).
    """
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        expression = fts_match_expression(tokens)
        if expression is None:
            return []
        statement = (
            select(Product.id)
            .join(_FTS, _FTS.c.rowid == Product.id)
            .where(_FTS.c[FTS_TABLE].op("MATCH")(expression), *conditions)
            .order_by(_FTS.c.rank)
            .limit(limit)
        )
        return list(session.execute(statement).scalars())
    if dialect == "postgresql" and trgm_schema:
        quoted = session.get_bind().dialect.identifier_preparer.quote_schema(trgm_schema)
        session.execute(
            select(func.set_config("pg_trgm.word_similarity_threshold", str(PG_WORD_SIMILARITY_MIN), True))
        )
        similar, distance = _operator(quoted, "%>"), _operator(quoted, "<->>")
        # search_text <->> token is 1 - word_similarity(token, search_text)
        distances = [Product.search_text.op(distance)(literal(token)) for token in tokens]
        statement = (
            select(Product.id)
            .where(or_(*(Product.search_text.op(similar)(literal(token)) for token in tokens)), *conditions)
            .order_by(sum(distances[1:], distances[0]), func.length(Product.search_text), Product.id)
            .limit(limit)
        )
        return list(session.execute(statement).scalars())
    return None


__all__ = [
    "CANDIDATE_LIMIT",
    "PG_WORD_SIMILARITY_MIN",
    "FTS_TABLE",
    "TRGM_INDEX",
    "ensure_search_index",
    "trigram_schema",
    "fts_match_expression",
    "candidate_ids",
]
