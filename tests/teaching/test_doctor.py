import sys

import pytest

from segcourse.__main__ import main
from segcourse.teaching import doctor


def test_doctor_passes_in_the_course_environment(capsys, data_root):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for name in ("python", "torch", "torchvision", "torchvision ops", "device", "mode", "widget extension"):
        assert f"] {name}" in out
    assert "All required checks passed." in out


def test_doctor_json_uses_the_shared_check_result_fields(monkeypatch, capsys):
    import json

    from segcourse.checking import CheckResult

    monkeypatch.setattr(doctor, "collect", lambda: [doctor.Check("python", True, "3.11"),
                                                    doctor.Check("tensorboard", False, "missing", required=False)])
    assert main(["doctor", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"name": "python", "passed": True, "message": "3.11", "required": True},
        {"name": "tensorboard", "passed": False, "message": "missing", "required": False}]
    assert isinstance(doctor.check_python(), CheckResult)


def test_doctor_fails_with_a_clear_message_when_a_package_is_missing(monkeypatch, capsys):
    monkeypatch.setitem(doctor.REQUIRED_PACKAGES, "package_that_is_not_there", "not-there")
    assert main(["doctor"]) == 1
    captured = capsys.readouterr()
    assert "[FAIL] not-there" in captured.out and "make lab" in captured.out
    assert "not-there" in captured.err


def test_doctor_reports_an_old_python(monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 9, 0))
    check = doctor.check_python()
    assert not check.passed and "3.10" in check.message


def test_doctor_flags_a_bad_mode(monkeypatch):
    monkeypatch.setenv("SEGCOURSE_MODE", "turbo")
    (mode_check,) = [c for c in doctor.check_device() if c.name == "mode"]
    assert not mode_check.passed and "turbo" in mode_check.message


def test_unknown_command_is_an_error(capsys):
    with pytest.raises(SystemExit):
        main(["fly"])
    assert "unknown command 'fly'" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["smoke", "quick", "full"])
def test_doctor_names_the_real_mode_not_a_hard_coded_one(monkeypatch, mode):
    monkeypatch.setenv("SEGCOURSE_MODE", mode)
    checks = {c.name: c for c in doctor.check_device()}
    assert f"lessons run in {mode} mode" in checks["device"].message
    assert checks["mode"].passed and checks["mode"].message.startswith(f"{mode}, set by SEGCOURSE_MODE={mode}")
    others = {"smoke", "quick", "full"} - {mode}
    assert not any(f"run in {m} mode" in checks["device"].message for m in others)


def test_doctor_says_when_the_mode_was_chosen_automatically(monkeypatch):
    monkeypatch.delenv("SEGCOURSE_MODE", raising=False)
    (mode_check,) = [c for c in doctor.check_device() if c.name == "mode"]
    assert "chosen automatically" in mode_check.message
