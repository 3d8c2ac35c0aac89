"""The layers point down: app (cli, headless, manage, tui) -> engine -> context, memory,
narrator (peers: none imports another) -> storage -> config -> generation -> errors, text
and compute. Every import counts, inside functions too; only imports under TYPE_CHECKING (type
hints) do not. No import cycle among storyteller's modules."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "storyteller"
LEVELS = {
    "storyteller": 0, "storyteller.errors": 0, "storyteller.text": 0, "storyteller.compute": 0,
    "storyteller.generation": 1,
    "storyteller.config": 2,
    "storyteller.storage": 3,
    "storyteller.context": 4, "storyteller.memory": 4, "storyteller.narrator": 4,
    "storyteller.engine": 5,
    "app": 6,
}
# The app layer is one unit: the command line opens the terminal app or a headless run.
APP = {"storyteller.cli", "storyteller.headless", "storyteller.manage", "storyteller.tui",
       "storyteller.__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def unit(module: str) -> str:
    """The layer unit a module belongs to: its top-level module or package (or the app)."""
    top = ".".join(module.split(".")[:2])
    return "app" if top in APP else top


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_modules(source: str) -> set[str]:
    """The storyteller modules a source imports, TYPE_CHECKING blocks left out."""
    found: set[str] = set()
    pending = [ast.parse(source)]
    while pending:
        node = pending.pop()
        if _type_checking_only(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from storyteller import manage` imports a module
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
        pending.extend(ast.iter_child_nodes(node))
    return {name for name in found if name.split(".")[0] == "storyteller"}


def graph(modules: dict[str, str]) -> dict[str, set[str]]:
    return {name: imported_modules(source) - {name} for name, source in modules.items()}


def layer_violations(edges: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in sorted(edges.items()):
        for target in sorted(targets):
            if unit(module) == unit(target):
                continue
            if LEVELS[unit(module)] <= LEVELS[unit(target)]:
                kind = "peer" if LEVELS[unit(module)] == LEVELS[unit(target)] else "upward"
                problems.append(f"{module} -> {target} ({kind})")
    return problems


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, found by depth-first search (one path per cycle start)."""
    found, state = [], {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges.get(module, ())):
            if state.get(target) == "open":
                found.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    return found


def sources() -> dict[str, str]:
    return {name: path.read_text(encoding="utf-8") for name, path in MODULES.items()}


def test_every_module_has_a_layer():
    assert sorted({unit(name) for name in MODULES} - set(LEVELS)) == []


def test_imports_only_point_down_and_peers_do_not_import_each_other():
    assert layer_violations(graph(sources())) == []


def test_no_import_cycle():
    assert cycles(graph(sources())) == []


@pytest.mark.parametrize(("modules", "expected"), [
    ({"storyteller.storage.campaign": "from storyteller.engine.game import Game"},
     ["storyteller.storage.campaign -> storyteller.engine.game (upward)"]),
    ({"storyteller.memory.recall": "def f():\n    from storyteller.context import prompt"},
     ["storyteller.memory.recall -> storyteller.context.prompt (peer)"]),
    ({"storyteller.memory.recall":
      "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import storyteller.engine"},
     []),
])
def test_the_checker_sees_upward_and_peer_imports_even_inside_functions(modules, expected):
    assert layer_violations(graph(modules)) == expected


def test_the_checker_sees_a_cycle_through_a_function_body():
    modules = {"storyteller.engine.a": "import storyteller.engine.b",
               "storyteller.engine.b": "def f():\n    import storyteller.engine.a"}
    assert cycles(graph(modules)) == [["storyteller.engine.a", "storyteller.engine.b",
                                       "storyteller.engine.a"]]
