"""Project-wide checks: the import contracts (one-way layers), no import circles, the type checker, lint and
format, and a reason on every function-local import."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import tokenize
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    """The layers (CLI -> commands -> UI -> console core -> server) and the forbidden imports, by import-linter."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert {c["type"] for c in contracts} == {"layers", "forbidden"}
    for contract in contracts:
        assert f"{contract['name']} KEPT" in result.stdout, result.stdout
    assert "BROKEN" not in result.stdout


# -- import circles ---------------------------------------------------------------------------------------------


def _ancestors(module: str) -> Iterable[str]:
    parts = module.split(".")
    return (".".join(parts[:end]) for end in range(1, len(parts)))


def import_graph() -> dict[str, set[str]]:
    """Each module of ``console`` and ``mcp_server`` and the modules it imports, counting every import statement
    (function-local and ``TYPE_CHECKING`` ones too). Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__``
    first, so it counts as importing those packages as well: a package ``__init__`` that imports its submodules
    while they import the package's other modules closes a circle."""
    graph = grimp.build_graph("console", "mcp_server", include_external_packages=False)
    modules = set(graph.modules)
    edges: dict[str, set[str]] = {}
    for module in modules:
        imported = set(graph.find_modules_directly_imported_by(module)) & modules
        packages = {package for target in imported for package in _ancestors(target)}
        edges[module] = (imported | packages) - {module}
    return edges


def import_circles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """The circles, each a path that starts and ends at one module: per strongly connected component (Tarjan's
    algorithm, iterative, in a fixed order so the report is stable), enough circles to pass through every member."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(edges.get(target, ())))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                circles.extend(_circles_covering(component, edges))
    return circles


def _circles_covering(component: set[str], edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Shortest circles through the component's members until each member is on one (none for a lone module)."""
    found: list[list[str]] = []
    covered: set[str] = set()
    for member in sorted(component) if len(component) > 1 else ():
        if member not in covered:
            found.append(_circle_through(member, component, edges))
            covered.update(found[-1])
    return found


def _circle_through(start: str, component: set[str], edges: Mapping[str, set[str]]) -> list[str]:
    """The shortest path from ``start`` back to itself inside ``component`` (breadth first)."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(edges[node] & component):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"{start} is in a component but on no circle")


def test_the_circle_finder_counts_package_inits_and_finds_each_circle() -> None:
    edges = {
        "p": {"p.a"},  # p/__init__ imports p.a ...
        "p.a": {"p.b"},  # ... which imports p.b: that runs p/__init__ first, a circle
        "p.b": set(),
        "q.x": {"q.y"},
        "q.y": {"q.z"},
        "q.z": {"q.x"},
        "r": set(),
    }
    with_packages = {
        module: targets | {pkg for t in targets for pkg in _ancestors(t)} - {module}
        for module, targets in edges.items()
    }
    assert import_circles(edges) == [["q.x", "q.y", "q.z", "q.x"]]
    assert import_circles(with_packages) == [["p", "p.a", "p"], ["q.x", "q.y", "q.z", "q.x"]]
    edges["q.y"].add("q.w")  # a second circle in the same component: both are listed
    edges["q.w"] = {"q.y"}
    assert import_circles(edges) == [["q.w", "q.y", "q.w"], ["q.x", "q.y", "q.z", "q.x"]]


def test_no_import_circles() -> None:
    circles = import_circles(import_graph())
    report = "\n".join(" -> ".join(circle) for circle in circles)
    print(report)
    assert not circles, f"{len(circles)} import circle(s):\n{report}"


# -- type checker and lint ---------------------------------------------------------------------------------------

LINTED = ("console", "mcp_server", "tests", "benchmarks")


def _run(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=cwd, capture_output=True, text=True)


def test_mypy_clean() -> None:
    """mypy over both packages with the settings in pyproject.toml (untyped definitions refused in the console core
    and the server; every ``# type: ignore`` names its error code and is still needed)."""
    result = _run("mypy", "console", "mcp_server")
    print(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Success: no issues found"), result.stdout


def test_mypy_refuses_untyped_definitions_and_unused_ignores(tmp_path: Path) -> None:
    """The gate can fail: with the project's settings, an untyped definition in the console core or the server and
    an unneeded ``# type: ignore`` anywhere are errors; an untyped definition in the UI is not."""
    probe = "def untyped(value):\n    return value\n\n\nanswer: int = 42  # type: ignore[assignment]\n"
    for package in ("console/core", "mcp_server", "console/ui"):
        folder = tmp_path / package
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "probe.py").write_text(probe)
        for level in range(1, len(Path(package).parts) + 1):  # packages up to, not including, tmp_path
            (tmp_path.joinpath(*Path(package).parts[:level]) / "__init__.py").touch()
    probes = ("console/core/probe.py", "mcp_server/probe.py", "console/ui/probe.py")
    result = _run("mypy", "--config-file", str(ROOT / "pyproject.toml"), *probes, cwd=tmp_path)
    errors = sorted(re.findall(r"^(\S+:\d+): error: .*\[([a-z-]+)\]$", result.stdout, flags=re.MULTILINE))
    assert errors == [
        ("console/core/probe.py:1", "no-untyped-def"),
        ("console/core/probe.py:5", "unused-ignore"),
        ("console/ui/probe.py:5", "unused-ignore"),
        ("mcp_server/probe.py:1", "no-untyped-def"),
        ("mcp_server/probe.py:5", "unused-ignore"),
    ], result.stdout


def test_every_type_ignore_names_its_error_code() -> None:
    bare = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in ("console", "mcp_server")
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"#\s*type:\s*ignore(?!\[)", line)
    ]
    assert not bare, f"# type: ignore without an error code: {bare}"


def test_ruff_clean() -> None:
    """Lint, unused ``noqa`` comments (RUF100) included."""
    result = _run("ruff", "check", *LINTED)
    assert result.returncode == 0, result.stdout + result.stderr
    lint = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "RUF100" in lint["extend-select"]


def test_ruff_format_clean() -> None:
    result = _run("ruff", "format", "--check", "--output-format", "concise", *LINTED)
    assert result.returncode == 0, result.stdout + result.stderr


# -- function-local imports ------------------------------------------------------------------------------------

DEFERRED = re.compile(r"#\s*deferred:\s*\S")


def function_local_imports(source: str) -> list[ast.Import | ast.ImportFrom]:
    """The import statements inside a function body (nested functions and methods included)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, ast.Import | ast.ImportFrom):
                found.append(child)
            visit(
                child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            )

    visit(ast.parse(source), False)
    return found


def unexplained_imports(source: str) -> list[int]:
    """The first lines of function-local imports with no ``# deferred: <reason>`` comment on their own lines or
    on the line just above: an import is deferred only to keep a heavy library out of a path that does not need
    it, and says which."""
    comments = {
        token.start[0]
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT and DEFERRED.match(token.string)
    }
    return [
        node.lineno
        for node in function_local_imports(source)
        if not comments & set(range(node.lineno - 1, (node.end_lineno or node.lineno) + 1))
    ]


def test_the_deferred_import_check_finds_imports_without_a_reason() -> None:
    source = (
        "import os\n"  # 1: module level, never counted
        "\n"
        "def f():\n"
        "    import json  # deferred: a reason\n"  # 4
        "    # deferred: another reason\n"
        "    from pathlib import (\n"  # 6
        "        Path,\n"
        "    )\n"
        "    import re  # deferred:\n"  # 9: no reason given
        "    return json, Path, re\n"
        "\n"
        "class C:\n"
        "    def m(self):\n"
        "        import csv  # not deferred: a plain comment\n"  # 14
        "        return lambda: __import__('x')\n"
    )
    assert [node.lineno for node in function_local_imports(source)] == [4, 6, 9, 14]
    assert unexplained_imports(source) == [9, 14]


def test_every_function_local_import_says_why_it_is_deferred() -> None:
    total, missing = 0, []
    for package in ("console", "mcp_server"):
        for path in sorted((ROOT / package).rglob("*.py")):
            source = path.read_text()
            total += len(function_local_imports(source))
            missing += [f"{path.relative_to(ROOT)}:{line}" for line in unexplained_imports(source)]
    print(f"{total} function-local imports in console/ and mcp_server/")
    assert not missing, "function-local imports without a '# deferred: <reason>' comment:\n" + "\n".join(
        missing
    )


def test_help_loads_no_command_and_no_heavy_library() -> None:
    """``obo-console --help`` builds the parser from ``console.commands.parsers`` alone: no sub-command module and
    none of the libraries they load (pydantic, the Agents SDK, msal, fastmcp, textual)."""
    probe = (
        "import sys; from console.cli import build_parser; build_parser().format_help(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'pydantic', 'agents', 'msal', 'fastmcp', 'textual', 'asyncio'} or m.startswith('console.commands.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "['console.commands.parsers']"
