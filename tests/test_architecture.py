"""Architecture rules for the source tree, checked statically (``ast``, no package imports).

* no import cycles between modules of `benchmark`, `baselines`, `hmil` and `studies`;
* private names (``_x``) and private modules are imported only from within their own package;
* no module is longer than 300 lines;
* ``ruff check`` and ``ruff format --check`` are clean.

Every import statement counts — module level, inside functions and under ``if TYPE_CHECKING:`` — because a
lazy or type-only import is still a dependency a reader has to follow, and cycles hidden behind them are the
ones that break when someone hoists the import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("benchmark", "baselines", "hmil", "studies")
# tests import the packages too; the privacy rule applies to them (package `tests.*`), the others do not
TEST_PACKAGE = "tests"
LINT_PATHS = ("benchmark", "baselines", "hmil", "studies", "tests", "scripts")
MAX_LINES = 300


@dataclass(frozen=True)
class Import:
    """One imported target: ``module`` is the resolved module; ``name`` is set for ``from m import name``
    when ``name`` is an attribute of ``module`` rather than a submodule."""

    module: str
    name: str | None
    lineno: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _sources(packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of ``packages``."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _modules() -> dict[str, Path]:
    """The modules of the four packages: the ones the cycle and length rules look at."""
    return _sources(PACKAGES)


def _all_modules() -> dict[str, Path]:
    """The four packages and the tests: the importers the privacy rule looks at."""
    return _sources((*PACKAGES, TEST_PACKAGE))


def _is_package(module: str) -> bool:
    return _all_modules()[module].name == "__init__.py"


def _resolve_relative(importer: str, level: int, module: str | None) -> str:
    """The absolute module a ``from .x import y`` in ``importer`` refers to."""
    base = importer.split(".")
    if not _is_package(importer):
        base = base[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([module] if module else []))


def _imports(module: str) -> list[Import]:
    """Every import in ``module`` (anywhere in the file), resolved to modules of the four packages where
    possible; targets outside them are kept so the privacy rule can look at their names too."""
    known = _all_modules()
    tree = ast.parse(known[module].read_text(encoding="utf-8"))
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, None, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_relative(module, node.level, node.module) if node.level else (node.module or "")
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:  # `from a.b import c` where a/b/c is a module
                    found.append(Import(sub, None, node.lineno))
                else:
                    found.append(Import(base, None if alias.name == "*" else alias.name, node.lineno))
    return found


def _import_graph() -> dict[str, set[str]]:
    known = _modules()
    return {module: {i.module for i in _imports(module) if i.module in known} for module in known}


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit to think about); components in finishing order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    return sorted(
        component
        for component in _strongly_connected(graph)
        if len(component) > 1 or component[0] in graph[component[0]]
    )


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _package_of(module: str) -> str:
    """The package whose directory holds ``module``'s file (a package is its own)."""
    return module if _is_package(module) else module.rpartition(".")[0]


def _private_offenders() -> list[str]:
    offenders = set()
    known = _all_modules()
    for importer in known:
        own = _package_of(importer)
        for imp in _imports(importer):
            private_module = any(_is_private(part) for part in imp.module.split("."))
            private_name = imp.name is not None and _is_private(imp.name)
            if not (private_module or private_name):
                continue
            # the module that owns the private thing: the private module's package, or the module whose
            # private attribute is taken (its own package when it is an `__init__`)
            if private_module:
                first = next(i for i, part in enumerate(imp.module.split(".")) if _is_private(part))
                owner = ".".join(imp.module.split(".")[:first])
            else:
                owner = _package_of(imp.module) if imp.module in known else imp.module.rpartition(".")[0]
            if owner != own:
                target = f"{imp.module}.{imp.name}" if imp.name else imp.module
                offenders.add(f"{importer} -> {target} (line {imp.lineno})")
    return sorted(offenders)


def test_checker_resolves_imports_and_finds_cycles() -> None:
    """Guard the checker itself: an empty graph or a broken resolver would make the rules pass vacuously."""
    graph = _import_graph()
    assert "benchmark.data.bags" in graph
    assert sum(len(targets) for targets in graph.values()) > 100, "the import graph is suspiciously small"
    assert "benchmark.core.errors" in graph["benchmark.cv.check"]  # `from benchmark.core.errors import X`
    assert _resolve_relative("benchmark.cv.files", 1, "check") == "benchmark.cv.check"  # from .check import
    assert _resolve_relative("benchmark.cv", 1, "make") == "benchmark.cv.make"  # in a package's __init__
    assert _resolve_relative("benchmark.data.files.pack", 2, "bags") == "benchmark.data.bags"  # from ..bags
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"c"}, "d": {"a"}}) == [["a", "b"], ["c"]]
    assert _is_private("_helper") and not _is_private("__version__") and not _is_private("public")


def test_no_import_cycles() -> None:
    cycles = _cycles(_import_graph())
    listing = "\n".join("  " + " <-> ".join(component) for component in cycles)
    assert not cycles, (
        f"import cycles between modules (every import counts, lazy and TYPE_CHECKING too):\n{listing}"
    )


def test_no_private_imports_across_packages() -> None:
    offenders = _private_offenders()
    listing = "\n".join("  " + line for line in offenders)
    assert not offenders, (
        "private names/modules imported from outside their own package (make them public or move them):\n"
        f"{listing}"
    )


def test_no_module_over_300_lines() -> None:
    too_long = {
        module: n
        for module, path in _modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    listing = "\n".join(f"  {module}: {n} lines" for module, n in sorted(too_long.items()))
    assert not too_long, f"modules over {MAX_LINES} lines (split along a real seam):\n{listing}"


def _ruff() -> Path:
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists():
        import pytest

        pytest.skip(f"ruff is not installed next to {sys.executable} (pip install -e '.[dev]')")
    return ruff


def test_ruff_check_clean() -> None:
    result = subprocess.run(
        [str(_ruff()), "check", *LINT_PATHS], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"ruff check failed:\n{result.stdout}{result.stderr}"


def test_ruff_format_clean() -> None:
    result = subprocess.run(
        [str(_ruff()), "format", "--check", *LINT_PATHS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"ruff format --check failed:\n{result.stdout}{result.stderr}"
