"""Layout report for vsr/ and training/: file counts, sizes, files over the limit, import circles.

Usage: ``python scripts/layout_report.py [--json] [--limit 400] [--repo DIR]``

How the module graph is built (static analysis with :mod:`ast`, nothing is imported):

- A module is every ``.py`` file below ``vsr/`` and ``training/``; ``pkg/__init__.py`` is ``pkg``.
- Every ``import`` and ``from ... import`` statement counts, wherever it stands (module level,
  functions, methods, ``try`` blocks), except inside the body of ``if TYPE_CHECKING:`` (or
  ``if typing.TYPE_CHECKING:``), which never runs. Relative imports are resolved against the
  importing module's package. Imports of modules outside the two roots are ignored.
- ``import a.b.c`` is an edge to ``a.b.c``. A name that is no file of the tree (a module outside
  the roots, or one missing) gives no edge itself; only its packages below count (next rule).
- ``from a.b import x`` is an edge to ``a.b.x`` when that is a module (a submodule named in the
  import), otherwise an edge to ``a.b`` (a name taken from the package's ``__init__``).
- Importing ``p.q.m`` also runs the ``__init__`` of every package above it. That is counted as an
  edge to each such package *unless the importer lives inside it*: a module inside ``p.q`` only
  runs while ``p.q``'s ``__init__`` has already started, so e.g. ``vsr.face.detect`` importing
  ``vsr.face.boxes`` is not an edge to ``vsr.face``, but ``vsr.config`` importing
  ``vsr.face.boxes`` is (it would run ``vsr/face/__init__.py``). Without this exception, every
  package whose ``__init__`` re-exports its submodules would count as a circle with them.
- A circle is a strongly connected component of more than one module in that graph.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("vsr", "training")
LINE_LIMIT = 400


@dataclass(frozen=True)
class Module:
    """One source file: its dotted ``name``, repo-relative ``path``, line count, package flag."""

    name: str
    path: str
    lines: int
    is_package: bool


@dataclass
class Layout:
    """Modules of the scanned roots and the import edges between them (``name -> {name}``)."""

    modules: dict[str, Module] = field(default_factory=dict)
    edges: dict[str, set[str]] = field(default_factory=dict)


def discover(repo: Path, roots: tuple[str, ...] = ROOTS) -> dict[str, Module]:
    """Every ``.py`` file under ``repo/<root>`` for each root, keyed by dotted module name."""
    modules: dict[str, Module] = {}
    for root in roots:
        for path in sorted((repo / root).rglob("*.py")):
            rel = path.relative_to(repo)
            parts = list(rel.with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            text = path.read_text(encoding="utf-8")
            name = ".".join(parts)
            modules[name] = Module(name, rel.as_posix(), len(text.splitlines()), is_package)
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """All import statements below ``node``, skipping the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _import_nodes_of(other)
        else:
            yield from _import_nodes(child)


def _import_nodes_of(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    else:
        yield from _import_nodes(node)


def _package_of(module: Module) -> str:
    return module.name if module.is_package else module.name.rpartition(".")[0]


def _resolve_base(module: Module, node: ast.ImportFrom) -> str:
    """The absolute dotted name ``node`` imports from (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    parts = _package_of(module).split(".")
    base = ".".join(parts[: len(parts) - (node.level - 1)])
    return f"{base}.{node.module}" if node.module else base


def _targets(module: Module, node: ast.Import | ast.ImportFrom, modules: dict[str, Module]) -> set[str]:
    """Dotted names one import statement names directly (before ancestor packages are added)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = _resolve_base(module, node)
    return {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}


def _with_ancestors(importer: str, target: str) -> set[str]:
    """``target`` plus every package above it whose ``__init__`` the importer does not live in."""
    found = {target}
    parts = target.split(".")
    for i in range(1, len(parts)):
        package = ".".join(parts[:i])
        if not (importer == package or importer.startswith(package + ".")):
            found.add(package)
    return found


def imports_of(module: Module, tree: ast.AST, modules: dict[str, Module]) -> set[str]:
    """The known modules that running ``module`` may import (its out-edges)."""
    edges: set[str] = set()
    for node in _import_nodes(tree):
        for target in _targets(module, node, modules):
            edges |= _with_ancestors(module.name, target)
    edges.discard(module.name)
    return edges & modules.keys()


def build(repo: Path = REPO, roots: tuple[str, ...] = ROOTS) -> Layout:
    """Scan ``roots`` below ``repo`` and build the module graph."""
    layout = Layout(modules=discover(repo, roots))
    for name, module in layout.modules.items():
        tree = ast.parse((repo / module.path).read_text(encoding="utf-8"), filename=module.path)
        layout.edges[name] = imports_of(module, tree, layout.modules)
    return layout


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start not in index:
            _tarjan(start, edges, index, low, stack, on_stack, found)
    return sorted(sorted(c) for c in found if len(c) > 1)


def _tarjan(
    start: str,
    edges: dict[str, set[str]],
    index: dict[str, int],
    low: dict[str, int],
    stack: list[str],
    on_stack: set[str],
    found: list[list[str]],
) -> None:
    work = [(start, iter(sorted(edges.get(start, ()))))]
    index[start] = low[start] = len(index)
    stack.append(start)
    on_stack.add(start)
    while work:
        node, children = work[-1]
        child = next(children, None)
        if child is not None:
            if child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
            continue
        work.pop()
        if work:
            low[work[-1][0]] = min(low[work[-1][0]], low[node])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            found.append(component)


def summary(layout: Layout, root: str, limit: int = LINE_LIMIT) -> dict[str, object]:
    """Counts for one root: files, lines, longest file, files over ``limit``, circles touching it."""
    mods = [m for m in layout.modules.values() if m.name == root or m.name.startswith(root + ".")]
    longest = max(mods, key=lambda m: m.lines)
    over = sorted(((m.path, m.lines) for m in mods if m.lines > limit), key=lambda p: -p[1])
    names = {m.name for m in mods}
    return {
        "files": len(mods),
        "lines": sum(m.lines for m in mods),
        "longest": {"path": longest.path, "lines": longest.lines},
        "over_limit": [{"path": p, "lines": n} for p, n in over],
        "circles": [c for c in circles(layout.edges) if names.intersection(c)],
    }


def report(layout: Layout, limit: int = LINE_LIMIT) -> dict[str, dict[str, object]]:
    """:func:`summary` for every root scanned."""
    roots = sorted({m.name.split(".")[0] for m in layout.modules.values()})
    return {root: summary(layout, root, limit) for root in roots}


def format_text(data: dict[str, dict[str, object]], limit: int = LINE_LIMIT) -> str:
    """Human-readable form of :func:`report`."""
    out: list[str] = []
    for root, info in data.items():
        longest = info["longest"]
        out.append(f"{root}/: {info['files']} .py files, {info['lines']} lines")
        out.append(f"  longest: {longest['path']} ({longest['lines']} lines)")
        over = info["over_limit"]
        out.append(f"  over {limit} lines: " + ("none" if not over else ""))
        out.extend(f"    {o['path']} ({o['lines']})" for o in over)
        cycles = info["circles"]
        out.append("  import circles: " + ("none" if not cycles else ""))
        out.extend("    " + " <-> ".join(c) for c in cycles)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--limit", type=int, default=LINE_LIMIT, help="line limit per file")
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout to scan (default: this one)")
    args = parser.parse_args(argv)
    data = report(build(args.repo), args.limit)
    print(json.dumps(data, indent=2) if args.json else format_text(data, args.limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
