"""The layout's rules, checked on the source: who may import whom, module sizes, one home per constant.

docs/architecture.md ("Who may import whom") states these rules; this test keeps them true. It reads the source
with `ast` and runs nothing.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

from assistant import keys
from assistant.paths import PROJECT_ROOT

#: Project packages whose imports are checked.
PACKAGES = ("assistant", "media", "encoders", "shop", "components", "tuning", "channels", "actions", "scripts",
            "benchmarks", "stores", "runtime")

#: Top-level modules each package must not import (third-party "rasa" included where the package is Rasa-free).
FORBIDDEN: Dict[str, Set[str]] = {
    "assistant": {"actions", "benchmarks", "channels", "components", "encoders", "media", "rasa_sdk",
                 "runtime", "scripts", "shop", "stores", "tuning"},
    "media": {"actions", "benchmarks", "channels", "components", "encoders", "rasa", "rasa_sdk", "runtime",
             "scripts", "shop", "stores", "tuning"},
    "encoders": {"actions", "benchmarks", "channels", "components", "media", "runtime", "scripts", "shop",
                "stores", "tuning"},
    "shop": {"actions", "benchmarks", "channels", "components", "encoders", "rasa", "rasa_sdk", "runtime",
            "scripts", "stores", "tuning"},
    "components": {"actions", "benchmarks", "channels", "rasa_sdk", "runtime", "scripts", "stores", "tuning"},
    "tuning": {"actions", "benchmarks", "channels", "runtime", "scripts", "stores"},
    "channels": {"actions", "benchmarks", "components", "encoders", "runtime", "scripts", "shop", "tuning"},
    "actions": {"benchmarks", "channels", "components", "encoders", "media", "rasa", "runtime", "scripts",
               "stores", "tuning"},
    "stores": {"actions", "benchmarks", "channels", "components", "encoders", "media", "runtime", "scripts",
              "shop", "tuning"},
    "runtime": {"actions", "benchmarks", "channels", "components", "encoders", "media", "scripts", "shop",
               "stores", "tuning"},
    "scripts": {"benchmarks"},
    "benchmarks": {"scripts"},
}

#: The most lines a module of these packages may have.
MAX_LINES = {"components": 600, "channels": 600, "stores": 600}


def _python_files(package: str) -> Iterator[Path]:
    yield from sorted((PROJECT_ROOT / package).rglob("*.py"))


def _imported_top_levels(path: Path) -> Set[Tuple[str, int]]:
    """(top-level module, line) of every import in a file, nested ones included; relative imports skipped."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: Set[Tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_import_only_what_the_layout_allows(package: str) -> None:
    broken: List[str] = []
    for path in _python_files(package):
        for module, line in sorted(_imported_top_levels(path)):
            if module in FORBIDDEN[package]:
                broken.append(f"{path.relative_to(PROJECT_ROOT)}:{line} imports {module}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("package", sorted(MAX_LINES))
def test_modules_stay_small(package: str) -> None:
    limit = MAX_LINES[package]
    too_long = [
        f"{path.relative_to(PROJECT_ROOT)}: {n} lines"
        for path in _python_files(package)
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > limit
    ]
    assert not too_long, f"over {limit} lines:\n" + "\n".join(too_long)


def _module_level_string_constants(path: Path) -> Iterator[Tuple[str, str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        value = getattr(node, "value", None)
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for target in targets:
                if isinstance(target, ast.Name):
                    yield target.id, value.value, node.lineno


#: Constants whose value happens to equal a shared key but that name something else; each says what.
UNRELATED_CONSTANTS = {
    ("components/fusion/__init__.py", "IMAGE_BRANCH"): "config vocabulary of `trunk_branches`, not a message key",
    ("channels/rest/parsing.py", "BODY_ATTACHMENTS"): "a field of the public REST API's JSON body",
}
#: String literals that equal a shared key but are another system's field name.
FOREIGN_FIELDS = {
    ("channels/messenger.py", "attachments"): "the Messenger Platform's `message.attachments` field",
    ("channels/rest/parsing.py", "attachments"): "BODY_ATTACHMENTS: a public REST API field",
    ("components/products/index.py", "image_embeddings"): "a file name of the persisted index (image_embeddings.npy)",
}


def test_shared_keys_are_defined_once() -> None:
    """No module redefines a key of assistant/keys.py as its own constant (`TRANSCRIPT = "transcript"`)."""
    shared = {
        value: name for name, value in vars(keys).items() if name.isupper() and isinstance(value, str)
    }
    copies = [
        f"{path.relative_to(PROJECT_ROOT)}:{line} {name} = {value!r} (use assistant.keys.{shared[value]})"
        for package in PACKAGES
        for path in _python_files(package)
        if path != PROJECT_ROOT / "assistant" / "keys.py"
        for name, value, line in _module_level_string_constants(path)
        if value in shared and name.isupper()
        and (str(path.relative_to(PROJECT_ROOT)), name) not in UNRELATED_CONSTANTS
    ]
    assert not copies, "\n".join(copies)


def test_the_project_root_is_defined_once() -> None:
    definitions = [
        f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}"
        for package in PACKAGES
        for path in _python_files(package)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        and any(
            isinstance(t, ast.Name) and t.id in ("PROJECT_ROOT", "ROOT")
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
    ]
    assert definitions == ["assistant/paths.py:" + str(_line_of_project_root())], definitions


def _line_of_project_root() -> int:
    tree = ast.parse((PROJECT_ROOT / "assistant" / "paths.py").read_text(encoding="utf-8"))
    return next(
        node.lineno for node in tree.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        and node.target.id == "PROJECT_ROOT"
    )


#: Keys distinctive enough that any string literal with their value is a copy of the key (not a common word).
DISTINCTIVE_KEYS = (
    keys.ATTACHMENTS,
    keys.ATTACHMENT_PROBLEMS,
    keys.ATTACHMENT_PROBLEM,
    keys.TRANSCRIPT,
    keys.IMAGE_LABELS,
    keys.IMAGE_EMBEDDINGS,
    keys.PRODUCT_RECOGNITION,
    keys.SIMILAR_TO,
    keys.TEXT_TRUNCATED,
)


def _docstring_nodes(tree: ast.AST) -> Set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def test_code_spells_no_shared_key_itself() -> None:
    """`metadata.get("attachments")` is a copy of a key: code writes `metadata.get(ATTACHMENTS)`."""
    wanted = set(DISTINCTIVE_KEYS)
    spelled = []
    for package in PACKAGES:
        for path in _python_files(package):
            if path == PROJECT_ROOT / "assistant" / "keys.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = _docstring_nodes(tree)
            spelled += [
                f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} {node.value!r}"
                for node in ast.walk(tree)
                if isinstance(node, ast.Constant) and node.value in wanted and id(node) not in docstrings
                and (str(path.relative_to(PROJECT_ROOT)), node.value) not in FOREIGN_FIELDS
            ]
    assert not spelled, "\n".join(spelled)


def _imported_modules(path: Path) -> Set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_the_shared_package_takes_only_rasas_exceptions() -> None:
    """assistant/ is imported by everything: of Rasa it uses only the exception type of a bad config."""
    rasa_imports = {
        f"{path.relative_to(PROJECT_ROOT)}: {module}"
        for path in _python_files("assistant")
        for module in _imported_modules(path)
        if module.split(".")[0] == "rasa" and module != "rasa.shared.exceptions"
    }
    assert not rasa_imports
