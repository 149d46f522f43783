"""No import cycle among collector's modules. In a cycle no module can be read, tested or changed alone, and which
one runs first decides which half-made module the other sees (issue 11: the config loader needed the sensor
registry while the sensors built the MQTT connection, whose module needed the loader).

The graph is read from the source with ast, not from a run: every `import` and `from ... import` counts, at module
level and inside functions alike (an import deferred into a function is still a dependency of the design, only one
that shows later), except under `if TYPE_CHECKING:`, which never runs. An import reaches what Python runs for it
(Python 3.11 reference, "The import system", 5.4.2 and 5.7):
- `import a.b.c` and `from a.b.c import n` run `a/__init__`, `a/b/__init__` and `a.b.c`, so they reach all three,
  except the importer's own packages, which are already running when it runs;
- `from a.b import c`, with `c` a module, also reaches `a.b.c`;
- `importlib.import_module(name)` with a name computed at run time may reach any module of the importer's package
  (the sensor registry imports a type's module by its name): every one counts, erring on the safe side.
"""

import ast
from itertools import pairwise
from pathlib import Path

from cli import ROOT


def module_names(package: Path) -> dict[str, Path]:
    """Dotted name -> source file of every module in the package folder (a package by its __init__.py)."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


class Imports(ast.NodeVisitor):
    """The (imported name, line) pairs of one module, wherever they are in it, but for `if TYPE_CHECKING:` bodies."""

    def __init__(self, module: str, package: str):
        self.module, self.package = module, package
        self.found: list[tuple[str, int]] = []  # a module name, or "<package>.*" for a computed name

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING" or \
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found += [(alias.name, node.lineno) for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:  # relative: from the importer's package, one level up per dot after the first
            anchor = self.package.split(".")[:len(self.package.split(".")) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        self.found.append((base, node.lineno))
        self.found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]  # kept if it is a module

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("import_module", "__import__") and node.args:
            argument = node.args[0]
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                self.found.append((argument.value, node.lineno))
            else:
                self.found.append((f"{self.package}.*", node.lineno))
        self.generic_visit(node)


def reached(importer: str, imported: str, modules: dict[str, Path]) -> set[str]:
    """The modules of the package that importing `imported` from `importer` runs (see the module docstring)."""
    if imported.endswith(".*"):
        package = imported[:-2]
        return {m for m in modules if m.startswith(package + ".") and m != importer}
    parts = imported.split(".")
    names = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    own = {".".join(importer.split(".")[:i]) for i in range(1, importer.count(".") + 2)}  # importer and its packages
    return {n for n in names if n in modules} - own


def import_graph(package: Path = ROOT / "collector") -> dict[str, dict[str, int]]:
    """Module -> {module of the package it imports: the line of the first such import}."""
    modules = module_names(package)
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        visitor = Imports(module, package_of(module, path))
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        edges = graph.setdefault(module, {})
        for imported, line in visitor.found:
            for target in reached(module, imported, modules):
                edges.setdefault(target, line)
    return graph


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The graph's strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
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
                        components.append(sorted(component))
    return components


def shortest_cycle(graph: dict[str, dict[str, int]], start: str, within: set[str]) -> list[str]:
    """The shortest path from `start` back to itself through `within` (breadth first)."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node]):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if target in within and target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"{start} is in no cycle")


def describe(graph: dict[str, dict[str, int]], component: list[str]) -> str:
    cycle = shortest_cycle(graph, component[0], set(component))
    steps = "\n".join(f"    {a} (line {graph[a][b]}) imports {b}" for a, b in pairwise(cycle))
    return (f"import cycle {' -> '.join(cycle)}\n{steps}\n  in a circle of {len(component)} modules: "
            f"{', '.join(component)}")


def test_no_module_of_collector_imports_itself_through_others():
    graph = import_graph()
    assert "collector.config" in graph and graph["collector.cli"], "the graph was read"  # not vacuously empty
    cycles = [describe(graph, component) for component in strongly_connected(graph)]
    assert not cycles, "\n".join(cycles)


def test_a_deferred_or_computed_import_closes_a_cycle_and_a_type_checking_one_does_not(tmp_path):
    package = tmp_path / "app"
    (package / "parts").mkdir(parents=True)
    sources = {
        "__init__.py": "",
        "loader.py": "from typing import TYPE_CHECKING\nfrom app.parts.registry import TYPES\n"
                     "if TYPE_CHECKING:\n    from app.types import Thing\n",
        "types.py": "def load():\n    from app.loader import TYPES\n",  # deferred
        "hub.py": "from app.types import load\n",
        "parts/__init__.py": "",
        "parts/registry.py": "import importlib\n\ndef get(name):\n"
                             "    return importlib.import_module(f'app.parts.{name}')\n",
        "parts/plug.py": "from app.hub import load\n",
    }
    for name, source in sources.items():
        (package / name).write_text(source)
    graph = import_graph(package)
    assert "app.types" not in graph["app.loader"]  # TYPE_CHECKING
    assert graph["app.types"] == {"app.loader": 2}  # deferred
    assert set(graph["app.parts.registry"]) == {"app.parts.plug"}  # computed: any other module of its package
    assert set(graph["app.loader"]) == {"app.parts", "app.parts.registry"}  # the package's __init__ runs first
    assert [describe(graph, c) for c in strongly_connected(graph)] == [
        "import cycle app.hub -> app.types -> app.loader -> app.parts.registry -> app.parts.plug -> app.hub\n"
        "    app.hub (line 1) imports app.types\n"
        "    app.types (line 2) imports app.loader\n"
        "    app.loader (line 2) imports app.parts.registry\n"
        "    app.parts.registry (line 4) imports app.parts.plug\n"
        "    app.parts.plug (line 1) imports app.hub\n"
        "  in a circle of 5 modules: app.hub, app.loader, app.parts.plug, app.parts.registry, app.types"]


def test_the_sensor_types_reach_neither_the_loader_nor_the_mqtt_client():
    """Dependencies point one way, loader -> registry -> sensor type: a type is handed its settings and the MQTT hub,
    it never imports the loader nor builds a connection (on b31e9d3, sensors/base.py imported collector.mqtt)."""
    graph = import_graph()
    for module in (m for m in graph if m == "collector.sensors" or m.startswith("collector.sensors.")):
        reachable, frontier = set(), [module]
        while frontier:
            frontier = [t for node in frontier for t in graph[node] if t not in reachable]
            reachable.update(frontier)
        assert not reachable & {"collector.config", "collector.mqtt"}, module
