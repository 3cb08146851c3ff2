"""The exercise registry and check(): verdicts, never a traceback, and the meta-test coverage rule."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from segcourse.exercises import registry
from segcourse.exercises.registry import (
    CheckFailed,
    case,
    check,
    exercise,
    expect_callable,
    expect_close,
    expect_equal,
    expect_tensor,
    run_check,
)

HERE = Path(__file__).resolve().parent


@pytest.fixture
def scratch_registry(monkeypatch):
    """A registry holding every real exercise plus the test's own, restored afterwards."""
    registry.load_all()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return registry._REGISTRY


def _register_double(id="98.1"):
    @exercise(id, title="Double a number", level="warm-up", minutes=2, kind="implement",
              goal="Write a function.", hint="Multiply by two.")
    def check_double(candidate):
        for x in (0, 1, -3, 2.5):
            with case(f"x={x}"):
                got = candidate(x)
                if got != 2 * x:
                    raise CheckFailed(f"expected {2 * x}, got {got}")
    return check_double


def test_passed_failed_not_attempted(scratch_registry, capsys):
    _register_double()

    def stub(x):
        raise NotImplementedError("Exercise 98.1: Double a number")

    assert check("98.1", lambda x: 2 * x).status == "passed"
    assert "passed ✓" in capsys.readouterr().out
    result = check("98.1", lambda x: x + x if x else 1)   # wrong only at x=0
    out = capsys.readouterr().out
    assert result.status == "failed" and not result
    assert "case 'x=0': expected 0, got 1" in out and "Hint: Multiply by two." in out
    assert check("98.1", stub).status == "not attempted"
    assert check("98.1", None).status == "not attempted"
    assert check("98.1", ...).status == "not attempted"
    assert "not attempted" in capsys.readouterr().out


def test_exception_in_candidate_is_a_failed_case_not_a_traceback(scratch_registry, capsys):
    _register_double()

    def crashes_at_minus_three(x):   # right for 0 and 1, then a KeyError at x = -3
        return 2 * x if x != -3 else {}["boom"]

    result = check("98.1", crashes_at_minus_three)
    out = capsys.readouterr().out
    assert result.status == "failed"
    assert "Traceback" not in out
    assert "case 'x=-3': your code raised KeyError: 'boom'" in result.message
    assert '{}["boom"]' in result.message  # the offending line of the learner's code


def test_the_reported_line_is_the_learners_not_the_librarys(scratch_registry):
    _register_double()

    def uses_numpy_badly(x):
        return float(np.bincount([x])[0]) * 0 + 2 * x   # np.bincount raises on negative input

    result = run_check("98.1", uses_numpy_badly)
    assert result.status == "failed" and "case 'x=-3': your code raised ValueError" in result.message
    assert "(at `return float(np.bincount([x])[0]) * 0 + 2 * x" in result.message


def test_exception_outside_case_is_reported(scratch_registry):
    @exercise("98.2", title="Call it", level="core", minutes=1, kind="implement", goal="g", hint="h")
    def check_call(candidate):
        candidate()

    result = run_check("98.2", lambda: 1 / 0)
    assert result.status == "failed" and "ZeroDivisionError: division by zero" in result.message


def test_unknown_id_lists_known_ids(scratch_registry, capsys):
    _register_double()
    result = check("98.9", lambda x: x)
    out = capsys.readouterr().out
    assert result.status == "failed"
    assert "no exercise '98.9'" in out and "98.1" in out


def test_result_is_not_displayed_twice(scratch_registry, capsys):
    _register_double()
    result = check("98.1", lambda x: 2 * x)
    capsys.readouterr()
    result._ipython_display_()               # IPython's displayhook right after the call: silent
    assert capsys.readouterr().out == ""
    result._ipython_display_()               # shown again later on request
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, match", [
    (dict(id="1"), "not of the form"),
    (dict(id="01.2"), "not of the form"),
    (dict(id="1.0"), "not of the form"),
    (dict(level="easy"), "level 'easy'"),
    (dict(kind="quiz"), "kind 'quiz'"),
    (dict(kind="predict-then-check"), "kind 'predict-then-check'"),     # the unused aliases are gone
    (dict(minutes=0), "minutes"),
    (dict(hint=" "), "hint"),
    (dict(title='say "hi"'), "double quotes"),
])
def test_exercise_rejects_bad_metadata(kwargs, match):
    args = dict(id="97.1", title="t", level="core", minutes=5, kind="implement", goal="g", hint="h") | kwargs
    with pytest.raises(ValueError, match=match):
        exercise(args.pop("id"), **args)


def test_duplicate_ids(scratch_registry):
    exercise("97.1", title="t", level="core", minutes=5, kind="predict", goal="g", hint="h")(lambda c: None)
    assert scratch_registry["97.1"].kind == "predict"
    with pytest.raises(ValueError, match="registered twice"):
        exercise("97.1", title="t", level="core", minutes=5, kind="implement", goal="g", hint="h")(_register_double)


def test_expect_helpers():
    expect_close(np.array([1.0, 2.0]), [1.0, 2.0 + 1e-9])
    with pytest.raises(CheckFailed, match=r"expected shape \(2,\), got \(3,\)"):
        expect_close([1, 2, 3], [1, 2])
    with pytest.raises(CheckFailed, match=r"1 of 2 values are off.*index \(1,\): expected 2, got 2.5"):
        expect_close([1, 2.5], [1, 2])
    with pytest.raises(CheckFailed, match=r"1 of 4 values differ; first at index \(1, 0\)"):
        expect_equal(np.array([[1, 2], [0, 4]]), np.array([[1, 2], [3, 4]]))
    with pytest.raises(CheckFailed, match="expected 'up', got 'down'"):
        expect_equal("down", "up", "answer")
    expect_callable(len, "len(x)")
    with pytest.raises(CheckFailed, match=r"expected a function resize_mask\(mask, size\), got int"):
        expect_callable(3, "resize_mask(mask, size)")
    expect_tensor(torch.zeros(2))
    with pytest.raises(CheckFailed, match=r"expected a torch.Tensor \(a scalar loss\), got ndarray"):
        expect_tensor(np.zeros(2), " (a scalar loss)")


def test_verify_exercise(scratch_registry):
    _register_double()
    registry.verify_exercise("98.1", stub=None, wrong=[lambda x: x], solution=lambda x: 2 * x)
    with pytest.raises(AssertionError, match="should fail"):
        registry.verify_exercise("98.1", stub=None, wrong=[lambda x: x * 2.0], solution=lambda x: 2 * x)
    with pytest.raises(AssertionError, match="at least one"):
        registry.verify_exercise("98.1", stub=None, wrong=[], solution=lambda x: 2 * x)


def test_every_check_module_imports():
    registry.load_all(strict=True)
    assert not registry._LOAD_ERRORS


def _meta_tested_ids() -> dict[str, str]:
    """Exercise ids with a meta-test, from every ``tests/exercises/test_lesson*.py`` (read, not imported): the
    literal keys of its module-level ``WRONG`` dict (id -> plausible wrong answers), which the file runs through
    ``verify_against_notebook`` (stub and solution read from the solution notebook)."""
    found: dict[str, str] = {}
    for path in sorted(HERE.glob("test_lesson*.py")):
        source = path.read_text(encoding="utf-8")
        ids = set()
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "WRONG" for t in node.targets) \
                    and isinstance(node.value, ast.Dict):
                ids.update(k.value for k in node.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str))
        for ex_id in ids:
            found.setdefault(ex_id, path.name)
    return found


def test_every_lesson_meta_test_has_the_one_style():
    """Every test_lessonNN.py gives only wrong answers (``WRONG``) and runs them with ``verify_against_notebook``:
    no hand-written stub or solution handed to ``verify_exercise`` (they would drift from the notebook)."""
    for path in sorted(HERE.glob("test_lesson*.py")):
        source = path.read_text(encoding="utf-8")
        assert "verify_against_notebook(exercise_id, WRONG[exercise_id])" in source, path.name
        names = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
        names |= {a.asname or a.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom) for a in n.names}
        assert not names & {"verify_exercise", "CASES"}, (path.name, names & {"verify_exercise", "CASES"})


def test_every_exercise_has_a_meta_test():
    """Each registered exercise needs a meta-test (its wrong answers) in a tests/exercises/test_lessonNN.py."""
    registered = set(registry.load_all(strict=True))
    cases = _meta_tested_ids()
    missing = sorted(registered - set(cases), key=lambda i: tuple(map(int, i.split("."))))
    assert not missing, (f"exercises without a meta-test: {missing}; add their plausible wrong answers to WRONG in "
                         f"tests/exercises/test_lessonNN.py")
    unknown = sorted(set(cases) - registered)
    assert not unknown, f"meta-test WRONG answers for unregistered exercises: {unknown}"
