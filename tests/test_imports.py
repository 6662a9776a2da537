"""The package has no import cycle (issue 25)

The import graph is read from the source with `ast`, without importing
anything: every ``import`` and ``from ... import`` of a package module,
at the top of a module or inside a function (a lazy import that closes a
cycle is still a cycle), relative imports resolved. Only imports under
``if TYPE_CHECKING:`` are left out: they never run.

A name imported from a subpackage (``from ..models import UPGRADES``) is an
edge to the submodule that defines it when the subpackage's ``__init__``
re-exports it (``from .base import UPGRADES``), and to the ``__init__``
itself otherwise. A package's ``__init__`` importing its children is fine;
a child importing its package's ``__init__`` which imports it back is a
cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Optional, Set

import pyannote_embloss

ROOT = Path(pyannote_embloss.__file__).parent
PACKAGE = "pyannote_embloss"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


class ImportGraph:
    """Module-level import graph of `PACKAGE`, read from its source

    Attributes
    ----------
    modules : dict
        Module name -> parsed source.
    packages : set
        Names of the modules that are packages (``__init__.py``).
    edges : dict
        Module name -> {imported module name: line numbers}.
    """

    def __init__(self, root: Path = ROOT):
        self.modules: Dict[str, ast.Module] = {}
        self.packages: Set[str] = set()
        for path in sorted(root.rglob("*.py")):
            name = module_name(path, root)
            self.modules[name] = ast.parse(path.read_text(), filename=str(path))
            if path.name == "__init__.py":
                self.packages.add(name)
        self.edges: Dict[str, Dict[str, List[int]]] = {}
        for name, tree in self.modules.items():
            edges = self.edges.setdefault(name, {})
            type_only = {id(n) for block in ast.walk(tree) if _is_type_checking(block) for n in ast.walk(block)}
            for node in ast.walk(tree):
                if id(node) in type_only:
                    continue
                for target in self._targets(name, node):
                    if target != name:
                        edges.setdefault(target, []).append(node.lineno)

    def _base(self, module: str, node: ast.ImportFrom) -> Optional[str]:
        """Absolute name of the module `node` imports from (None: outside the package)"""
        if node.level == 0:
            base = node.module or ""
        else:
            package = module if module in self.packages else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{node.module}" if node.module else package
        return base if base == PACKAGE or base.startswith(PACKAGE + ".") else None

    def _targets(self, module: str, node: ast.AST) -> List[str]:
        if isinstance(node, ast.Import):
            return [self._existing(alias.name) for alias in node.names if alias.name.startswith(PACKAGE)]
        if not isinstance(node, ast.ImportFrom):
            return []
        base = self._base(module, node)
        if base is None:
            return []
        targets = []
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            if submodule in self.modules:  # from package import submodule
                targets.append(submodule)
            else:
                targets.append(self.defined_in(self._existing(base), alias.name))
        return targets

    def _existing(self, name: str) -> str:
        """`name`, or its closest existing parent module"""
        while name not in self.modules and "." in name:
            name = name.rpartition(".")[0]
        return name

    def defined_in(self, module: str, name: str, seen: Optional[set] = None) -> str:
        """The module `name` comes from when imported from `module` (following package re-exports)"""
        if module not in self.packages:
            return module
        seen = set() if seen is None else seen
        if (module, name) in seen:
            return module
        seen.add((module, name))
        for node in ast.walk(self.modules[module]):
            if isinstance(node, ast.ImportFrom) and not _in_function(self.modules[module], node):
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        base = self._base(module, node)
                        if base is None:
                            return module
                        if f"{base}.{alias.name}" in self.modules:
                            return f"{base}.{alias.name}"
                        return self.defined_in(self._existing(base), alias.name, seen)
        return module

    def cycles(self) -> List[List[str]]:
        """One cycle per strongly connected component of more than one module (Tarjan)"""
        index: Dict[str, int] = {}
        low: Dict[str, int] = {}
        stack: List[str] = []
        on_stack: Set[str] = set()
        components: List[List[str]] = []

        def visit(v: str) -> None:
            index[v] = low[v] = len(index)
            stack.append(v)
            on_stack.add(v)
            for w in self.edges.get(v, {}):
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    components.append(component)

        for v in sorted(self.modules):
            if v not in index:
                visit(v)
        return [self._cycle_in(set(component)) for component in components]

    def _cycle_in(self, component: Set[str]) -> List[str]:
        """A shortest cycle through the smallest module of a strongly connected `component`"""
        start = min(component)
        previous = {start: None}
        frontier = [start]
        while frontier:
            following = []
            for v in frontier:
                for w in sorted(self.edges.get(v, {})):
                    if w == start:
                        path = [v]
                        while previous[path[-1]] is not None:
                            path.append(previous[path[-1]])
                        return list(reversed(path)) + [start]
                    if w in component and w not in previous:
                        previous[w] = v
                        following.append(w)
            frontier = following
        return sorted(component)

    def describe(self, cycle: List[str]) -> str:
        return " -> ".join(
            f"{a}:{self.edges[a][b][0]}" for a, b in zip(cycle, cycle[1:])
        ) + f" -> {cycle[-1]}"


def _is_type_checking(node: ast.AST) -> bool:
    """Whether `node` is an ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``) block"""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _in_function(tree: ast.Module, target: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(n is target for n in ast.walk(node)):
            return True
    return False


def test_import_graph_is_read_from_the_source():
    graph = ImportGraph()
    assert "pyannote_embloss.evaluation.verification" in graph.modules
    assert "pyannote_embloss.models" in graph.packages
    # a lazy import inside a function is an edge (pyannote_embloss.load imports the loading module)
    assert graph.edges[PACKAGE]
    # a name a subpackage re-exports is an edge to the submodule that defines it
    assert graph.defined_in("pyannote_embloss.losses", "AdditiveAngularMarginLoss") == "pyannote_embloss.losses.margin"


def test_graph_finds_a_cycle(tmp_path: Path):
    package = tmp_path / PACKAGE
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from .sub import thing\n")
    (package / "sub" / "__init__.py").write_text("from .b import thing\n")
    (package / "sub" / "b.py").write_text("from ..a import f\nthing = 1\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import D\n")
    (package / "d.py").write_text("from .c import C\n")  # c only imports d for type checkers: no cycle
    graph = ImportGraph(package)
    assert graph.cycles() == [[f"{PACKAGE}.a", f"{PACKAGE}.sub.b", f"{PACKAGE}.a"]]


def test_package_has_no_import_cycle():
    graph = ImportGraph()
    cycles = graph.cycles()
    assert not cycles, "import cycles:\n" + "\n".join(graph.describe(cycle) for cycle in cycles)


# ------------------------------------------------------------------ layers (issue 35)

#: the package's layers, bottom first: a module may import its own layer and those below, never above.
#: The root modules below the stages (errors, io, lock, version, config, experiment) are the bottom;
#: the package's ``__init__`` (the public facade) and the command line are the top.
LAYERS = (
    ("errors", "io", "lock", "version", "config", "experiment"),
    ("data",),
    ("models",),
    ("losses",),
    ("inference",),
    ("evaluation",),
    ("tasks",),
    ("training",),
    ("pipelines",),
    ("", "cli"),
)


def layer_of(module: str) -> int:
    """Index in :data:`LAYERS` of `module` (its first component under the package)"""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    for index, layer in enumerate(LAYERS):
        if top in layer:
            return index
    raise AssertionError(f"{module} is in no layer of LAYERS: add its folder there")


def upward_imports(graph: ImportGraph) -> List[str]:
    """'module:line imports target (layer a above layer b)' for each import of a higher layer"""
    found = []
    for module, targets in sorted(graph.edges.items()):
        for target, lines in sorted(targets.items()):
            if layer_of(target) > layer_of(module):
                found.append(
                    f"{module}:{lines[0]} imports {target} ({'/'.join(LAYERS[layer_of(target)]) or 'the facade'} "
                    f"is above {'/'.join(LAYERS[layer_of(module)])})"
                )
    return found


def test_every_module_is_in_a_layer():
    graph = ImportGraph()
    assert {layer_of(module) for module in graph.modules} == set(range(len(LAYERS)))


def test_at_most_eight_modules_at_the_package_root():
    root_modules = sorted(path.name for path in ROOT.glob("*.py"))
    assert len(root_modules) <= 8, root_modules


def test_no_folder_imports_a_folder_above_it():
    """Lazy imports inside functions count too: they run"""
    assert upward_imports(ImportGraph()) == []


def test_layering_test_finds_an_upward_import(tmp_path: Path):
    package = tmp_path / PACKAGE
    for name in ("__init__.py", "errors.py", "data/__init__.py", "data/audio.py", "models/__init__.py"):
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text("")
    (package / "data" / "audio.py").write_text("def f():\n    from ..models import Model\n")
    found = upward_imports(ImportGraph(package))
    assert len(found) == 1 and found[0].startswith(f"{PACKAGE}.data.audio:2 imports {PACKAGE}.models"), found
