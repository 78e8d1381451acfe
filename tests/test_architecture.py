"""The module structure the code relies on (issue "one home for each fact"): no import circles
among fastpcap's modules (imports under ``TYPE_CHECKING`` aside: they never run), the pure
twin imported by ``_backend`` alone, and each bucket default written once."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.once

SRC = Path(__file__).resolve().parent.parent / "src" / "fastpcap"


def _runtime_imports(tree: ast.AST) -> set[str]:
    """The fastpcap modules a module imports when it runs (at any depth, lazily included)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


GRAPH = {p.stem: _runtime_imports(ast.parse(p.read_text())) for p in SRC.glob("*.py")}


def test_no_import_circle() -> None:
    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in GRAPH.get(todo.pop(), ()):
                if nxt in GRAPH and nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    circles = sorted(module for module in GRAPH if module in reach(module))
    assert circles == []
    assert len(GRAPH) > 20  # the parse found the modules


def test_only_the_backend_imports_the_twin() -> None:
    assert sorted(m for m, deps in GRAPH.items() if "_pure" in deps) == ["_backend"]


@pytest.mark.parametrize("default", ['"10.200.0.1"', r"\b3600\b", r"bucket_ms: int = 100\b"])
def test_each_bucket_default_is_written_once(default: str) -> None:
    places = [p.name for p in SRC.glob("*.py") for _ in re.finditer(default, p.read_text())]
    assert places == ["options.py"]
