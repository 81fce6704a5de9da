"""Layout rules of the design notes: no import circles, no file over 400 lines, ``import vsr`` without torch.

Uses the static analysis of ``scripts/layout_report.py`` (its docstring states how edges are counted).
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("vsr", "training")


def _load_report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("layout_report", REPO / "scripts" / "layout_report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


layout_report = _load_report()


@pytest.fixture(scope="module")
def layout() -> object:
    return layout_report.build(REPO, ROOTS)


@pytest.mark.parametrize("root", ROOTS)
def test_no_import_circles(layout, root: str) -> None:
    found = layout_report.summary(layout, root)["circles"]
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize("root", ROOTS)
def test_no_file_over_the_line_limit(layout, root: str) -> None:
    over = layout_report.summary(layout, root)["over_limit"]
    assert not over, "over 400 lines: " + ", ".join(f"{o['path']} ({o['lines']})" for o in over)


def test_import_vsr_does_not_load_torch() -> None:
    code = "import vsr, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """The edges of a made-up tree: ``{dotted module name (``pkg`` for a package): source}``."""
    modules = {
        name: layout_report.Module(name, name, len(src.splitlines()), name in {"p", "p.q"})
        for name, src in sources.items()
    }
    return {
        name: layout_report.imports_of(modules[name], ast.parse(src), modules)
        for name, src in sources.items()
    }


def test_analysis_counts_lazy_and_relative_imports_but_not_type_checking() -> None:
    edges = _graph(
        {
            "p": "from .a import x\n",
            "p.a": "def f():\n    from . import b\n",
            "p.b": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import x\n",
            "p.q": "",
            "p.q.c": "from ..a import y\n",
            "p.d": "import p.q.c\n",
        }
    )
    assert edges["p"] == {"p.a"}
    assert edges["p.a"] == {"p.b"}  # lazy import, submodule named in a from-import
    assert edges["p.b"] == set()  # TYPE_CHECKING only
    assert edges["p.q.c"] == {"p.a"}  # relative import two levels up; p's __init__ already runs
    assert edges["p.d"] == {"p.q.c", "p.q"}  # from outside p.q: p/q/__init__.py runs too
    assert layout_report.circles(edges) == []
    assert layout_report.circles({**edges, "p.b": {"p"}}) == [["p", "p.a", "p.b"]]


def test_engine_imports_neither_the_catalogue_nor_backends(layout) -> None:
    """The frame loop sees models only through the ladder it is given (issue 12)."""
    seen: set[str] = set()
    todo = [name for name in layout.modules if name.startswith("vsr.engine")]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(layout.edges.get(name, ()))
    assert "vsr.models.catalogue" not in seen and "vsr.ladder" not in seen
    assert not [n for n in seen if n.startswith(("vsr.backends", "vsr.stream", "vsr.webcam", "vsr.webrtc"))]
