"""Candidate retrieval for the product look-up, through the database's own text search.

The repository finds "the product a customer means" in steps whose work stays bounded however large the
catalog is:

1. **Correct the words** (:func:`query_groups`): each normalised query token that is a word of the catalog
   stays as it is; any other (a typo, ``strawbery``) is looked up in the vocabulary ``product_terms``
   (:class:`shop.models.ProductTerm`: every word of the products' search texts and every pair of
   neighbouring words written together), and the terms that :func:`shop.matching.token_similarity` accepts
   (at most :data:`MAX_CORRECTIONS`, most similar first) stand for it beside the token itself.

   * SQLite: a contentless FTS5 table ``product_terms_search`` with the ``trigram`` tokenizer over
     `` <term> ``, asked for the two pieces of :func:`fts_token_terms` (one of them survives any one edit).
   * PostgreSQL: the same pieces as ``LIKE`` patterns on `` <term> ``, served by a pg_trgm GIN index.

2. **Candidates** (:func:`candidate_ids`): at most ``limit`` products whose search text holds a phrase of
   every token's group, best first; only when no product holds them all (a word the customer added that the
   catalog has elsewhere), those holding a phrase of any group.

   * SQLite: a contentless FTS5 table ``products_search`` of the search texts' words (``unicode61``
     tokenizer), kept in step by triggers on ``products``; ordered by FTS5's ``rank`` (BM25).
   * PostgreSQL: full-text search (``to_tsvector('simple', search_text)``, GIN index), ordered by
     ``ts_rank``, then shorter texts first.
   * Any other database: no candidate query (:func:`candidate_ids` returns None) and the caller ranks the
     whole catalog, as before this module existed.

3. **Re-ranking** (:func:`shop.matching.rank`, in the repository): the candidates are scored by the tolerant
   matcher (plurals, spelling variants and synonyms, filler words, rapidfuzz token similarity), which decides
   the match, its threshold and the suggestions.

The SQLite trigram tokenizer needs SQLite 3.34 or newer (https://sqlite.org/fts5.html, 4.3.4); pg_trgm and
full-text search are PostgreSQL's (https://www.postgresql.org/docs/current/pgtrgm.html, chapter 12).
:func:`ensure_search_index` creates every index object idempotently and brings the search texts and the
vocabulary up to date; it runs in :func:`shop.seed.create_and_seed` (``make db``).
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from sqlalchemy import column, func, inspect, literal_column, or_, select, table, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from shop import matching
from shop.models import SEARCH_FIELDS, Product, ProductTerm

logger = logging.getLogger(__name__)

#: Candidates fetched per look-up and handed to the re-ranking.
CANDIDATE_LIMIT = 100
#: Vocabulary terms a misspelt query token may be corrected to.
MAX_CORRECTIONS = 5
#: Vocabulary rows read per misspelt token before the similarity check.
MAX_TERM_CANDIDATES = 500
#: The SQLite FTS5 tables of the search texts and of the vocabulary.
FTS_TABLE = "products_search"
TERMS_FTS_TABLE = "product_terms_search"
#: The PostgreSQL indexes: full text of the search texts, trigrams of the vocabulary.
PG_TEXT_INDEX = "ix_products_search_text_fts"
PG_TERMS_INDEX = "ix_product_terms_term_trgm"
#: Tokenizer of the products' FTS5 table: words as :func:`shop.matching.tokenize` writes them (accents kept).
PRODUCTS_TOKENIZER = "unicode61 remove_diacritics 0"
#: Rows written per statement when search texts are refreshed.
_BATCH = 1000
_FTS = table(FTS_TABLE, column("rowid"), column("rank"), column(FTS_TABLE))


def _sqlite_ddl(fts: str, table_name: str, column_name: str, tokenizer: str, on_update: bool) -> List[str]:
    """A contentless FTS5 table over `` <column> `` of a table and the triggers that keep it in step.

    Contentless tables store the index only; deleting a row needs the indexed value, which the triggers have.
    The spaces make the first and last word start and end with a space like every other word.
    """
    new, old = f"' ' || new.{column_name} || ' '", f"' ' || old.{column_name} || ' '"
    insert = f"INSERT INTO {fts}(rowid, {column_name}) VALUES (new.rowid, {new});"
    delete = f"INSERT INTO {fts}({fts}, rowid, {column_name}) VALUES ('delete', old.rowid, {old});"
    statements = [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5("
        f"{column_name}, content='', tokenize='{tokenizer}')",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_ai AFTER INSERT ON {table_name} BEGIN {insert} END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_ad AFTER DELETE ON {table_name} BEGIN {delete} END",
    ]
    if on_update:
        statements.append(
            f"CREATE TRIGGER IF NOT EXISTS {fts}_au AFTER UPDATE OF {column_name} ON {table_name} "
            f"BEGIN {delete} {insert} END"
        )
    return statements


# ------------------------------------------------------------------------------------------------- schema


def ensure_search_index(engine: Engine) -> int:
    """Create the look-up's index objects when missing; bring search texts and the vocabulary up to date.

    Idempotent. A ``products`` table made before the column existed gets ``search_text`` added; rows whose
    stored text differs from :func:`shop.matching.search_text` of their fields (a new column, a normalisation
    rule changed in :mod:`shop.matching`, a Core update that left it stale) are rewritten, and
    ``product_terms`` is made exactly the terms of the current search texts. Before that, SQLite gets the
    FTS5 tables and their triggers (filled from the existing rows when new, then kept in step by the
    triggers), PostgreSQL the ``pg_trgm`` extension (in schema ``public`` when it exists, so throw-away
    schemas can share it) and the two GIN indexes.

    Args:
        engine: Engine of the shop database; the tables must exist (``Base.metadata.create_all``).

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
        if connection.dialect.name == "sqlite":
            _ensure_sqlite(connection)
        elif connection.dialect.name == "postgresql":
            _ensure_postgres(connection)
        else:
            logger.warning("No text index for %s: product look-ups scan the catalog", connection.dialect.name)
        refreshed = _refresh(connection)
    if refreshed:
        logger.info("Refreshed the search text of %d products", refreshed)
    return refreshed


def _refresh(connection: Connection) -> int:
    fields = [getattr(Product, name) for name in SEARCH_FIELDS]
    stale: List[Dict[str, Any]] = []
    terms: Dict[str, str] = {}
    for row in connection.execute(select(Product.id, Product.search_text, *fields)):
        wanted = matching.search_text(*(getattr(row, name) for name in SEARCH_FIELDS))
        terms.update(matching.search_terms(wanted))
        if row.search_text != wanted:
            stale.append({"row_id": row.id, "wanted": wanted})
    statement = text("UPDATE products SET search_text = :wanted WHERE id = :row_id")
    for start in range(0, len(stale), _BATCH):
        connection.execute(statement, stale[start : start + _BATCH])
    known = dict(connection.execute(select(ProductTerm.term, ProductTerm.phrase)).all())
    unused = [{"old": term} for term, phrase in known.items() if terms.get(term) != phrase]
    if unused:
        connection.execute(text("DELETE FROM product_terms WHERE term = :old"), unused)
    fresh = [{"term": term, "phrase": phrase} for term, phrase in terms.items() if known.get(term) != phrase]
    for start in range(0, len(fresh), _BATCH):
        connection.execute(ProductTerm.__table__.insert(), fresh[start : start + _BATCH])
    return len(stale)


def _ensure_sqlite(connection: Connection) -> None:
    for fts, table_name, column_name, tokenizer, on_update in (
        (FTS_TABLE, "products", "search_text", PRODUCTS_TOKENIZER, True),
        (TERMS_FTS_TABLE, "product_terms", "term", "trigram", False),
    ):
        existed = bool(
            connection.execute(
                text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"), {"name": fts}
            ).first()
        )
        try:
            for statement in _sqlite_ddl(fts, table_name, column_name, tokenizer, on_update):
                connection.execute(text(statement))
        except OperationalError as exc:  # "no such tokenizer: trigram", or no FTS5 at all
            raise RuntimeError(
                f"SQLite {sqlite3.sqlite_version}: the product look-up needs FTS5 with the trigram tokenizer"
                f" (SQLite 3.34 or newer): {exc.orig}"
            ) from exc
        if not existed:
            connection.execute(
                text(
                    f"INSERT INTO {fts}(rowid, {column_name}) "
                    f"SELECT rowid, ' ' || {column_name} || ' ' FROM {table_name}"
                )
            )
            logger.info("Created the FTS5 table %s", fts)


def _ensure_postgres(connection: Connection) -> None:
    """The extension and the two GIN indexes. ``fastupdate = off``: a catalog is read far more often than
    written, and rows waiting in a GIN index's pending list make the planner pass the index by until the next
    vacuum."""
    schema = trigram_schema(connection)
    if schema is None:
        has_public = connection.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = 'public'")).first()
        connection.execute(
            text("CREATE EXTENSION IF NOT EXISTS pg_trgm" + (" WITH SCHEMA public" if has_public else ""))
        )
        schema = trigram_schema(connection)
        logger.info("Created the extension pg_trgm in schema %s", schema)
    quoted = connection.dialect.identifier_preparer.quote_schema(schema)
    connection.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS {PG_TEXT_INDEX} ON products "
            "USING gin (to_tsvector('simple', search_text)) WITH (fastupdate = off)"
        )
    )
    connection.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS {PG_TERMS_INDEX} ON product_terms "
            f"USING gin ((' ' || term || ' ') {quoted}.gin_trgm_ops) WITH (fastupdate = off)"
        )
    )


def trigram_schema(connection: Connection) -> Optional[str]:
    """The schema that holds the ``pg_trgm`` extension's operator classes, or None when it is not installed
    in this PostgreSQL database."""
    return connection.execute(
        text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_trgm'"
        )
    ).scalar()


# ------------------------------------------------------------------------------------------------- queries


def fts_token_terms(token: str) -> List[str]:
    """Two substrings of `` <token> `` of which one survives any one edit of the token.

    The token is padded with a space on each side (so are the indexed terms: the spaces mark a word's start
    and end) and cut into two pieces of at least 3 characters: for a padded length of 8 or more the pieces
    before and after its two middle characters, else its first and last 3 characters. One edit
    (substitution, insertion, deletion, swap of neighbours) changes at most two neighbouring characters, so
    one piece is still a substring of the word the customer meant: the pigeonhole filter of q-gram
    approximate matching (G. Navarro, "A guided tour to approximate string matching", ACM Computing Surveys
    33(1), 2001, section 8.3). ``lekon`` → `` le`` / ``on `` finds `` lemon ``; ``strawbery`` → `` str`` /
    ``bery ``, and `` str`` finds `` strawberry ``.

    Args:
        token: A normalised query token (letters and digits only).

    Returns:
        Two pieces, or the whole padded token when it is shorter than 6 characters.
    """
    padded = f" {token} "
    if len(padded) < 6:
        return [padded]
    if len(padded) < 8:
        return [padded[:3], padded[-3:]]
    half = len(padded) // 2
    return [padded[: half - 1], padded[half + 1 :]]


def _fts_string(phrase: str) -> str:
    """An FTS5 string; query phrases hold letters, digits and spaces only, ``"`` is doubled all the same."""
    return '"' + phrase.replace('"', '""') + '"'


def _similar_terms(session: Session, token: str) -> List[Tuple[str, str]]:
    pieces = fts_token_terms(token)
    if session.get_bind().dialect.name == "sqlite":
        statement = text(
            f"SELECT t.term, t.phrase FROM {TERMS_FTS_TABLE} s JOIN product_terms t ON t.rowid = s.rowid "
            f"WHERE {TERMS_FTS_TABLE} MATCH :pattern LIMIT :limit"
        )
        pattern = " OR ".join(_fts_string(piece) for piece in pieces)
        rows = session.execute(statement, {"pattern": pattern, "limit": MAX_TERM_CANDIDATES})
    else:
        padded = literal_column("' '").concat(ProductTerm.term).concat(literal_column("' '"))  # as indexed
        statement = (
            select(ProductTerm.term, ProductTerm.phrase)
            .where(or_(*(padded.like(f"%{piece}%") for piece in pieces)))
            .limit(MAX_TERM_CANDIDATES)
        )
        rows = session.execute(statement)
    return [(term, phrase) for term, phrase in rows]


def query_groups(session: Session, tokens: Sequence[str]) -> List[List[str]]:
    """The catalog phrases each query token may stand for (step 1 of the module docstring).

    Args:
        session: Open session of the shop database.
        tokens: :func:`shop.matching.query_tokens` of the query.

    Returns:
        One list of phrases per token, in token order: the token's own phrase when it is a catalog term
        (``"oatmilk"`` → ``"oat milk"``), else the token and the terms it may be a typo of, most similar
        first.
    """
    statement = select(ProductTerm.term, ProductTerm.phrase).where(ProductTerm.term.in_(tokens))
    known = dict(session.execute(statement).all())
    groups: List[List[str]] = []
    for token in tokens:
        if token in known:
            groups.append([known[token]])
            continue
        phrases = [token]  # a word the vocabulary lacks may still be in a product written with Core
        if len(token) >= matching.FUZZY_MIN_LENGTH:
            similar = _similar_terms(session, token)
            scored = sorted(
                ((matching.token_similarity(token, term), phrase) for term, phrase in similar), reverse=True
            )
            phrases += [phrase for score, phrase in scored if score > 0.0]
        groups.append(list(dict.fromkeys(phrases))[: 1 + MAX_CORRECTIONS])
    return groups


def _sqlite_products(
    session: Session, groups: Sequence[Sequence[str]], conditions: Sequence[Any], limit: int, every: bool
) -> List[int]:
    parts = ["(" + " OR ".join(_fts_string(phrase) for phrase in group) + ")" for group in groups]
    statement = (
        select(Product.id)
        .join(_FTS, _FTS.c.rowid == Product.id)
        .where(_FTS.c[FTS_TABLE].op("MATCH")((" AND " if every else " OR ").join(parts)), *conditions)
        .order_by(_FTS.c.rank)
        .limit(limit)
    )
    return list(session.execute(statement).scalars())


def _postgres_products(
    session: Session, groups: Sequence[Sequence[str]], conditions: Sequence[Any], limit: int, every: bool
) -> List[int]:
    parts = ["(" + " | ".join(" <-> ".join(phrase.split()) for phrase in group) + ")" for group in groups]
    vector = func.to_tsvector(literal_column("'simple'"), Product.search_text)
    query = func.to_tsquery(literal_column("'simple'"), (" & " if every else " | ").join(parts))
    statement = (
        select(Product.id)
        .where(vector.op("@@")(query), *conditions)
        .order_by(func.ts_rank(vector, query).desc(), func.length(Product.search_text), Product.id)
        .limit(limit)
    )
    return list(session.execute(statement).scalars())


def candidate_ids(
    session: Session,
    tokens: Sequence[str],
    conditions: Iterable[Any] = (),
    limit: int = CANDIDATE_LIMIT,
) -> Optional[List[int]]:
    """Ids of the products most likely meant by the query tokens, best first (steps 1 and 2 of the module
    docstring).

    Args:
        session: Open session of the shop database.
        tokens: :func:`shop.matching.query_tokens` of the query (non-empty).
        conditions: Further SQLAlchemy conditions on ``Product`` (category, stock), applied before the limit.
        limit: Most ids returned.

    Returns:
        Up to ``limit`` product ids; None when this database has no text index to ask (the caller then ranks
        every product that meets ``conditions``).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: The query failed (e.g. the index objects were never created: run
            ``make db``).
    """
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        products = _sqlite_products
    elif dialect == "postgresql":
        products = _postgres_products
    else:
        return None
    groups = query_groups(session, tokens)
    if not groups:
        return []
    conditions = list(conditions)
    found = products(session, groups, conditions, limit, every=True)
    if not found and len(groups) > 1:
        found = products(session, groups, conditions, limit, every=False)
    return found


__all__ = [
    "CANDIDATE_LIMIT",
    "MAX_CORRECTIONS",
    "FTS_TABLE",
    "TERMS_FTS_TABLE",
    "ensure_search_index",
    "trigram_schema",
    "fts_token_terms",
    "query_groups",
    "candidate_ids",
]
