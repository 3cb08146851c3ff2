"""The package's layers (docs/design.md): every import points down or sideways, never up, and never in a cycle.

Read from the source with :mod:`ast` (nothing is imported), so a violation names the file and the line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "segcourse"

#: bottom to top; a part of ``segcourse`` may import its own layer and the ones below it. "" is the
#: package's ``__init__``/``__main__``, which re-export ``config`` and dispatch the commands.
LAYERS: list[set[str]] = [
    {"constants", "files", "_checks", "pins", "checking", "_commands"},
    {"config", ""},
    {"data", "metrics", "models", "classical", "plotting"},
    {"losses", "detection", "inference"},
    {"train"},
    {"deploy", "teaching"},
    {"widgets", "capstone", "exercises"},
]
LEVEL = {part: i for i, layer in enumerate(LAYERS) for part in layer}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, top_level_only: bool = False) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of ``path`` (relative imports resolved)."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                if not node.module:  # "from . import x": x may be a module of that package
                    found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
                    continue
            else:
                target = node.module or ""
            found.append((node.lineno, target))
    return found


def _part(module: str) -> str:
    """``segcourse.train.fit`` -> ``train``; ``segcourse.config`` -> ``config``; ``segcourse`` and
    ``segcourse.__main__`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] != "__main__" else ""


FILES = sorted(PACKAGE.rglob("*.py"))


def test_every_part_of_the_package_has_a_layer():
    parts = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in FILES}
    parts = {"" if p in ("__init__", "__main__") else p for p in parts}
    assert parts - set(LEVEL) == set(), f"add these to a layer in LAYERS and docs/design.md: {parts - set(LEVEL)}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down_never_up_nor_out_of_the_package(path):
    here = _part(_module_name(path))
    wrong = []
    for line, module in _imports(path):
        top = module.split(".")[0]
        if top in ("coursetools", "tests", "solutions", "notebooks", "benchmarks"):
            wrong.append(f"line {line}: imports {module} (segcourse never imports the course's tools or tests)")
        elif top == "segcourse":
            there = _part(module)
            there = there if there in LEVEL else ""  # "from segcourse import pick": the package itself
            if LEVEL[there] > LEVEL[here]:
                wrong.append(f"line {line}: {here or 'segcourse'} (layer {LEVEL[here]}) imports {module} "
                             f"(layer {LEVEL[there]}), a layer above it")
    assert not wrong, f"{path.relative_to(ROOT)}:\n" + "\n".join(wrong)


def test_no_import_cycle_between_modules():
    """Module-level imports only (a function-level import is lazy and cannot deadlock a first import)."""
    names = {_module_name(p): p for p in FILES}
    graph = {}
    for name, path in names.items():
        targets = set()
        for _, module in _imports(path, top_level_only=True):
            while module and module not in names:  # "segcourse.metrics.confusion_matrix" -> the module
                module = module.rpartition(".")[0]
            if module and module != name and not name.startswith(module + "."):  # a package's own __init__
                targets.add(module)
        graph[name] = targets
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            pytest.fail("import cycle: " + " -> ".join(cycle))
