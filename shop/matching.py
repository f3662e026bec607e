"""Tolerant matching of free text against catalog products (pure functions, no database access).

The same normalisation is applied to the customer's words and to the product fields, so both sides meet
halfway:

1. Unicode NFKC, case folding, apostrophes removed, everything that is not a letter or digit becomes a space.
2. Spelling variants and phrases are mapped to one form (``yogurt`` → ``yoghurt``, ``eggplant`` →
   ``aubergine``, ``medium fat`` → ``semi skimmed``, ``ecological`` → ``organic``).
3. Plurals are reduced to a singular stem (``berries`` → ``berry``, ``tomatoes`` → ``tomato``, ``bananas`` →
   ``banana``).
4. Filler words (``some``, ``please``, ``kg``, ...) and numbers are dropped.

Two tokens match with similarity 1.0 when equal, otherwise with rapidfuzz's normalised Indel similarity
(:func:`rapidfuzz.fuzz.ratio`: ``2 * LCS / (len(a) + len(b))``, like :mod:`difflib`'s ratio but counting the
longest common subsequence) when it is at least :data:`TOKEN_SIMILARITY_MIN` (catches small typos such as
``bananna``). A product's score in
[0, 1] is ``0.5 * query coverage + 0.4 * field coverage + 0.1 * kind coverage``: the query coverage says how
much of the query the product explains, the field coverage how much of the product's name, kind or coarse
category (whichever is best) the query covers, and the kind coverage breaks ties in favour of the plain kind
(``tomato`` over ``beef tomato``).

:func:`search_text` writes a product's normalised tokens per field into one string, which the database stores
(``products.search_text``) and indexes for candidate retrieval (:mod:`shop.lookup`); :func:`rank` reads the
tokens back from it instead of normalising the product's fields again.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Protocol, Sequence, Tuple, TypeVar

from rapidfuzz import fuzz

#: Queries longer than this (in characters, after stripping) are not product queries; they match nothing.
MAX_QUERY_CHARS = 256
#: At most this many content words of a query are considered.
MAX_QUERY_TOKENS = 12
#: Minimum score for :func:`rank` callers to accept the best product as "the" match.
MATCH_THRESHOLD = 0.6
#: Minimum score for a product to be offered as a suggestion.
SUGGESTION_MIN_SCORE = 0.3
#: Minimum similarity (rapidfuzz ``fuzz.ratio`` / 100) for two different tokens to count as a (typo) match.
TOKEN_SIMILARITY_MIN = 0.8
#: Tokens shorter than this only match exactly.
FUZZY_MIN_LENGTH = 4
#: Separates the fields of a :func:`search_text` (name, kind, coarse category, category path); no token
#: holds it.
SEARCH_TEXT_SEPARATOR = " | "

#: Words that describe many products (categories, colours, qualities). A query made only of them is too
#: vague to name one product, so its score is capped at :data:`GENERIC_QUERY_MAX_SCORE` (below the match
#: threshold).
GENERIC_TOKENS = frozenset(
    "fruit vegetable veg veggie drink dairy plant based food grocery "
    "red green yellow white brown golden pink "
    "fresh organic natural".split()
)
GENERIC_QUERY_MAX_SCORE = 0.5

_WORD_RE = re.compile(r"[^\W_]+")
_APOSTROPHES_RE = re.compile(r"['\u2019\u2018`\u00b4]")

#: Multi-word variants, applied to the normalised text (space separated, lower case).
_PHRASES: Tuple[Tuple[str, str], ...] = (
    ("medium fat", "semi skimmed"),
    ("semi skim", "semi skimmed"),
    ("full fat", "whole"),
    ("standard milk", "whole milk"),
    ("passionfruit", "passion fruit"),
    ("beetroot", "red beet"),
    ("soya", "soy"),
    ("lowfat", "low fat"),
    ("freerange", "free range"),
    ("bell peppers", "bell pepper"),
)
_PHRASE_RES = tuple((re.compile(rf"\b{re.escape(src)}\b"), dst) for src, dst in _PHRASES)

#: Single-word spelling variants and synonyms (after singularisation).
_SYNONYMS = {
    "yogurt": "yoghurt",
    "yoghourt": "yoghurt",
    "yougurt": "yoghurt",
    "eggplant": "aubergine",
    "courgette": "zucchini",
    "capsicum": "pepper",
    "ecological": "organic",
    "eco": "organic",
    "bio": "organic",
    "tangerine": "mandarin",
    "clementine": "satsuma",
    "skim": "skimmed",
    "spud": "potato",
    "chestnut": "brown",
}

_STOPWORDS = frozenset(
    """
    a an the some any please pls plz i im id ive me my mine we us our you your it its is are am be was were
    do does did have has had want wanted wanna need needs would could can like love get buy order ordered add
    put give show find looking look search for of to in on at with without and or but from this that these
    those there here how much many what whats which who where when price prices cost costs cheap sell selling
    sold stock available availability kg kilo kilos kilogram kilograms gram grams g l litre liter litres
    liters ml piece pieces pack packs packet bag bags bottle bottles carton cartons box boxes punnet punnets
    bunch tub pot few couple more less also too just only thanks thank hi hello hey yes no not dont don t s
    about tell know got they them still again today now one two three four five six seven eight nine ten dozen
    half x
    """.split()
)


def _singular(token: str) -> str:
    """Reduce an English plural to a singular stem (``berries`` → ``berry``); short words are kept."""
    if len(token) <= 3:
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith("oes"):
        return token[:-2]
    if token.endswith(("ches", "shes", "sses", "xes")):
        return token[:-2]
    if token.endswith(("ss", "us")):
        return token
    if token.endswith("s"):
        return token[:-1]
    return token


@functools.lru_cache(maxsize=4096)
def tokenize(text: str) -> Tuple[str, ...]:
    """Normalise text into content tokens (see the module docstring).

    Args:
        text: Any text; it should already be capped in length by the caller.

    Returns:
        The content tokens in order of appearance, without duplicates.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _APOSTROPHES_RE.sub("", text)
    text = " ".join(_WORD_RE.findall(text))
    for pattern, replacement in _PHRASE_RES:
        text = pattern.sub(replacement, text)
    tokens: List[str] = []
    for raw in text.split():
        if raw.isdigit() or (len(raw) <= 5 and any(ch.isdigit() for ch in raw)):
            continue
        for word in _SYNONYMS.get(_singular(raw), _singular(raw)).split():
            word = _SYNONYMS.get(word, word)
            if len(word) < 2 or word in _STOPWORDS or word in tokens:
                continue
            tokens.append(word)
    return tuple(tokens)


@functools.lru_cache(maxsize=65536)
def token_similarity(a: str, b: str) -> float:
    """Similarity of two normalised tokens in [0, 1].

    Returns:
        1.0 if equal, rapidfuzz's ``fuzz.ratio / 100`` for near misses (at least
        :data:`TOKEN_SIMILARITY_MIN`), else 0.0. Tokens shorter than :data:`FUZZY_MIN_LENGTH` only match
        exactly.
    """
    if a == b:
        return 1.0
    if min(len(a), len(b)) < FUZZY_MIN_LENGTH:
        return 0.0
    return fuzz.ratio(a, b, score_cutoff=TOKEN_SIMILARITY_MIN * 100.0) / 100.0


class Matchable(Protocol):
    """What :func:`rank` needs from a product (``ProductView`` satisfies it)."""

    sku: str
    name: str
    kind: str
    category: str
    coarse_category: str
    stock: int


M = TypeVar("M", bound=Matchable)


@dataclass(frozen=True)
class _ProductTokens:
    """A product's tokens per field.

    Each field position lists its alternatives as ``(text, joined)``: the token itself, and the token joined
    with a neighbour (``joined`` True), so that ``oatmilk`` or ``passionfruit`` in a query covers
    ``oat milk``.
    """

    name: Tuple[Tuple[Tuple[str, bool], ...], ...]
    kind: Tuple[Tuple[Tuple[str, bool], ...], ...]
    coarse: Tuple[Tuple[Tuple[str, bool], ...], ...]
    everything: Tuple[Tuple[str, bool], ...]


def _slots(tokens: Tuple[str, ...]) -> Tuple[Tuple[Tuple[str, bool], ...], ...]:
    slots = []
    for index, token in enumerate(tokens):
        alternatives = [(token, False)]
        if index > 0:
            alternatives.append((tokens[index - 1] + token, True))
        if index + 1 < len(tokens):
            alternatives.append((token + tokens[index + 1], True))
        slots.append(tuple(alternatives))
    return tuple(slots)


def _similarity(query_token: str, alternative: Tuple[str, bool]) -> float:
    """Like :func:`token_similarity`, but a joined pair only counts for a query word about as long as it.

    So ``oatmilk`` matches ``oat milk``, while ``yoghurt`` alone does not half-match ``oat yoghurt`` through
    the pair ``oatyoghurt``.
    """
    token, joined = alternative
    if joined and len(query_token) < len(token) - 2:
        return 0.0
    return token_similarity(query_token, token)


def _field_tokens(name: str, kind: str, category: str, coarse: str) -> Tuple[Tuple[str, ...], ...]:
    """The normalised tokens of a product's name, kind, coarse category and category path, in that order."""
    return tokenize(name), tokenize(kind), tokenize(coarse), tokenize(category.replace("/", " "))


def search_text(name: str, kind: str, category: str, coarse_category: str) -> str:
    """The normalised text a product is stored and searched by (``products.search_text``).

    Args:
        name: Display name (``"Strawberries"``).
        kind: Plain-language kind (``"strawberry"``).
        category: Category path (``"Fruit/Berries"``).
        coarse_category: Last part of the category (``"Berries"``).

    Returns:
        The fields' :func:`tokenize` tokens, space separated, fields joined by :data:`SEARCH_TEXT_SEPARATOR`
        in the order name, kind, coarse category, category path: ``"strawberry | strawberry | berry | fruit
        berry"``. Lower case letters and digits only besides the separators, so it is safe for any text index.
    """
    fields = _field_tokens(name, kind, category, coarse_category)
    return SEARCH_TEXT_SEPARATOR.join(" ".join(tokens) for tokens in fields)


def _tokens_of(fields: Sequence[Tuple[str, ...]]) -> _ProductTokens:
    name_t, kind_t, coarse_t, category_t = fields
    name_s, kind_s, coarse_s = _slots(name_t), _slots(kind_t), _slots(coarse_t)
    singles = [(token, False) for token in name_t + kind_t + coarse_t + category_t]
    joined = [alt for slots in (name_s, kind_s, coarse_s) for slot in slots for alt in slot if alt[1]]
    everything = tuple(dict.fromkeys(singles + joined))
    return _ProductTokens(name_s, kind_s, coarse_s, everything)


@functools.lru_cache(maxsize=4096)
def _product_tokens(name: str, kind: str, category: str, coarse: str) -> _ProductTokens:
    return _tokens_of(_field_tokens(name, kind, category, coarse))


def search_terms(stored: str) -> Dict[str, str]:
    """The vocabulary entries of a :func:`search_text`: what a query token can be corrected to.

    Args:
        stored: A product's search text.

    Returns:
        ``{term: phrase}``: every token (its own phrase) and, within each field, every pair of neighbouring
        tokens written together (``"oatmilk": "oat milk"``), as :func:`rank` lets a query word cover a pair.
    """
    terms: Dict[str, str] = {}
    for field in stored.split(SEARCH_TEXT_SEPARATOR):
        tokens = field.split()
        for token in tokens:
            terms.setdefault(token, token)
        for left, right in zip(tokens, tokens[1:]):
            terms.setdefault(left + right, f"{left} {right}")
    return terms


@functools.lru_cache(maxsize=16384)
def _stored_tokens(text: str) -> Optional[_ProductTokens]:
    """Tokens read back from a :func:`search_text`; None when the text does not have its four fields."""
    fields = text.split(SEARCH_TEXT_SEPARATOR)
    if len(fields) != 4:
        return None
    return _tokens_of([tuple(field.split()) for field in fields])


def _coverage(field: Sequence[Tuple[Tuple[str, bool], ...]], query: Sequence[str]) -> float:
    if not field:
        return 0.0
    return sum(max(_similarity(q, alt) for q in query for alt in slot) for slot in field) / len(field)


def score_tokens(query: Sequence[str], product: Matchable, stored: Optional[str] = None) -> float:
    """Score one product against already tokenised query words.

    Args:
        query: Tokens from :func:`tokenize` (non-empty).
        product: The product to score.
        stored: The product's :func:`search_text` as the database holds it; its tokens are used instead of
            normalising the product's fields again (the same tokens, without the cost). Ignored when
            malformed.

    Returns:
        Score in [0, 1]; 1.0 means every query word and every word of the product's name, kind or coarse
        category matched exactly.
    """
    if not query:
        return 0.0
    tokens = _stored_tokens(stored) if stored else None
    if tokens is None:
        tokens = _product_tokens(product.name, product.kind, product.category, product.coarse_category)
    if not tokens.everything:
        return 0.0
    query_coverage = sum(max(_similarity(q, alt) for alt in tokens.everything) for q in query) / len(query)
    if query_coverage == 0.0:
        return 0.0
    kind_coverage = _coverage(tokens.kind, query)
    field_coverage = max(_coverage(tokens.name, query), kind_coverage, _coverage(tokens.coarse, query))
    score = 0.5 * query_coverage + 0.4 * field_coverage + 0.1 * kind_coverage
    if all(token in GENERIC_TOKENS for token in query):
        score = min(score, GENERIC_QUERY_MAX_SCORE)
    return round(score, 4)


def query_tokens(query: object) -> Tuple[str, ...]:
    """Tokenise a customer's query, returning no tokens for non-strings, blank or over-long text.

    Args:
        query: The raw query; anything that is not a ``str`` yields no tokens.

    Returns:
        At most :data:`MAX_QUERY_TOKENS` content tokens.
    """
    if not isinstance(query, str):
        return ()
    text = query.strip()
    if not text or len(text) > MAX_QUERY_CHARS:
        return ()
    return tokenize(text)[:MAX_QUERY_TOKENS]


def rank(
    query: object, products: Iterable[M], search_texts: Optional[Mapping[str, str]] = None
) -> List[Tuple[float, M]]:
    """Rank products by how well they match a query.

    Ties are broken in favour of products in stock, then shorter (more generic) names, then names
    alphabetically.

    Args:
        query: Free text such as ``"some bananas please"``.
        products: Candidate products.
        search_texts: The stored :func:`search_text` of products by SKU (optional; products without one are
            normalised here).

    Returns:
        ``(score, product)`` pairs with a score above zero, best first. Empty for a query without content
        words.
    """
    tokens = query_tokens(query)
    if not tokens:
        return []
    stored = search_texts or {}
    scored = [(score_tokens(tokens, product, stored.get(product.sku)), product) for product in products]
    scored = [pair for pair in scored if pair[0] > 0.0]
    scored.sort(key=lambda pair: (-pair[0], pair[1].stock <= 0, len(pair[1].name), pair[1].name))
    return scored


__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_QUERY_TOKENS",
    "MATCH_THRESHOLD",
    "SUGGESTION_MIN_SCORE",
    "SEARCH_TEXT_SEPARATOR",
    "Matchable",
    "search_text",
    "search_terms",
    "tokenize",
    "token_similarity",
    "score_tokens",
    "query_tokens",
    "rank",
]
