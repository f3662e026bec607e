"""Splitting a message into clauses at the words and marks that join two requests.

"where is order 10023 and can you also cancel 10027" has two pieces between connectors ("where is order
10023", "can you also cancel 10027"); each piece with at least ``min_words`` words becomes a clause, a shorter
one stays with the piece before it (or after it, at the start). So "bread and butter", "salt and vinegar
crisps", "cancel and refund order 10023" and "cancel 45172 and 45173" stay one clause: one side is a single
word. Whether two clauses are two *requests* is decided later, from the intent the classifier gives each
clause (:mod:`components.multirequest.folding`).

Connectors: the sentence marks ``. ? ! ;`` when a space or the end follows (so "4.50" and
"anna.berg@example.com" are not split), the words "and", "and also", "then", "plus", "after that" (with an
optional comma before them), and the Chinese 还有 ("also"), 然后 ("then"), 另外 ("besides"), 并且 ("and also") and the
full-width marks 。？！；. "also" alone is no connector ("can you also cancel 10027", "I also want ..." are one
clause each); 和 ("and") is left out: it joins nouns ("面包和黄油") far more often than requests.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List

#: Where one clause may end and the next begin.
CONNECTOR = re.compile(
    r"[.?!;]+(?=\s|$)"
    r"|[。？！；]+"
    r"|,?\s*\b(?:and\s+then|and\s+also|after\s+that|and|then|plus)\b"
    r"|还有|然后|另外|并且",
    re.IGNORECASE,
)
#: A word for counting: a run of letters or of digits (Latin, Greek, Cyrillic ...); CJK characters are counted
#: on their own, two to a word.
_WORD = re.compile(r"[^\W\d_\u3400-\u9fff]+|\d+")
_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class Clause:
    """One clause of a message.

    Attributes:
        start: Offset of its first character in the message text (characters, inclusive).
        end: Offset after its last character (exclusive); ``text == message_text[start:end]``.
        text: The clause, without the connectors around it.
    """

    start: int
    end: int
    text: str


def word_count(text: str) -> int:
    """Words in ``text``: runs of letters, runs of digits, and half the CJK characters (rounded down)."""
    return len(_WORD.findall(text)) + len(_CJK.findall(text)) // 2


def _pieces(text: str) -> List[Clause]:
    """The non-blank stretches of ``text`` between connectors, stripped, with their offsets."""
    pieces: List[Clause] = []
    position = 0
    for match in list(CONNECTOR.finditer(text)) + [None]:
        end = len(text) if match is None else match.start()
        raw = text[position:end]
        stripped = raw.strip(" ,\t\n")
        if stripped:
            start = position + raw.index(stripped)
            pieces.append(Clause(start, start + len(stripped), stripped))
        if match is not None:
            position = match.end()
    return pieces


def split_clauses(text: str, min_words: int = 2, max_clauses: int = 4) -> List[Clause]:
    """Split a message into clauses (see the module docstring).

    Args:
        text: The message text (already sanitised).
        min_words: Fewest words a piece needs to be a clause of its own (count ≥ 1).
        max_clauses: Most clauses a message may have; a message with more (a long story rather than a list of
            requests) is left whole, which also bounds the extra classification work (count ≥ 1).

    Returns:
        The clauses in order; one clause spanning the stripped text when nothing splits, and none for a blank
        text.
    """
    stripped = text.strip()
    if not stripped:
        return []
    whole = [Clause(text.index(stripped), text.index(stripped) + len(stripped), stripped)]
    clauses: List[Clause] = []
    for piece in _pieces(text):
        if clauses and word_count(piece.text) < min_words:
            last = clauses[-1]
            clauses[-1] = Clause(last.start, piece.end, text[last.start : piece.end])
        elif clauses and word_count(clauses[-1].text) < min_words:
            last = clauses[-1]  # a short first piece joins the one after it
            clauses[-1] = Clause(last.start, piece.end, text[last.start : piece.end])
        else:
            clauses.append(piece)
    if len(clauses) <= 1 or len(clauses) > max_clauses:
        return whole
    return clauses
