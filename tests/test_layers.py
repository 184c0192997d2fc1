"""melib is layered: a module imports only from its own layer or below."""

from __future__ import annotations

import ast

import pytest
from conftest import PROJECT_ROOT

# Lowest first. A module's layer is the longest matching prefix.
LAYERS = [
    ("melib.runtime", "melib.__init__"),
    ("melib.data",),
    ("melib.face",),
    ("melib.features",),
    ("melib.models",),
    ("melib.training",),
    ("melib.evaluation",),
    ("melib.visualization",),
    ("melib.pipelines",),
    ("melib.environment", "melib.reproduce", "melib.book", "melib.cli", "melib.__main__"),
]


def layer_of(module: str) -> int:
    if module == "melib":
        return 0
    best = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    if best is None:
        raise AssertionError(f"{module} belongs to no layer: add it to tests/test_layers.py")
    return best[0]


def module_name(path) -> str:
    rel = path.relative_to(PROJECT_ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1] if len(parts) > 1 else parts
    return ".".join(parts)


def imported_melib_modules(path):
    tree = ast.parse(path.read_text())
    package = module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("melib"):
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("melib"):
                # `from melib.data import synth` imports the submodule, not the package
                for alias in node.names:
                    candidate = f"{name}.{alias.name}"
                    yield candidate if _exists(candidate) else name


def _exists(module: str) -> bool:
    base = PROJECT_ROOT.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


MODULES = sorted((PROJECT_ROOT / "melib").rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_imports_upward(path):
    own = layer_of(module_name(path))
    for target in imported_melib_modules(path):
        if target == "melib":
            continue
        assert layer_of(target) <= own, (
            f"{module_name(path)} (layer {own}) imports {target} (layer {layer_of(target)}): "
            "move the shared code down a layer or the caller up"
        )


def test_the_import_graph_has_no_cycles():
    """Every import counts, including those inside functions: a cycle is a cycle even
    when Python tolerates it at run time."""
    graph = {}
    for path in MODULES:
        name = module_name(path)
        graph[name] = {t for t in imported_melib_modules(path) if t != name and t != "melib" and _exists(t)}
    # a package's __init__ re-exporting its own submodules is not a cycle
    for name, targets in graph.items():
        graph[name] = {t for t in targets if not t.startswith(name + ".")}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                cycle = stack[stack.index(target) :] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
