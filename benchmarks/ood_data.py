"""The hand-written out-of-domain message sets and the project's own NLU examples, for the OOD benchmarks.

``benchmarks/data/ood_calibration.tsv`` (thresholds are chosen on it) and ``benchmarks/data/ood_report.tsv``
(figures are reported on it) hold one message per line, ``<category>\\t<text>``, written for this project
(never taken from a public set) and never used for training. They were written as one list and split by
alternating lines within each category, so both halves cover every category.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

from assistant.paths import PROJECT_ROOT, nlu_training_files

OOD_DIR = Path(__file__).resolve().parent / "data"
CALIBRATION_FILE = OOD_DIR / "ood_calibration.tsv"
REPORT_FILE = OOD_DIR / "ood_report.tsv"

__all__ = ["CALIBRATION_FILE", "REPORT_FILE", "read_ood", "project_examples"]


def read_ood(path: Path) -> List[Tuple[str, str]]:
    """``(category, text)`` pairs of an OOD file; blank lines and lines starting with ``#`` are skipped.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a line has no tab.
    """
    pairs: List[Tuple[str, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        category, sep, text = line.partition("\t")
        if not sep:
            raise ValueError(f"{path}:{number}: expected '<category>\\t<text>'")
        pairs.append((category.strip(), text.strip()))
    return pairs


def project_examples(data_dir: Path = PROJECT_ROOT / "data") -> Tuple[List[Tuple[str, str]], Dict[str, List[str]]]:
    """The project's NLU intent examples ``(text, intent)`` (each text once) and its lookup tables and synonyms.

    Returns:
        (examples, {"lookup": [...], "synonyms": [...]}).
    """
    from rasa.shared.nlu.training_data.loading import load_data

    files = nlu_training_files(data_dir)
    data = load_data(str(files[0]))
    for extra in files[1:]:
        data = data.merge(load_data(str(extra)))
    seen = set()
    examples = []
    for example in data.intent_examples:
        text = example.get("text")
        if text and text not in seen:
            seen.add(text)
            examples.append((text, example.get("intent")))
    lookup = [str(e) for table in data.lookup_tables for e in table.get("elements", [])
              if isinstance(table.get("elements"), list)]
    synonyms = [str(s) for pair in data.entity_synonyms.items() for s in pair]
    return examples, {"lookup": lookup, "synonyms": synonyms}
