"""Unit tests of `shop.validation`: order numbers, free text, amounts, transcripts, identifiers and paths.

Hypothesis is not installed in this project's environment, so the property tests draw their cases from a
seeded `random.Random`: the same few hundred generated inputs in every run, each its own parametrised case.
"""

from __future__ import annotations

import json
import random
import string
from decimal import Decimal
from typing import List

import pytest

from shop import validation
from shop.errors import InvalidAmount, InvalidInput, InvalidOrderNumber
from shop.repository import ShopRepository
from shop.statuses import TicketPriority
from shop.validation import parse_order_number

_RANDOM = random.Random(20250310)
#: Five-digit numbers, leading zeros included.
FIVE_DIGITS: List[str] = ["00000", "99999", "01234"] + [
    f"{n:05d}" for n in _RANDOM.sample(range(100_000), 30)
]
#: How customers wrap an order number; ``{}`` is the number.
DECORATIONS = [
    "{}",
    " {} ",
    "#{}",
    "# {}",
    "order {}",
    "Order #{}",
    "ORDER NO. {}",
    "order number: {}",
    "no. {}",
    "nr {}",
    "\u200b{}\u200b",
    "\t{}\n",
]
#: Digit strings of every other length.
WRONG_LENGTHS: List[str] = [
    "".join(_RANDOM.choice(string.digits) for _ in range(length))
    for length in [1, 2, 3, 4, 6, 7, 8, 12, 20, 40]
]


def _spaced(digits: str) -> str:
    """Insert a space, a no-break space or a thin space at a (per-number fixed) place between the digits."""
    draw = random.Random(digits)
    cut = draw.randrange(1, len(digits))
    return digits[:cut] + draw.choice([" ", "\u00a0", "\u2009"]) + digits[cut:]


def _full_width(digits: str) -> str:
    return "".join(chr(0xFF10 + int(digit)) for digit in digits)


# ---------------------------------------------------------------------------------------------- order numbers


@pytest.mark.parametrize(
    "text",
    [
        "10023",
        "#10023",
        "# 10023",
        "order 10023",
        "Order 10023",
        "ORDER #10023",
        "order number 10023",
        "order number: 10023",
        "Order No. 10023",
        "order nr 10023",
        " 10 023 ",
        "10\u00a0023",
        "\u200b10023\u200b",
        "\uff11\uff10\uff10\uff12\uff13",  # full-width digits
    ],
)
def test_parse_order_number_accepts_common_forms(text):
    assert parse_order_number(text) == "10023"
    assert ShopRepository.parse_order_number(text) == "10023"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "#",
        "order",
        "1002",
        "100234",
        "-1",
        "-10023",
        "order number -1",
        "99999999999999999999999999",
        "order number 99999999999999999999999999",
        "abcde",
        "10023abc",
        "10O23",
        "1e4",
        "10.023",
        "10023 and 10024",
        "10023'; DROP TABLE orders; --",
        "where is my order 45172'; DROP TABLE orders; --",
        "\u0661\u0660\u0660\u0662\u0663",  # Arabic-Indic digits
        "1" * 10_000,
        "x" * 10_000,
        "order " + "1" * 60,
        None,
        10023,
        ["10023"],
    ],
)
def test_parse_order_number_rejects_everything_else(text):
    with pytest.raises(InvalidOrderNumber) as info:
        parse_order_number(text)  # type: ignore[arg-type]
    assert "five digits" in info.value.user_message


@pytest.mark.parametrize("digits", FIVE_DIGITS)
@pytest.mark.parametrize("decoration", DECORATIONS)
def test_every_five_digit_number_is_read_in_every_common_wrapping(digits, decoration):
    assert parse_order_number(decoration.format(digits)) == digits


@pytest.mark.parametrize("digits", FIVE_DIGITS[:12])
def test_spaces_inside_and_full_width_digits_are_tolerated(digits):
    assert parse_order_number(_spaced(digits)) == digits
    assert parse_order_number(_full_width(digits)) == digits


@pytest.mark.parametrize("digits", WRONG_LENGTHS)
@pytest.mark.parametrize("decoration", ["{}", "#{}", "order {}", " {} "])
def test_any_other_number_of_digits_is_refused(digits, decoration):
    with pytest.raises(InvalidOrderNumber):
        parse_order_number(decoration.format(digits))


@pytest.mark.parametrize("digits", FIVE_DIGITS[:10])
@pytest.mark.parametrize(
    "template", ["-{}", "+{}", "{}.0", "{}abc", "abc{}", "{}-1", "1e{}", "{} {}", "#-{}", "order {}!"]
)
def test_signs_letters_and_second_numbers_around_the_digits_are_refused(digits, template):
    with pytest.raises(InvalidOrderNumber):
        parse_order_number(template.format(digits, digits))


#: Short random texts of digits, letters, signs and spaces.
RANDOM_TEXTS = ["".join(_RANDOM.choice(string.digits * 3 + " #-.o") for _ in range(7)) for _ in range(40)]


@pytest.mark.parametrize("text", RANDOM_TEXTS)
def test_the_result_is_always_five_ascii_digits_of_the_text_or_an_error(text):
    try:
        number = parse_order_number(text)
    except InvalidOrderNumber:
        return
    assert len(number) == 5 and number.isascii() and number.isdigit()
    assert number == "".join(ch for ch in text if ch.isdigit())


def test_the_repository_applies_the_same_parser():
    assert ShopRepository.parse_order_number is parse_order_number


def test_optional_order_number():
    assert validation.optional_order_number(" #10023 ") == "10023"
    assert validation.optional_order_number(None) is None
    assert validation.optional_order_number("not a number") is None
    assert validation.optional_order_number(10023) is None


# -------------------------------------------------------------------------------------------------- free text


@pytest.mark.parametrize(
    "value, expected",
    [
        ("  Marktplatz 3\n\t80331 München\u200b\x00, Germany  ", "Marktplatz 3 80331 München, Germany"),
        ("a\u0301", "\u00e1"),  # NFC
        ("line\r\nbreak", "line break"),
        ("\ue000private", "private"),
        ("", ""),
    ],
)
def test_clean_text_makes_one_clean_line(value, expected):
    assert validation.clean_text(value, "note", max_chars=100) == expected


def test_clean_text_limits():
    assert validation.clean_text("x" * 50, "reason", max_chars=10) == "x" * 10
    with pytest.raises(InvalidInput) as too_long:
        validation.clean_text("x" * 50, "shipping_address", max_chars=10, truncate=False)
    assert "shipping address is too long" in too_long.value.user_message
    with pytest.raises(InvalidInput) as too_short:
        validation.clean_text(" ab ", "address", max_chars=10, min_chars=5)
    assert "too short" in too_short.value.user_message
    with pytest.raises(InvalidInput):
        validation.clean_text(42, "reason", max_chars=10)


def test_field_cleaners():
    assert validation.clean_address("Market Street 12") == "Market Street 12"
    for bad in ["abc", "A" * 301, None]:
        with pytest.raises(InvalidInput):
            validation.clean_address(bad)
    assert validation.clean_reason("r" * 5000) == "r" * 1000
    assert validation.clean_subject("  \x00 ") == "Support request"
    assert validation.clean_subject("s" * 500) == "s" * 200
    assert validation.clean_sender_id(" user-1 ") == "user-1"
    for bad in ["", "   ", "x" * 256, None]:
        with pytest.raises(InvalidInput):
            validation.clean_sender_id(bad)


def test_priority_and_sentiment_trail():
    assert validation.parse_priority("high") is TicketPriority.HIGH
    with pytest.raises(InvalidInput):
        validation.parse_priority("urgent")
    assert validation.clean_sentiment_trail(None) == []
    trail = validation.clean_sentiment_trail(["neutral"] * 300 + [None, "x" * 100])
    assert len(trail) == 200 and trail[-2:] == ["None", "x" * 32]
    with pytest.raises(InvalidInput):
        validation.clean_sentiment_trail("negative")


# ------------------------------------------------------------------------------------------------ transcripts


def test_clean_json_value_caps_strings_depth_and_odd_values():
    nested: dict = {}
    cursor = nested
    for _ in range(10):
        cursor["next"] = {}
        cursor = cursor["next"]
    turn = {"text": "a\x00b" + "x" * 10_000, "nan": float("nan"), "obj": object(), "nested": nested}
    cleaned = validation.clean_json_value({**turn, 1: [1] * 500})
    assert cleaned["text"].startswith("abx") and len(cleaned["text"]) == validation.MAX_TURN_STRING_CHARS
    assert cleaned["nan"] is None and isinstance(cleaned["obj"], str)
    assert "[nested data omitted]" in json.dumps(cleaned["nested"])
    assert len(cleaned["1"]) == 100
    json.dumps(cleaned)  # plain JSON


def test_cap_transcript_keeps_the_newest_turns_within_limits():
    turns = [{"text": f"{i:04d} " + "ü" * 4000} for i in range(150)]
    kept = validation.cap_transcript(turns)
    assert 0 < len(kept) < 150 and kept[-1]["text"].startswith("0149 ")
    assert len(json.dumps(kept, ensure_ascii=False).encode("utf-8")) <= validation.MAX_TRANSCRIPT_BYTES
    assert len(validation.cap_transcript([{"text": str(i)} for i in range(1000)])) == 200
    assert validation.cap_transcript(["plain"]) == [{"text": "plain"}]
    with pytest.raises(InvalidInput):
        validation.cap_transcript({"event": "user"})


# ---------------------------------------------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    "amount, expected",
    [
        (None, None),
        (Decimal("4.5"), Decimal("4.50")),
        (3, Decimal("3.00")),
        (1.5, Decimal("1.50")),
        ("4.50", Decimal("4.50")),
        ("2,50", Decimal("2.50")),
        ("€4.50", Decimal("4.50")),
        ("4.50 EUR", Decimal("4.50")),
        ("99999999.99", Decimal("99999999.99")),
    ],
)
def test_parse_amount_accepts(amount, expected):
    assert validation.parse_amount(amount) == expected


@pytest.mark.parametrize(
    "amount, fragment",
    [
        (Decimal("0"), "more than zero"),
        (-5, "more than zero"),
        ("100000000", "far too large"),
        (Decimal("0.001"), "euros and cents"),
        ("abc", "euros"),
        (Decimal("NaN"), "euros"),
        (float("inf"), "euros"),
        (True, "euros"),
        ([1], "euros"),
        ("9" * 100, "euros"),
    ],
)
def test_parse_amount_refuses_with_a_reason(amount, fragment):
    with pytest.raises(InvalidAmount) as info:
        validation.parse_amount(amount)
    assert fragment in info.value.user_message


# ---------------------------------------------------------------------------------------- identifiers, limits


def test_identifiers():
    assert validation.normalise_identifier(" rf-10026-1 ") == "RF-10026-1"
    for odd in ["", "  ", "x" * 65, None, 12]:
        assert validation.normalise_identifier(odd) is None
    assert validation.clean_sku("fru-banana") == "FRU-BANANA"
    with pytest.raises(InvalidInput):
        validation.clean_sku("")
    assert validation.clean_sha256(" " + "AB" * 32 + " ") == "ab" * 32
    for bad in ["not-a-hash", "g" * 64, "a" * 63, None]:
        with pytest.raises(InvalidInput):
            validation.clean_sha256(bad)


@pytest.mark.parametrize(
    "path, expected",
    [
        ("Fruit/Banana/b.jpg", "Fruit/Banana/b.jpg"),
        ("Fruit\\Banana\\b.jpg", "Fruit/Banana/b.jpg"),
        ("./Fruit//b.jpg", "Fruit/b.jpg"),
    ],
)
def test_clean_image_path_accepts_relative_paths(path, expected):
    assert validation.clean_image_path(path) == expected


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../x.jpg", "a/../../x.jpg", "C:\\x.jpg", "~/x.jpg", "", ".", "a\x00b", "x" * 501, 3],
)
def test_clean_image_path_refuses_paths_that_leave_the_image_root(path):
    with pytest.raises(InvalidInput):
        validation.clean_image_path(path)


def test_limits_and_categories():
    assert [validation.clamp_limit(n, 100) for n in (0, 5, 10_000)] == [1, 5, 100]
    for bad in ["5", 2.0, True]:
        with pytest.raises(InvalidInput):
            validation.clamp_limit(bad, 100)
    assert validation.category_filter("  Fruit/Apple ") == "fruit/apple"
    assert validation.category_filter("   ") == ""
    assert validation.category_filter("x" * 81) is None and validation.category_filter(None) is None


# ----------------------------------------------------------------------------------- customer ids, datetimes


@pytest.mark.parametrize("value", [1, 42, 10**12])
def test_parse_customer_id_accepts_positive_integers(value):
    assert validation.parse_customer_id(value) == value


@pytest.mark.parametrize("value", [0, -1, True, False, "1", 1.0, None, [1]])
def test_parse_customer_id_refuses_anything_else(value):
    with pytest.raises(InvalidInput):
        validation.parse_customer_id(value)


def test_aware_datetime():
    from datetime import datetime, timezone

    aware = datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert validation.aware_datetime(aware, "older_than") is aware
    for value in (datetime(2025, 1, 1), "2025-01-01", None, 1_700_000_000):
        with pytest.raises(InvalidInput, match="older_than"):
            validation.aware_datetime(value, "older_than")
