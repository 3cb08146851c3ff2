"""segcourse.checking: one result type for the exercise checks, the capstone rubric and the doctor."""

from __future__ import annotations

from segcourse.checking import CheckFailed, CheckResult


def test_a_check_result_is_truthy_when_passed():
    assert CheckResult("x", True, "ok") and not CheckResult("x", False, "no")


def test_the_three_kinds_of_check_report_the_same_type(tmp_path):
    from segcourse.capstone import checks as capstone
    from segcourse.exercises import check
    from segcourse.teaching import doctor

    exercise = check("0.1", None)                                 # not attempted
    assert isinstance(exercise, CheckResult) and not exercise and exercise.name == exercise.id == "0.1"
    rubric = capstone.check_split(tmp_path)                        # an empty folder: fails, never raises
    assert isinstance(rubric, CheckResult) and not rubric and "results.json" in rubric.message
    machine = doctor.check_python()
    assert isinstance(machine, CheckResult) and machine.passed and machine.line().startswith("[ok  ]")


def test_a_rubric_check_fails_by_raising_check_failed(tmp_path):
    from segcourse.capstone.checks import POINTS, RubricResult, _rubric

    @_rubric("report")
    def check_demo(folder):
        raise CheckFailed(f"{folder.name}: expected a file")

    result = check_demo(tmp_path)
    assert isinstance(result, CheckResult) and isinstance(result, RubricResult)
    assert (result.name, result.passed, result.message) == ("report", False, f"{tmp_path.name}: expected a file")
    assert (result.points, result.earned) == (POINTS["report"], 0)
