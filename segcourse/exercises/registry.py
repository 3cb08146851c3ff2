"""The exercise registry and :func:`check`, the learner's "did I get it right?" button.

Each lesson's checks live in ``segcourse/exercises/lessonNN.py`` and register
themselves with the :func:`exercise` decorator::

    from .registry import CheckFailed, case, exercise

    @exercise("1.1", title="Otsu's threshold from the histogram", level="warm-up", minutes=10,
              kind="implement", goal="Compute a threshold from a histogram by hand.",
              hint="Try every t; maximise the between-class variance w0*w1*(m0-m1)^2.")
    def check_otsu(candidate):
        for name, image, want in _hidden_cases():
            with case(name):                      # names the case in any failure message
                got = candidate(image)            # exceptions here are reported, not raised
                if abs(int(got) - want) > 1:
                    raise CheckFailed(f"expected a threshold within 1 of {want}, got {got}")

A check function receives the learner's candidate (a function, or a value for
"predict then check" exercises) and either returns (passed) or raises
:class:`CheckFailed` with a message that says what was expected and what arrived.

In a notebook the learner runs ``check("1.1", otsu_threshold)``; it prints one of::

    Exercise 1.1 (Otsu's threshold from the histogram): passed ✓
    Exercise 1.1 (Otsu's threshold from the histogram): failed ✗ -- case 'bimodal': expected ...
    Exercise 1.1 (Otsu's threshold from the histogram): not attempted

and returns a :class:`ExerciseResult`. It never raises (except ``KeyboardInterrupt``):
an exception from the learner's code is reported as a failed case with its type,
message and the line of the learner's code that raised it. A candidate that is
``None``/``...`` or raises ``NotImplementedError`` (the stub the learner notebook
starts with) is "not attempted".

Check modules are discovered lazily: the first :func:`check` (or :func:`get`,
:func:`all_exercises`) imports every ``segcourse/exercises/lesson*.py``.

For the test suite, :func:`verify_exercise` asserts that a check fails on the stub
and on plausible wrong answers and passes on the solution.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checking import CheckFailed, CheckResult

__all__ = [
    "KINDS", "LEVELS", "CheckFailed", "Exercise", "ExerciseResult", "all_exercises", "case", "check",
    "exercise", "expect_callable", "expect_close", "expect_equal", "expect_tensor", "get", "load_all",
    "run_check", "verify_exercise",
]

#: Difficulty levels, in the order a lesson's exercises go.
LEVELS: tuple[str, ...] = ("warm-up", "core", "stretch")
#: Kinds of exercise (CONTRIBUTING.md, "Exercises"): write the code; predict a result, then run it; break working code and explain.
KINDS: tuple[str, ...] = ("implement", "predict", "break-it")
ID_PATTERN = re.compile(r"^(0|[1-9]\d*)\.([1-9]\d*)$")

NOT_ATTEMPTED = "not attempted"
PASSED = "passed"
FAILED = "failed"


class _NotAttempted(Exception):
    """Internal: the candidate is still the stub."""


@dataclass(frozen=True)
class Exercise:
    """One registered exercise.

    Attributes:
        id: ``"<lesson>.<n>"``, e.g. ``"1.2"`` (lesson without a leading zero).
        title: short title, used in the learner's stub and in every verdict.
        level: one of :data:`LEVELS`.
        minutes: time estimate for a learner.
        kind: one of :data:`KINDS`.
        goal: the learning goal, one sentence.
        hint: shown after a failed attempt.
        func: the check function ``func(candidate) -> None``.
    """

    id: str
    title: str
    level: str
    minutes: int
    kind: str
    goal: str
    hint: str
    func: Callable[[Any], None] = field(repr=False, compare=False)

    @property
    def lesson(self) -> int:
        """The lesson number (``1`` for ``"1.2"``)."""
        return int(self.id.split(".")[0])

    @property
    def number(self) -> int:
        """The exercise's number within its lesson (``2`` for ``"1.2"``)."""
        return int(self.id.split(".")[1])


@dataclass
class ExerciseResult(CheckResult):
    """What :func:`check` found: a :class:`~segcourse.checking.CheckResult` whose ``name`` is the exercise id.

    Attributes:
        status: ``"passed"``, ``"failed"`` or ``"not attempted"`` (``passed`` is ``status == "passed"``).
        message: why it failed (empty when it passed or was not attempted).
        title: the exercise's title (empty for an unknown id).
    """

    status: str = FAILED
    title: str = ""
    _just_printed: bool = field(default=False, repr=False, compare=False)

    @classmethod
    def of(cls, id: str, status: str, message: str = "", title: str = "") -> ExerciseResult:
        """The result of exercise ``id`` with ``status``."""
        return cls(str(id), status == PASSED, message, status=status, title=title)

    @property
    def id(self) -> str:
        """The exercise id (the result's ``name``)."""
        return self.name

    def verdict(self) -> str:
        """The text :func:`check` prints."""
        name = f"Exercise {self.id}" + (f" ({self.title})" if self.title else "")
        if self.status == PASSED:
            return f"{name}: passed ✓"
        if self.status == NOT_ATTEMPTED:
            return (f"{name}: not attempted -- replace the `raise NotImplementedError(...)` (or the `None`) "
                    f"with your answer, run that cell, then run this one again.")
        return f"{name}: failed ✗\n  {self.message}"

    def _ipython_display_(self) -> None:
        # check() has already printed the verdict; do not show it twice when the call
        # is the last line of a cell. Displaying the result later shows it again.
        if self._just_printed:
            self._just_printed = False
            return
        print(self.verdict())


_REGISTRY: dict[str, Exercise] = {}
_LOADED = False
_LOAD_ERRORS: dict[str, str] = {}
_CURRENT_CASE: list[str] = []


def exercise(id: str, *, title: str, level: str, minutes: int, kind: str, goal: str, hint: str
             ) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    """Register the decorated function as the check of exercise ``id``.

    Args:
        id: ``"<lesson>.<n>"`` such as ``"1.2"``.
        title: short title (appears in the learner's stub ``NotImplementedError``).
        level: ``"warm-up"``, ``"core"`` or ``"stretch"``.
        minutes: time estimate, a positive integer.
        kind: ``"implement"``, ``"predict"`` or ``"break-it"``.
        goal: the learning goal.
        hint: a hint shown after a failed attempt.

    Returns:
        A decorator that registers the check function and returns it unchanged.

    Raises:
        ValueError: a malformed id, an unknown level or kind, a non-positive time, an empty
            title/goal/hint, or an id already registered by a different function.
    """
    if not isinstance(id, str) or not ID_PATTERN.match(id):
        raise ValueError(f"exercise id {id!r} is not of the form '<lesson>.<n>' such as '1.2' "
                         f"(lesson without a leading zero, n from 1)")
    if level not in LEVELS:
        raise ValueError(f"exercise {id}: level {level!r} is not one of {', '.join(LEVELS)}")
    if kind not in KINDS:
        raise ValueError(f"exercise {id}: kind {kind!r} is not one of {', '.join(KINDS)}")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
        raise ValueError(f"exercise {id}: minutes must be a positive integer, got {minutes!r}")
    for name, value in (("title", title), ("goal", goal), ("hint", hint)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"exercise {id}: {name} must be a non-empty string, got {value!r}")
    if "\n" in title or '"' in title or "\\" in title:
        raise ValueError(f"exercise {id}: the title goes into a one-line stub string; "
                         f"it must not contain newlines, double quotes or backslashes: {title!r}")

    def register(func: Callable[[Any], None]) -> Callable[[Any], None]:
        if not callable(func):
            raise TypeError(f"@exercise({id!r}) must decorate a function, got {type(func).__name__}")
        old = _REGISTRY.get(id)
        if old is not None and (old.func.__module__, old.func.__qualname__) != (func.__module__, func.__qualname__):
            raise ValueError(f"exercise id {id} is registered twice: by {old.func.__module__}.{old.func.__qualname__} "
                             f"and by {func.__module__}.{func.__qualname__}")
        _REGISTRY[id] = Exercise(id, title.strip(), level, minutes, kind, goal.strip(), hint.strip(), func)
        return func

    return register


def _lesson_modules() -> list[str]:
    folder = Path(__file__).resolve().parent
    return sorted(f"{__package__}.{m.name}" for m in pkgutil.iter_modules([str(folder)]) if m.name.startswith("lesson"))


def load_all(*, strict: bool = False) -> dict[str, Exercise]:
    """Import every ``segcourse/exercises/lesson*.py`` (once) and return the registry.

    Args:
        strict: raise the first import error instead of recording it (the tests use this).

    Returns:
        ``{id: Exercise}``, sorted by lesson then number.
    """
    global _LOADED
    if not _LOADED or strict:
        for name in _lesson_modules():
            if name in sys.modules:
                continue
            try:
                importlib.import_module(name)
            except Exception as error:  # one broken lesson must not break the others' checks
                if strict:
                    raise
                _LOAD_ERRORS[name] = f"{type(error).__name__}: {error}"
        _LOADED = True
    return dict(sorted(_REGISTRY.items(), key=lambda kv: (kv[1].lesson, kv[1].number)))


def all_exercises() -> list[Exercise]:
    """Every registered exercise, in lesson order."""
    return list(load_all().values())


def get(id: str) -> Exercise:
    """The exercise registered as ``id``.

    Raises:
        KeyError: no such exercise (the message lists the known ids).
    """
    registry = load_all()
    if id not in registry:
        raise KeyError(f"no exercise {id!r}; known exercises: {', '.join(registry) or 'none'}")
    return registry[id]


@contextlib.contextmanager
def case(name: str) -> Iterator[None]:
    """Name the hidden test case being run, so a failure says which one it was.

    Inside ``with case("two touching cells"):``, a :class:`CheckFailed` or any exception
    from the candidate is reported as ``case 'two touching cells': ...``.
    """
    _CURRENT_CASE.append(name)
    try:
        yield
    except _NotAttempted:
        raise
    except CheckFailed as failure:
        message = str(failure)
        if message.startswith("case "):  # already named by an inner case()
            raise
        raise CheckFailed(f"case {name!r}: {message}") from None
    except NotImplementedError as error:
        raise _NotAttempted(str(error)) from error
    except Exception as error:  # reported to the learner as a failed case
        raise CheckFailed(f"case {name!r}: {_describe_exception(error)}") from error
    finally:
        _CURRENT_CASE.pop()


def _describe_exception(error: BaseException) -> str:
    """``ValueError: message (raised at `line of the learner's code`)``."""
    text = f"your code raised {type(error).__name__}: {error}"
    frames = [f for f in traceback.extract_tb(error.__traceback__) if _is_learner_file(f.filename)]
    if frames and frames[-1].line:
        text += f" (at `{frames[-1].line.strip()}`)"
    return text


def _is_learner_file(filename: str) -> bool:
    """Whether a traceback frame comes from the learner's code (a notebook cell or their own module),
    not from segcourse, an installed package or the standard library."""
    import sysconfig

    path = Path(filename)
    if filename.startswith("<") and not filename.startswith("<ipython-input"):
        return False
    try:
        path = path.resolve()
    except OSError:  # pragma: no cover
        return True
    package = Path(__file__).resolve().parents[1]
    library = [Path(p).resolve() for p in {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}]
    return not any(path.is_relative_to(root) for root in [package, *library])


def _is_stub(candidate: Any) -> bool:
    return candidate is None or candidate is Ellipsis


def run_check(id: str, candidate: Any) -> ExerciseResult:
    """Like :func:`check` but silent: return the :class:`ExerciseResult` without printing."""
    try:
        ex = get(id)
    except KeyError as error:
        return ExerciseResult.of(id, FAILED, str(error.args[0]))
    if _is_stub(candidate):
        return ExerciseResult.of(id, NOT_ATTEMPTED, title=ex.title)
    try:
        ex.func(candidate)
    except _NotAttempted:
        return ExerciseResult.of(id, NOT_ATTEMPTED, title=ex.title)
    except NotImplementedError:
        return ExerciseResult.of(id, NOT_ATTEMPTED, title=ex.title)
    except CheckFailed as failure:
        return ExerciseResult.of(id, FAILED, f"{failure}\n  Hint: {ex.hint}", title=ex.title)
    except Exception as error:  # noqa: BLE001 - the learner sees a verdict, never a traceback
        return ExerciseResult.of(id, FAILED, f"{_describe_exception(error)}\n  Hint: {ex.hint}", title=ex.title)
    finally:
        _CURRENT_CASE.clear()  # a case() left open by an aborted check
    return ExerciseResult.of(id, PASSED, title=ex.title)


def check(id: str, candidate: Any) -> ExerciseResult:
    """Run exercise ``id``'s hidden test cases on ``candidate`` and print the verdict.

    Args:
        id: the exercise id, e.g. ``"1.1"``.
        candidate: the learner's function, or their answer for a "predict" exercise.

    Returns:
        A :class:`ExerciseResult` (``.status`` is ``"passed"``, ``"failed"`` or ``"not attempted"``;
        truthy when passed). Never raises.
    """
    result = run_check(id, candidate)
    print(result.verdict())
    if result.status == FAILED and id not in _REGISTRY and _LOAD_ERRORS:
        print("  (some check modules failed to import: " + "; ".join(f"{k}: {v}" for k, v in _LOAD_ERRORS.items()) + ")")
    result._just_printed = True
    return result


# ----------------------------------------------------------------------------------------------
# Helpers for writing checks: comparisons that raise CheckFailed with a clear message.
# ----------------------------------------------------------------------------------------------

def expect_callable(candidate: Any, signature: str) -> None:
    """Raise :class:`CheckFailed` unless the learner's answer is a function.

    Args:
        signature: the function as the notebook names it, e.g. ``"pad_and_concat(up, skip)"``.
    """
    if not callable(candidate):
        raise CheckFailed(f"expected a function {signature}, got {type(candidate).__name__}")


def expect_tensor(value: Any, what: str = "") -> None:
    """Raise :class:`CheckFailed` unless ``value`` is a ``torch.Tensor``; ``what`` adds a description,
    e.g. ``" (a scalar loss)"``."""
    import torch

    if not isinstance(value, torch.Tensor):
        raise CheckFailed(f"expected a torch.Tensor{what}, got {type(value).__name__}")


def _to_numpy(value: Any, what: str):
    import numpy as np

    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except Exception as error:
        raise CheckFailed(f"{what}: expected an array-like, got {type(value).__name__} ({error})") from error


def expect_equal(got: Any, want: Any, what: str = "result") -> None:
    """Raise :class:`CheckFailed` unless ``got`` equals ``want`` (arrays: same shape, all equal).

    The message reports the shapes, or how many elements differ and the first of them.
    """
    import numpy as np

    if isinstance(want, (np.ndarray, list, tuple)) or hasattr(want, "detach"):
        g, w = _to_numpy(got, what), _to_numpy(want, what)
        if g.shape != w.shape:
            raise CheckFailed(f"{what}: expected shape {tuple(w.shape)}, got {tuple(g.shape)}")
        bad = g != w
        if np.any(bad):
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise CheckFailed(f"{what}: {int(bad.sum())} of {bad.size} values differ; "
                              f"first at index {index}: expected {w[index]!r}, got {g[index]!r}")
        return
    if got != want:
        raise CheckFailed(f"{what}: expected {want!r}, got {got!r}")


def expect_close(got: Any, want: Any, what: str = "result", *, atol: float = 1e-6, rtol: float = 1e-5) -> None:
    """Raise :class:`CheckFailed` unless ``got`` is close to ``want`` (numbers or arrays, any of numpy/torch).

    Follows ``numpy.isclose``: ``|got - want| <= atol + rtol * |want|`` element-wise.
    """
    import numpy as np

    g, w = _to_numpy(got, what), _to_numpy(want, what)
    if g.shape != w.shape:
        raise CheckFailed(f"{what}: expected shape {tuple(w.shape)}, got {tuple(g.shape)}")
    try:
        g = g.astype(np.float64)
    except (TypeError, ValueError) as error:
        raise CheckFailed(f"{what}: expected numbers, got values of dtype {g.dtype}") from error
    w = w.astype(np.float64)
    ok = np.isclose(g, w, atol=atol, rtol=rtol, equal_nan=True)
    if not np.all(ok):
        if g.ndim == 0:
            raise CheckFailed(f"{what}: expected {float(w):.6g}, got {float(g):.6g}")
        index = tuple(int(i) for i in np.argwhere(~ok)[0])
        raise CheckFailed(f"{what}: {int((~ok).sum())} of {ok.size} values are off (tolerance {atol:g} + {rtol:g}·|expected|); "
                          f"first at index {index}: expected {w[index]:.6g}, got {g[index]:.6g}")


# ----------------------------------------------------------------------------------------------
# For the test suite.
# ----------------------------------------------------------------------------------------------

def verify_exercise(id: str, *, stub: Any, wrong: list, solution: Any) -> None:
    """Assert that exercise ``id``'s check says "not attempted" on ``stub``, "failed" on every
    candidate in ``wrong`` and "passed" on ``solution`` -- the meta-test every lesson runs.

    Args:
        id: the exercise id.
        stub: what the learner notebook starts with (a function raising ``NotImplementedError``,
            or ``None`` for a value answer).
        wrong: at least one plausible wrong answer (an off-by-one, a missing normalisation...).
        solution: the solution, as in the solution notebook.

    Raises:
        AssertionError: with the verdict that was not what it should be.
    """
    if not wrong:
        raise AssertionError(f"exercise {id}: give at least one plausible wrong answer")
    result = run_check(id, stub)
    if result.status != NOT_ATTEMPTED:
        raise AssertionError(f"exercise {id}: the stub should be 'not attempted', got: {result.verdict()}")
    for i, candidate in enumerate(wrong):
        result = run_check(id, candidate)
        if result.status != FAILED:
            raise AssertionError(f"exercise {id}: wrong answer #{i} ({candidate!r}) should fail, got: {result.verdict()}")
        if "Traceback" in result.message:
            raise AssertionError(f"exercise {id}: a verdict must not contain a traceback: {result.message}")
    result = run_check(id, solution)
    if result.status != PASSED:
        raise AssertionError(f"exercise {id}: the solution should pass, got: {result.verdict()}")
