"""The package's layers, kept by static analysis of every module under zkelect/.

    foundation  <  _zookeeper  <  fencing  <  _election  <  zkelect/__init__, aio  <  ops, testing

* no import cycles between modules (imports at module level and inside functions; those
  under ``if TYPE_CHECKING:`` never run, so they may close a cycle);
* a module imports only its own layer and the layers below it (TYPE_CHECKING imports too:
  a type is a dependency all the same);
* only the ZooKeeper boundary (zkelect/_zookeeper) imports kazoo, and zkelect.testing (for
  users' kazoo-based tests);
* a service that only receives fencing tokens imports zkelect.fencing without kazoo.

Every violation is listed as ``importer:line -> imported  [rule]``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import zkelect

PACKAGE = Path(zkelect.__file__).parent
FOUNDATION = frozenset(
    {
        "zkelect._version",
        "zkelect.errors",
        "zkelect.clock",
        "zkelect.config",
        "zkelect.security",
        "zkelect.metrics",
        "zkelect._lease",  # the lease's arithmetic: pure, and ElectionConfig checks its figures
        "zkelect._dispatch",
        "zkelect._lifeline",
        "zkelect._logs",  # the library's log records: lifecycle events, secrets kept out
    }
)
#: Layer number by package prefix (longest match wins); foundation is 0.
LAYERS = {
    "zkelect._zookeeper": 1,
    "zkelect.fencing": 2,
    "zkelect._election": 3,
    "zkelect": 4,  # the public API, zkelect/__init__.py
    "zkelect.aio": 4,  # the public API for asyncio: AsyncElection wraps an Election
    "zkelect.ops": 5,
    "zkelect.testing": 5,
}
LAYER_NAMES = {
    0: "foundation",
    1: "_zookeeper",
    2: "fencing",
    3: "_election",
    4: "zkelect/__init__, aio",
    5: "ops/testing",
}
KAZOO_ALLOWED = ("zkelect._zookeeper", "zkelect.testing")


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # a zkelect module, or the top-level name of a third-party one
    line: int
    type_checking: bool

    def where(self) -> str:
        return f"{self.importer}:{self.line} -> {self.target}"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int | None:
    if module in FOUNDATION or module.startswith("zkelect.metrics."):
        return 0
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or (prefix != "zkelect" and module.startswith(prefix + ".")):
            return LAYERS[prefix]
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str, source: str, known: set[str]) -> list[Import]:
    """Every import statement in ``source``, at any depth, resolved to a module."""
    package = module if _is_package(module, known) else module.rpartition(".")[0]
    found: list[Import] = []

    def resolve(name: str) -> str:
        if name.startswith("zkelect.") or name == "zkelect":
            while name not in known and "." in name:  # a name inside a module
                name = name.rpartition(".")[0]
            return name
        return name.partition(".")[0]

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, guarded)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(module, resolve(alias.name), node.lineno, guarded))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # ``from pkg import mod`` imports the module pkg.mod when there is one.
                full = f"{base}.{alias.name}"
                target = full if full in known else resolve(base)
                found.append(Import(module, target, node.lineno, guarded))
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(ast.parse(source), False)
    return found


def _is_package(module: str, known: set[str]) -> bool:
    return module == "zkelect" or any(other.startswith(module + ".") for other in known)


def package_imports() -> list[Import]:
    modules = all_modules()
    known = set(modules)
    result: list[Import] = []
    for module, path in modules.items():
        result.extend(imports_of(module, path.read_text(encoding="utf-8"), known))
    return result


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a self-import),
    each as one cycle through it (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
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
                if len(component) > 1 or node in edges.get(node, ()):
                    components.append(_cycle_in(sorted(component), edges))
    return components


def _cycle_in(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """One cycle through the component's first module (breadth-first, shortest)."""
    members, start = set(component), component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(edges.get(node, ())):
            if child == start:
                return [*paths[node], start]
            if child in members and child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    return component


# -- the rules ------------------------------------------------------------------------------


def cycle_violations(imports: list[Import]) -> list[str]:
    edges: dict[str, set[str]] = {}
    for imp in imports:
        if not imp.type_checking and imp.target.startswith("zkelect"):
            edges.setdefault(imp.importer, set()).add(imp.target)
    return [" -> ".join(cycle) + "  [import cycle]" for cycle in find_cycles(edges)]


def layer_violations(imports: list[Import], modules: set[str]) -> list[str]:
    problems = [
        f"{module}  [in no layer: add it to FOUNDATION in this test or move it into a layer]"
        for module in sorted(modules)
        if layer_of(module) is None
    ]
    for imp in imports:
        if not imp.target.startswith("zkelect"):
            continue
        mine, theirs = layer_of(imp.importer), layer_of(imp.target)
        if mine is None or theirs is None or theirs <= mine:
            continue
        kind = " (TYPE_CHECKING)" if imp.type_checking else ""
        problems.append(
            f"{imp.where()}{kind}  [layer: {LAYER_NAMES[mine]} may not import "
            f"{LAYER_NAMES[theirs]}, a layer above it]"
        )
    return problems


def kazoo_violations(imports: list[Import]) -> list[str]:
    return [
        f"{imp.where()}  [kazoo outside the ZooKeeper boundary and zkelect.testing]"
        for imp in imports
        if imp.target == "kazoo"
        and not any(imp.importer == p or imp.importer.startswith(p + ".") for p in KAZOO_ALLOWED)
    ]


def _check(problems: list[str]) -> None:
    if problems:
        listed = "\n  ".join(sorted(set(problems)))
        pytest.fail(f"{len(set(problems))} violation(s):\n  {listed}", pytrace=False)


def test_no_import_cycles() -> None:
    _check(cycle_violations(package_imports()))


def test_each_layer_imports_only_itself_and_below() -> None:
    _check(layer_violations(package_imports(), set(all_modules())))


def test_only_the_zookeeper_boundary_imports_kazoo() -> None:
    _check(kazoo_violations(package_imports()))


def test_fencing_imports_without_kazoo() -> None:
    # kazoo blocked: importing it would fail; and kazoo available: it is not imported.
    for block in ("sys.modules['kazoo'] = None", "pass"):
        script = textwrap.dedent(
            f"""
            import sys
            {block}
            import zkelect.fencing
            from zkelect import FencingGuard, FencingToken, SQLiteFencedStore
            from zkelect.fencing import FencedTransaction, Leadership, PostgresFencedStore
            token = FencingToken.parse(str(FencingToken(5, "/e", "a", 1)))
            with FencingGuard().admit("r", str(token)) as admitted:
                assert admitted.token == token
            loaded = [m for m, v in sys.modules.items() if m.split(".")[0] == "kazoo" and v]
            assert not loaded, loaded
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"with {block!r}:\n{done.stderr}"


# -- the analysis itself ----------------------------------------------------------------------


def test_the_analysis_sees_imports_of_every_kind() -> None:
    source = textwrap.dedent(
        """
        from typing import TYPE_CHECKING
        import kazoo.client
        from zkelect.fencing import token
        from zkelect.errors import ZkElectError
        from . import session
        if TYPE_CHECKING:
            from zkelect._election.election import Election
        def late():
            from zkelect.ops import http
        """
    )
    known = {"zkelect", "zkelect.errors", "zkelect.fencing", "zkelect.fencing.token"}
    known |= {"zkelect._zookeeper", "zkelect._zookeeper.x", "zkelect._zookeeper.session"}
    known |= {"zkelect._election.election", "zkelect.ops", "zkelect.ops.http"}
    found = {
        (imp.target, imp.type_checking) for imp in imports_of("zkelect._zookeeper.x", source, known)
    }
    assert found == {
        ("typing", False),
        ("kazoo", False),
        ("zkelect.fencing.token", False),
        ("zkelect.errors", False),
        ("zkelect._zookeeper.session", False),
        ("zkelect._election.election", True),
        ("zkelect.ops.http", False),
    }
    # And on the real package: the boundary is seen importing kazoo.
    assert any(
        imp.importer == "zkelect._zookeeper.session" and imp.target == "kazoo"
        for imp in package_imports()
    )


def test_the_rules_name_what_breaks_them() -> None:
    cycle = find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert cycle == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
    upward = Import("zkelect.fencing.token", "zkelect._election.nodes", 3, True)
    (problem,) = layer_violations([upward], {"zkelect.fencing.token"})
    assert problem.startswith("zkelect.fencing.token:3 -> zkelect._election.nodes (TYPE_CH")
    assert "fencing may not import _election" in problem
    assert kazoo_violations([Import("zkelect.fencing.guard", "kazoo", 9, False)])
    assert not kazoo_violations([Import("zkelect._zookeeper.hooks", "kazoo", 9, False)])
    assert layer_of("zkelect") == 4 and layer_of("zkelect.ops.cli.main") == 5
    assert layer_of("zkelect.config") == 0 and layer_of("zkelect.unplaced") is None
