"""What a check reports, shared by the three kinds of check in the course.

* the exercise checks (:func:`segcourse.exercises.check`: a learner's function against hidden cases),
* the capstone rubric (:func:`segcourse.capstone.grade`: a report folder against the rubric),
* the set-up check (``segcourse doctor``: this machine against what the course needs).

Each produces :class:`CheckResult` objects -- truthy when passed, with a message that says what was
expected and what arrived -- and a check function fails by raising :class:`CheckFailed` with that message.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CheckFailed", "CheckResult"]


class CheckFailed(Exception):
    """Raised inside a check when what it checks is wrong.

    The message is shown as it is: say what was expected and what arrived, e.g.
    ``"expected shape (3, 3), got (3,)"`` (for an exercise, without printing the whole solution).
    """


@dataclass
class CheckResult:
    """One check's verdict: truthy when passed.

    Attributes:
        name: what was checked (an exercise id, a rubric item, a package).
        passed: whether it passed.
        message: why it failed, or what was found.
    """

    name: str
    passed: bool
    message: str = ""

    def __bool__(self) -> bool:
        return self.passed
