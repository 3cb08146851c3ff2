"""Each exercise's solution and learner stub, read from the solution notebook (never hand-copied).

The exercise builder parses the ``# BEGIN SOLUTION <id>`` / ``# END SOLUTION <id>`` regions of
``solutions/NN_*.ipynb`` and writes the learner notebooks; this module asks the builder for the same
regions and takes from them what a learner's ``check("<id>", candidate)`` cell receives:

* :func:`solution`: the candidate of the solution notebook (the function or value as solved there);
* :func:`stub`: the candidate of the learner notebook's version of the same cell (the builder's
  ``raise NotImplementedError(...)`` function or its ``# STUB:`` value);
* :func:`verify_against_notebook`: :func:`~segcourse.exercises.registry.verify_exercise` on both, with
  the wrong answers a lesson's meta-test gives.

The candidate is the second argument of the first ``check("<id>", ...)`` call at or after the region's
cell. It is computed without running the notebook: only the statements of that cell which define the
names the candidate uses are executed (a ``def``, an assignment), after the notebook's own imports and
``def``/``class`` statements of earlier cells that those statements need (found with :mod:`symtable`).
"""

from __future__ import annotations

import ast
import functools
import symtable
from pathlib import Path
from typing import Any

from coursetools import learner as builder  # the learner-notebook builder parses the regions
from segcourse.exercises.registry import load_all, verify_exercise

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


def solution(exercise_id: str) -> Any:
    """What the solution notebook passes to ``check(exercise_id, ...)``."""
    return _candidate(exercise_id, learner=False)


def stub(exercise_id: str) -> Any:
    """What the generated learner notebook passes to ``check(exercise_id, ...)`` before the learner writes anything."""
    return _candidate(exercise_id, learner=True)


def verify_against_notebook(exercise_id: str, wrong: list) -> None:
    """The meta-test of one exercise: its check says "not attempted" on the learner's stub, "failed" on every
    answer in ``wrong`` and "passed" on the solution notebook's answer."""
    verify_exercise(exercise_id, stub=stub(exercise_id), wrong=wrong, solution=solution(exercise_id))


# ------------------------------------------------------------------------------------------- reading


def _python(source: str) -> ast.Module:
    """A code cell as Python (IPython's ``%magic`` lines become calls, as in the builder's own check)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return ast.parse(TransformerManager().transform_cell(source))


@functools.cache
def _lesson(lesson: int) -> dict[str, dict]:
    """``{exercise id: {"cells": [code cell Python trees], "region": cell index, "learner": learner cell tree,
    "candidate": expression}}`` for one lesson's solution notebook."""
    import nbformat

    found = sorted(SOLUTIONS.glob(f"{lesson:02d}_*.ipynb"))
    assert len(found) == 1, f"expected one solutions/{lesson:02d}_*.ipynb, found {[p.name for p in found]}"
    path = found[0]
    nb = nbformat.read(path, as_version=4)
    registry = load_all()
    _, ids, errors = builder.transform_notebook(nb, path.name, lesson, registry)
    assert not errors, f"{path.name} does not build into its learner notebook:\n" + "\n".join(errors)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    trees = [_python(cell.source) for cell in code]
    exercises: dict[str, dict] = {}
    for index, cell in enumerate(code):
        # the builder on this one cell: the ids whose region it holds and the learner's version of it
        # (its complaints about the lesson's other exercises, which live in other cells, do not matter here)
        single = nbformat.v4.new_notebook(cells=[cell])
        learner, cell_ids, _ = builder.transform_notebook(single, path.name, lesson, registry)
        for exercise_id in cell_ids:
            exercises[exercise_id] = {"cells": trees, "region": index, "learner": _python(learner.cells[-1].source),
                                      "candidate": _check_argument(trees[index:], exercise_id, path.name)}
    assert sorted(exercises) == sorted(ids), (sorted(exercises), sorted(ids))
    return exercises


def _check_argument(trees: list[ast.Module], exercise_id: str, name: str) -> ast.expr:
    """The candidate expression of the first ``check(exercise_id, candidate)`` call in ``trees``."""
    for tree in trees:
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "check"
                    and len(node.args) == 2 and isinstance(node.args[0], ast.Constant)
                    and node.args[0].value == exercise_id):
                return node.args[1]
    raise AssertionError(f"{name}: no check({exercise_id!r}, ...) call at or after the region of exercise {exercise_id}")


@functools.cache
def _bound_names(source: str) -> frozenset[str]:
    """The module-level names a top-level statement (as source) binds."""
    table = symtable.symtable(source, "<cell>", "exec")
    return frozenset(s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported())


def _used_globals(node: ast.AST) -> set[str]:
    """The module-level names a statement or expression reads, inside its functions and classes too."""
    source = ast.unparse(node)
    table = symtable.symtable(source if isinstance(node, ast.stmt) else f"_ = ({source})", "<cell>", "exec")
    names, pending = set(), [table]
    while pending:
        table = pending.pop()
        top = table.get_type() == "module"
        names.update(s.get_name() for s in table.get_symbols()
                     if s.is_referenced() and (s.is_global() or (top and not s.is_imported())))
        pending.extend(table.get_children())
    return names - {"_"}


def _needed_statements(names: set[str], region: ast.Module, earlier: list[ast.Module]) -> list[ast.stmt]:
    """The statements that define ``names`` and, in turn, what those statements use. A name is looked up in the
    region's cell first (its last top-level statement binding it), then in the earlier cells from the nearest
    back, where only imports, ``def`` and ``class`` count: no computation of the notebook is re-run."""
    cells = [(len(earlier), region.body)] + [
        (k, [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))])
        for k, tree in reversed(list(enumerate(earlier)))]
    chosen: dict[tuple[int, int], ast.stmt] = {}
    wanted, done = set(names), set()
    while wanted - done:
        name = min(wanted - done)
        done.add(name)
        for cell, statements in cells:
            hits = [i for i, stmt in enumerate(statements) if name in _bound_names(ast.unparse(stmt))]
            if hits:
                if (cell, hits[-1]) not in chosen:
                    chosen[cell, hits[-1]] = statements[hits[-1]]
                    wanted |= _used_globals(statements[hits[-1]])
                break
        # a name defined nowhere is a builtin, or fails with a NameError naming it when the candidate runs
    return [chosen[key] for key in sorted(chosen)]   # in notebook order


def _candidate(exercise_id: str, *, learner: bool) -> Any:
    lesson = int(exercise_id.split(".")[0])
    exercises = _lesson(lesson)
    assert exercise_id in exercises, f"exercise {exercise_id} has no solution region in solutions/{lesson:02d}_*.ipynb"
    info = exercises[exercise_id]
    region = info["learner"] if learner else info["cells"][info["region"]]
    expression = info["candidate"]
    statements = _needed_statements(_used_globals(expression), region, info["cells"][:info["region"]])
    namespace: dict[str, Any] = {"__name__": f"solutions_{lesson:02d}"}
    code = compile(ast.Module(body=statements, type_ignores=[]), f"<exercise {exercise_id}>", "exec")
    exec(code, namespace)  # noqa: S102 - the course's own solution notebook, the code the lesson runs
    return eval(compile(ast.Expression(expression), f"<check {exercise_id}>", "eval"), namespace)
