import sys

import pytest

from segcourse import doctor
from segcourse.__main__ import main


def test_doctor_passes_in_the_course_environment(capsys, data_root):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for name in ("python", "torch", "torchvision", "torchvision ops", "device", "mode", "widget extension"):
        assert f"] {name}" in out
    assert "All required checks passed." in out


def test_doctor_fails_with_a_clear_message_when_a_package_is_missing(monkeypatch, capsys):
    monkeypatch.setitem(doctor.REQUIRED_PACKAGES, "package_that_is_not_there", "not-there")
    assert main(["doctor"]) == 1
    captured = capsys.readouterr()
    assert "[FAIL] not-there" in captured.out and "make lab" in captured.out
    assert "not-there" in captured.err


def test_doctor_reports_an_old_python(monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 9, 0))
    check = doctor.check_python()
    assert not check.ok and "3.10" in check.detail


def test_doctor_flags_a_bad_mode(monkeypatch):
    monkeypatch.setenv("SEGCOURSE_MODE", "turbo")
    (mode_check,) = [c for c in doctor.check_device() if c.name == "mode"]
    assert not mode_check.ok and "turbo" in mode_check.detail


def test_unknown_command_is_an_error(capsys):
    with pytest.raises(SystemExit):
        main(["fly"])
    assert "unknown command 'fly'" in capsys.readouterr().err
