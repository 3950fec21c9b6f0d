"""The exception tree drawn in ``gateway.core.errors``'s docstring is the tree the module defines: every class with
its parent, stable code and HTTP status, and every subclass defined in another module, named with its parent."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

from adapters.status import STATUS
from gateway.core import errors

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^(?P<lead>[ │├└─]*?)(?:[├└]── )?(?P<name>[A-Z]\w+)\s+(?P<code>[A-Z_]+)\s+(?P<http>\d{3})\b")
ELSEWHERE = re.compile(r"``(?P<name>\w+)`` \((?P<parent>\w+), ``(?P<module>[\w.]+)``")


def drawn_tree() -> dict[str, tuple[str, str, int]]:
    """{class: (parent, code, HTTP status)} as the docstring draws it; the parent is read from the indentation."""
    doc = errors.__doc__ or ""
    block = doc.split("Tree", 1)[1].split("::\n\n", 1)[1].split("\n\n", 1)[0]
    lines = block.splitlines()
    assert lines[0].strip() == "GatewayError", lines[0]
    parents = ["GatewayError"]  # the open class at each depth
    drawn: dict[str, tuple[str, str, int]] = {}
    for line in lines[1:]:
        match = ROW.match(line.strip("\n")[4:])
        assert match, f"a tree row the test cannot read: {line!r}"
        depth = len(match["lead"]) // 4 + 1
        del parents[depth:]
        drawn[match["name"]] = (parents[depth - 1], match["code"], int(match["http"]))
        parents.append(match["name"])
    return drawn


def defined_tree() -> dict[str, tuple[str, str, int]]:
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.GatewayError) and value is not errors.GatewayError
    ]
    assert all(cls.__module__ == errors.__name__ for cls in classes)
    return {cls.__name__: (cls.__bases__[0].__name__, cls.code, STATUS[cls.kind].http) for cls in classes}


def subclasses_elsewhere() -> set[tuple[str, str, str]]:
    """(class, parent, module) of every GatewayError subclass the product defines outside errors.py, found in the
    source (so a module nobody imported here still counts)."""
    known = {cls.__name__ for cls in [errors.GatewayError, *errors.all_error_classes()]}
    found: set[tuple[str, str, str]] = set()
    sources = [p for top in ("gateway", "adapters") for p in (ROOT / top).rglob("*.py") if "wire" not in p.parts]
    classes = []
    for path in sources:
        if path == Path(errors.__file__).resolve():
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = [
                    b.id if isinstance(b, ast.Name) else b.attr
                    for b in node.bases
                    if isinstance(b, ast.Name | ast.Attribute)
                ]
                classes.append((node.name, bases, module))
    grew = True
    while grew:  # subclasses of subclasses
        grew = False
        for name, bases, module in classes:
            parent = next((b for b in bases if b in known), None)
            if parent and (name, parent, module) not in found:
                found.add((name, parent, module))
                known.add(name)
                grew = True
    return found


def test_the_drawn_tree_is_the_defined_tree() -> None:
    assert drawn_tree() == defined_tree()


def test_the_subclasses_defined_elsewhere_are_named_with_their_parent_and_keep_its_code() -> None:
    doc = (errors.__doc__ or "").split("Defined elsewhere", 1)[1]
    named = {(m["name"], m["parent"], m["module"]) for m in ELSEWHERE.finditer(" ".join(doc.split()))}
    assert named == subclasses_elsewhere()
    for name, parent, module in named:
        cls = getattr(importlib.import_module(module), name)
        assert cls.__bases__[0] is getattr(errors, parent)
        assert cls.code == getattr(errors, parent).code, name
