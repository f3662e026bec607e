"""A large synthetic grocery catalog and the look-up queries to time against it (``make bench-lookup``).

Products combine a brand, a variety and a kind (``"Nordhavn Organic Strawberries 400 g"``); each
``(brand, variety, kind)`` is used once, so no two products have the same normalised name (the size is
decoration: :mod:`shop.matching` drops numbers and units). Everything is drawn from one
:class:`random.Random` seeded by the caller, so the same seed gives the same catalog and queries.

Query classes (each with the SKU it should find, or None for a miss):

* ``exact``: a product's name as listed.
* ``plural``: the name with the kind's word in the other number (``strawberry`` ↔ ``strawberries``).
* ``typo``: one edit (substitution, deletion, insertion or swap of neighbours, never the first letter) in a
  word of five or more letters.
* ``variant``: spelling variants and synonyms :mod:`shop.matching` knows (``yogurt``, ``eggplant``,
  ``courgette``), upper case, filler words around the name (``"how much are the ... please"``).
* ``miss``: questions that name no product (delivery, fees, account); nothing may be found.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from decimal import Decimal
from typing import Dict, List, Optional, Sequence, Tuple

#: (singular, plural display form, category path, units it is sold in)
KINDS: Tuple[Tuple[str, str, str, Tuple[str, ...]], ...] = (
    ("apple", "Apples", "Fruit/Apple", ("kg", "1 kg bag", "6 pack")),
    ("banana", "Bananas", "Fruit/Banana", ("kg", "5 pack")),
    ("strawberry", "Strawberries", "Fruit/Berries", ("400 g punnet", "250 g punnet")),
    ("blueberry", "Blueberries", "Fruit/Berries", ("125 g punnet", "300 g punnet")),
    ("raspberry", "Raspberries", "Fruit/Berries", ("125 g punnet",)),
    ("cherry", "Cherries", "Fruit/Cherry", ("500 g punnet",)),
    ("grape", "Grapes", "Fruit/Grapes", ("500 g bag",)),
    ("lemon", "Lemons", "Fruit/Citrus", ("piece", "4 pack")),
    ("orange", "Oranges", "Fruit/Citrus", ("kg", "2 kg bag")),
    ("mandarin", "Mandarins", "Fruit/Citrus", ("kg", "1 kg bag")),
    ("pear", "Pears", "Fruit/Pear", ("kg", "4 pack")),
    ("peach", "Peaches", "Fruit/Stone Fruit", ("kg", "4 pack")),
    ("plum", "Plums", "Fruit/Stone Fruit", ("kg",)),
    ("mango", "Mangoes", "Fruit/Tropical", ("piece", "2 pack")),
    ("pineapple", "Pineapples", "Fruit/Tropical", ("piece",)),
    ("avocado", "Avocados", "Fruit/Tropical", ("piece", "2 pack")),
    ("melon", "Melons", "Fruit/Melon", ("piece",)),
    ("tomato", "Tomatoes", "Vegetables/Tomato", ("kg", "500 g pack")),
    ("potato", "Potatoes", "Vegetables/Potato", ("2 kg bag", "kg")),
    ("carrot", "Carrots", "Vegetables/Root", ("kg", "1 kg bag")),
    ("onion", "Onions", "Vegetables/Onion", ("kg", "1 kg net")),
    ("cucumber", "Cucumbers", "Vegetables/Cucumber", ("piece",)),
    ("aubergine", "Aubergines", "Vegetables/Aubergine", ("piece",)),
    ("zucchini", "Zucchini", "Vegetables/Squash", ("piece", "kg")),
    ("pepper", "Peppers", "Vegetables/Pepper", ("piece", "3 pack")),
    ("mushroom", "Mushrooms", "Vegetables/Mushroom", ("250 g punnet",)),
    ("broccoli", "Broccoli", "Vegetables/Cabbage", ("piece",)),
    ("cauliflower", "Cauliflowers", "Vegetables/Cabbage", ("piece",)),
    ("spinach", "Spinach", "Vegetables/Leaves", ("200 g bag",)),
    ("lettuce", "Lettuces", "Vegetables/Leaves", ("piece",)),
    ("garlic", "Garlic", "Vegetables/Onion", ("3 pack",)),
    ("leek", "Leeks", "Vegetables/Onion", ("piece",)),
    ("milk", "Milk", "Dairy/Milk", ("1 l carton", "2 l bottle")),
    ("yoghurt", "Yoghurt", "Dairy/Yoghurt", ("500 g tub", "1 l carton")),
    ("butter", "Butter", "Dairy/Butter", ("250 g pack",)),
    ("cheddar", "Cheddar", "Dairy/Cheese", ("200 g pack", "400 g pack")),
    ("mozzarella", "Mozzarella", "Dairy/Cheese", ("125 g pack",)),
    ("cream", "Cream", "Dairy/Cream", ("200 ml pot",)),
    ("egg", "Eggs", "Dairy/Eggs", ("6 pack", "12 pack")),
    ("oat milk", "Oat Milk", "Plant-based/Oat Milk", ("1 l carton",)),
    ("soy milk", "Soy Milk", "Plant-based/Soy Milk", ("1 l carton",)),
    ("almond milk", "Almond Milk", "Plant-based/Almond Milk", ("1 l carton",)),
    ("orange juice", "Orange Juice", "Juice/Orange", ("1 l carton", "1.5 l bottle")),
    ("apple juice", "Apple Juice", "Juice/Apple", ("1 l carton",)),
    ("bread", "Bread", "Bakery/Bread", ("loaf", "750 g loaf")),
    ("baguette", "Baguettes", "Bakery/Bread", ("piece",)),
    ("croissant", "Croissants", "Bakery/Pastry", ("4 pack",)),
    ("pasta", "Pasta", "Pantry/Pasta", ("500 g bag",)),
    ("spaghetti", "Spaghetti", "Pantry/Pasta", ("500 g bag",)),
    ("rice", "Rice", "Pantry/Rice", ("1 kg bag",)),
    ("flour", "Flour", "Pantry/Baking", ("1 kg bag",)),
    ("coffee", "Coffee", "Pantry/Coffee", ("500 g bag",)),
    ("tea", "Tea", "Pantry/Tea", ("40 bags",)),
    ("chocolate", "Chocolate", "Snacks/Chocolate", ("100 g bar",)),
    ("biscuit", "Biscuits", "Snacks/Biscuits", ("200 g pack",)),
    ("crisps", "Crisps", "Snacks/Crisps", ("150 g bag",)),
    ("honey", "Honey", "Pantry/Spreads", ("350 g jar",)),
    ("jam", "Jam", "Pantry/Spreads", ("340 g jar",)),
    ("salmon", "Salmon", "Fish/Salmon", ("250 g pack",)),
    ("chicken breast", "Chicken Breast", "Meat/Chicken", ("500 g pack",)),
    ("sausage", "Sausages", "Meat/Sausages", ("400 g pack",)),
)

BRANDS: Tuple[str, ...] = (
    "Nordhavn", "Greenfield", "Sunvale", "Meadowbrook", "Alpenhof", "Brightwater", "Cedarline", "Dunmore",
    "Elmsworth", "Fairholm", "Glenrock", "Hartwell", "Ivybridge", "Juniper", "Kestrel", "Larkspur",
    "Millbrook", "Northcote", "Oakridge", "Pinecrest", "Quarry Lane", "Redcliffe", "Stonebridge", "Thornbury",
    "Upland", "Valemont", "Westbury", "Yarrow", "Ashcombe", "Birchwood", "Coldstream", "Deepdale",
    "Eastleigh", "Foxley", "Greystone", "Hollybank", "Kingsmead", "Lindholm", "Marlow", "Newhaven",
    "Orchard Hill", "Primrose", "Riverside", "Silverdale", "Tidewell", "Windmere", "Bellamy", "Castello",
    "Dorado", "Solberg", "Vittoria", "Hagen", "Moreau", "Lindqvist", "Santoro", "Bergmann", "Okafor",
    "Tanaka", "Delacroix", "Fontaine",
)

VARIETIES: Tuple[str, ...] = (
    "Organic", "Classic", "Premium", "Value", "Farmhouse", "Sweet", "Mild", "Mature", "Smoked", "Golden",
    "Wild", "Heritage", "Family", "Select", "Garden", "Rustic", "Alpine", "Coastal", "Sunny", "Signature",
    "Traditional", "Hearty", "Crisp", "Tender",
)

#: Words :mod:`shop.matching` maps to the catalog's spelling: (catalog word, customer's variant).
VARIANT_WORDS: Tuple[Tuple[str, str], ...] = (
    ("yoghurt", "yogurt"),
    ("aubergine", "eggplant"),
    ("zucchini", "courgette"),
    ("organic", "ecological"),
    ("mandarin", "tangerine"),
    ("soy", "soya"),
)

FILLERS: Tuple[Tuple[str, str], ...] = (
    ("how much are the ", "?"),
    ("do you have ", " please"),
    ("some ", " pls"),
    ("tell me about the ", ""),
    ("price of ", ""),
)

MISSES: Tuple[str, ...] = (
    "how much does delivery cost",
    "how much is the cancellation fee",
    "where is my order",
    "can I change my delivery address",
    "I want to talk to a person",
    "how do I reset my password",
    "do you accept paypal",
    "what are your opening hours",
    "qwertyuiop",
    "gift card balance",
    "I was charged twice",
    "newsletter",
)


@dataclass(frozen=True)
class CatalogRow:
    """One generated product, in the columns of ``shop.models.Product``; ``base_name`` is the name without
    its size and ``kind_word`` the kind as the name spells it."""

    sku: str
    name: str
    category: str
    coarse_category: str
    kind: str
    price: Decimal
    currency: str
    unit: str
    stock: int
    description: str
    base_name: str
    kind_word: str

    def columns(self) -> Dict[str, object]:
        """The row as keyword arguments of ``Product`` / an ``insert(Product)`` parameter set."""
        return {
            "sku": self.sku,
            "name": self.name,
            "category": self.category,
            "coarse_category": self.coarse_category,
            "kind": self.kind,
            "price": self.price,
            "currency": self.currency,
            "unit": self.unit,
            "stock": self.stock,
            "description": self.description,
        }


@dataclass(frozen=True)
class LookupQuery:
    """A query of the benchmark: its class, the text and the SKU it should find (None: nothing)."""

    kind: str
    text: str
    sku: Optional[str]


def generate_catalog(size: int, seed: int = 7) -> List[CatalogRow]:
    """Generate ``size`` distinct products.

    Args:
        size: Number of products, 1 to ``len(BRANDS) * len(VARIETIES) * len(KINDS)`` (87,840).
        seed: Seed of the random generator.

    Returns:
        The products; SKUs ``GEN-000001`` ... in generation order.

    Raises:
        ValueError: ``size`` out of range.
    """
    combos = len(BRANDS) * len(VARIETIES) * len(KINDS)
    if not 1 <= size <= combos:
        raise ValueError(f"size must be 1..{combos}, not {size}")
    rng = random.Random(seed)
    picks = rng.sample(range(combos), size)
    rows = []
    for number, pick in enumerate(picks, start=1):
        brand = BRANDS[pick % len(BRANDS)]
        variety = VARIETIES[(pick // len(BRANDS)) % len(VARIETIES)]
        singular, plural, category, units = KINDS[pick // (len(BRANDS) * len(VARIETIES))]
        kind_word = plural if rng.random() < 0.7 else singular.title()
        base = f"{brand} {variety} {kind_word}"
        unit = rng.choice(units)
        name = f"{base} {unit}" if unit[0].isdigit() else base
        rows.append(
            CatalogRow(
                sku=f"GEN-{number:06d}",
                name=name,
                category=category,
                coarse_category=category.split("/")[-1],
                kind=f"{variety.lower()} {singular}",
                price=Decimal(rng.randrange(49, 2999)) / 100,
                currency="EUR",
                unit=unit,
                stock=rng.choice((0, 3, 12, 40, 120)),
                description=f"{variety} {singular} from {brand}.",
                base_name=base,
                kind_word=kind_word,
            )
        )
    return rows


def one_letter_typo(word: str, rng: random.Random) -> str:
    """``word`` with one edit at a position after the first letter: substitution, deletion, insertion or a
    swap of two neighbours (always a different word)."""
    while True:
        position = rng.randrange(1, len(word))
        edit = rng.choice(("substitute", "delete", "insert", "swap"))
        letter = rng.choice(string.ascii_lowercase)
        if edit == "substitute":
            typo = word[:position] + letter + word[position + 1 :]
        elif edit == "delete":
            typo = word[:position] + word[position + 1 :]
        elif edit == "insert":
            typo = word[:position] + letter + word[position:]
        else:
            position = min(position, len(word) - 2)
            typo = word[:position] + word[position + 1] + word[position] + word[position + 2 :]
        if typo != word:
            return typo


def _other_number(row: CatalogRow) -> Optional[str]:
    singular = row.kind.split(" ", 1)[1]
    for kind_singular, plural, _, _ in KINDS:
        if kind_singular == singular and plural.lower() != singular:
            other = singular if row.kind_word == plural else plural.lower()
            return row.base_name[: -len(row.kind_word)] + other
    return None


def generate_queries(rows: Sequence[CatalogRow], per_class: int, seed: int = 11) -> List[LookupQuery]:
    """Draw the benchmark's queries for a catalog from :func:`generate_catalog`.

    Args:
        rows: The catalog.
        per_class: Queries per class (``miss`` repeats its fixed questions up to this count).
        seed: Seed of the random generator.

    Returns:
        ``per_class`` queries of each class, in class order (exact, plural, typo, variant, miss).
    """
    rng = random.Random(seed)
    queries: List[LookupQuery] = []
    for row in rng.sample(list(rows), per_class):
        queries.append(LookupQuery("exact", row.name, row.sku))
    pluralisable = [row for row in rows if _other_number(row)]
    for row in rng.sample(pluralisable, per_class):
        queries.append(LookupQuery("plural", str(_other_number(row)), row.sku))
    for row in rng.sample(list(rows), per_class):
        words = row.base_name.split()
        candidates = [index for index, word in enumerate(words) if len(word) >= 5]
        index = rng.choice(candidates) if candidates else len(words) - 1
        words[index] = one_letter_typo(words[index].lower(), rng)
        queries.append(LookupQuery("typo", " ".join(words), row.sku))
    variant_rows = [
        row for row in rows if any(word in row.base_name.lower().split() for word, _ in VARIANT_WORDS)
    ]
    for row in rng.sample(variant_rows, per_class):
        text = row.base_name.lower()
        for word, variant in VARIANT_WORDS:
            text = " ".join(variant if part == word else part for part in text.split())
        before, after = rng.choice(FILLERS)
        text = before + text + after
        queries.append(LookupQuery("variant", text.upper() if rng.random() < 0.2 else text, row.sku))
    for index in range(per_class):
        queries.append(LookupQuery("miss", MISSES[index % len(MISSES)], None))
    return queries


__all__ = ["CatalogRow", "LookupQuery", "generate_catalog", "generate_queries", "one_letter_typo"]
