"""The package's shape stays what #11 made it: no import circle between its modules, no
module over ~600 lines, and ``docs/ARCHITECTURE.md`` naming only modules and public names
that exist. Static (the source's syntax trees), so it costs milliseconds."""

from __future__ import annotations

import ast
import builtins
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "privacykit"
ARCHITECTURE = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")

#: "No module in privacykit/ over ~600 lines (sandbox data excepted)": ~ is 620 here.
MAX_LINES = 620
#: Data, not code (the brief's exception).
DATA_MODULES = {"privacykit/sandbox/seed.py"}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(name: str, path: Path) -> set[str]:
    """The package's modules ``name`` imports when it runs: at module level and inside its
    functions (a deferred import still closes a circle when it runs), not under
    ``TYPE_CHECKING``. Importing ``a.b.c`` runs ``a`` and ``a.b`` too, except the importing
    module's own ancestors, which are running already."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.If) and _type_checking(node):
                continue
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    module = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    module = node.module or ""
                targets.add(module)
                targets.update(
                    f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in MODULES
                )
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                inner = getattr(node, field, None)
                if isinstance(inner, list):
                    visit([n for n in inner if isinstance(n, ast.stmt | ast.excepthandler)])
            if isinstance(node, ast.ExceptHandler | ast.match_case):
                visit(node.body)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    edges: set[str] = set()
    for target in targets:
        parts = target.split(".")
        for size in range(1, len(parts) + 1):
            module = ".".join(parts[:size])
            own_ancestor = size < len(parts) and name.startswith(module + ".")
            if module in MODULES and module != name and not own_ancestor:
                edges.add(module)
    return edges


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
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
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_sees_real_edges() -> None:
    # The walker is not blind: known imports are edges, a module's own package is not.
    assert "privacykit.ledger.verify" in _imported(
        "privacykit.ledger.store", MODULES["privacykit.ledger.store"]
    )
    assert "privacykit.ledger" not in _imported(
        "privacykit.ledger.store", MODULES["privacykit.ledger.store"]
    )


def test_no_import_circle() -> None:
    graph = {name: _imported(name, path) for name, path in MODULES.items()}
    assert sum(len(edges) for edges in graph.values()) > len(MODULES)
    assert _circles(graph) == []


def test_no_module_over_about_600_lines() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in MODULES.values()
    }
    over = {name: n for name, n in sizes.items() if n > MAX_LINES and name not in DATA_MODULES}
    assert over == {}, over


def _code_spans() -> list[str]:
    return re.findall(r"`([^`\n]+)`", ARCHITECTURE) + re.findall(
        r"```python\n(.*?)```", ARCHITECTURE, re.S
    )


def test_architecture_names_only_files_that_exist() -> None:
    named = set(re.findall(r"(?<![\w./-])(privacykit/[\w./-]*\w/?)", ARCHITECTURE))
    named.discard("privacykit/_data/")  # only inside an installed wheel (privacykit.shipped)
    assert len(named) > 10
    assert sorted(p for p in named if not (ROOT / p).exists()) == []
    files = [str(p.relative_to(ROOT)) for p in ROOT.glob("*/**/*.py")] + ["setup.py"]
    short = {n for n in re.findall(r"(?<![\w<>])([\w/]+\.py)\b", ARCHITECTURE)}
    assert len(short) > 30
    missing = [n for n in sorted(short) if not any(f == n or f.endswith("/" + n) for f in files)]
    assert missing == []


def test_architecture_names_only_modules_and_names_that_exist() -> None:
    spans = _code_spans()
    for module, names in re.findall(
        r"^\s*from (privacykit[\w.]*) import ([^#\n]+)", "\n".join(spans), re.M
    ):
        imported = importlib.import_module(module)
        for public in filter(None, re.split(r"[\s,()]+", names)):
            assert hasattr(imported, public), f"{module}.{public}"
    dotted = {m for s in spans for m in re.findall(r"\bprivacykit(?:\.\w+)+", s)}
    dotted.discard("privacykit.lock")  # the home's lock file
    for name in sorted(dotted):
        if re.search(rf"{re.escape(name)}(-\w+)?/\d", ARCHITECTURE):
            continue  # a format name (privacykit.erasure-evidence/1), not a module
        parts = name.split(".")
        for size in range(len(parts), 0, -1):
            try:
                value = importlib.import_module(".".join(parts[:size]))
            except ModuleNotFoundError:
                continue
            for attribute in parts[size:]:
                value = getattr(value, attribute)  # AttributeError names what is missing
            break


def test_every_call_the_architecture_shows_is_defined() -> None:
    source = "\n".join(path.read_text(encoding="utf-8") for path in MODULES.values())
    defined = set(re.findall(r"^\s*(?:async )?def (\w+)", source, re.M))
    defined |= set(re.findall(r"^\s*class (\w+)", source, re.M))
    defined |= set(re.findall(r"^\s*(?:self\.)?(\w+)\s*[:=]", source, re.M))
    called = set(re.findall(r"\b([A-Za-z_]\w*)\(", "\n".join(_code_spans())))
    assert len(called) > 100
    assert sorted(called - defined - set(dir(builtins))) == []


def test_every_module_says_what_it_owns() -> None:
    undocumented = [
        name
        for name, path in MODULES.items()
        if not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert undocumented == []
