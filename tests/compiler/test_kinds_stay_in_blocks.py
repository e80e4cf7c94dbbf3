"""No module outside cogdsl/blocks/ asks what kind a block is: a kind's behaviour lives in its own file."""

from __future__ import annotations

import ast
from pathlib import Path

from cogdsl.blocks import REGISTRY

PACKAGE = Path(__file__).resolve().parents[2] / "cogdsl"


def _kind_tests(tree: ast.AST) -> list[int]:
    """Lines that compare something's ``.kind`` with a block kind's name (``block.kind == "stack"``,
    ``b.kind in ("queue", "deque")``)."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        names_kind = any(isinstance(side, ast.Attribute) and side.attr == "kind" for side in sides)
        strings = any(isinstance(c, ast.Constant) and c.value in REGISTRY for side in sides for c in ast.walk(side))
        if names_kind and strings:
            lines.append(node.lineno)
    return lines


def test_no_module_outside_blocks_names_a_kind() -> None:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(PACKAGE / "blocks"):
            continue
        lines = _kind_tests(ast.parse(path.read_text(), str(path)))
        if lines:
            found[str(path.relative_to(PACKAGE))] = lines
    assert not found, f"kind tested by name outside cogdsl/blocks (give the kind a method instead): {found}"


def test_the_check_finds_a_kind_test() -> None:
    assert _kind_tests(ast.parse('if block.kind == "stack":\n    pass\nx = b.kind in ("queue", "deque")')) == [1, 3]
    assert _kind_tests(ast.parse('if block.kind == kind_name or self.kind == "bce":\n    pass')) == []
