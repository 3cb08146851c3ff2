"""``course.py``: the route without make (Windows). Standard library only; every command it would run is checked
through its Runner, in dry-run mode or with a recording runner, so nothing is installed here."""

from __future__ import annotations

import ast
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("course_entry", ROOT / "course.py")
course = importlib.util.module_from_spec(spec)
spec.loader.exec_module(course)


class Recorder(course.Runner):
    """Records the commands; ``fail_on`` (a substring of a command) makes that command exit 1."""

    def __init__(self, fail_on: str | None = None):
        super().__init__(dry_run=False, out=io.StringIO())
        self.fail_on = fail_on

    def run(self, command, env=None):
        command = [str(c) for c in command]
        self.commands.append((command, dict(env or {})))
        return 1 if self.fail_on and self.fail_on in " ".join(command) else 0


def _lines(runner):
    return [" ".join(c) for c, _ in runner.commands]


def test_course_py_imports_only_the_standard_library():
    tree = ast.parse((ROOT / "course.py").read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported - {"__future__"} <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def test_a_fresh_setup_does_what_make_install_does(tmp_path):
    runner = Recorder()
    python = course.install(runner, venv=tmp_path / ".venv", system="Linux")
    assert python == tmp_path / ".venv" / "bin" / "python"
    lines = _lines(runner)
    req = course.REQUIREMENTS
    assert lines == [
        f"{sys.executable} -m venv {tmp_path / '.venv'}",
        f"{python} -m pip install --disable-pip-version-check -q -r {req / 'course.txt'} -c {req / 'lock.txt'}",
        f"{python} -m pip install --disable-pip-version-check -q --no-deps -e .",
        f"{python} -m ipykernel install --sys-prefix --name segcourse --display-name Python (segcourse)"]
    assert (tmp_path / ".venv" / course.COURSE_STAMP).exists()
    python.parent.mkdir(parents=True)
    python.touch()   # what the venv command made
    test_runner = Recorder()
    course.install(test_runner, venv=tmp_path / ".venv", system="Linux", test=True)   # course part is current
    assert _lines(test_runner) == [(f"{python} -m pip install --disable-pip-version-check -q -r {req / 'test.txt'} "
                                    f"-c {req / 'lock.txt'}")]


def test_the_setup_reruns_only_when_a_requirements_file_is_newer_than_its_stamp(tmp_path):
    venv = tmp_path / ".venv"
    python = course.install(Recorder(), venv=venv, system="Linux")
    python.parent.mkdir(parents=True)
    python.touch()
    again = Recorder()
    course.install(again, venv=venv, system="Linux")
    assert again.commands == []
    stamp = venv / course.COURSE_STAMP
    old = (course.REQUIREMENTS / "course.txt").stat().st_mtime - 3600
    os.utime(stamp, (old, old))   # requirements/ is newer than the stamp now (in a fresh clone or an old checkout)
    assert course.is_stale(stamp, [course.REQUIREMENTS / "course.txt"])
    assert not course.is_stale(course.REQUIREMENTS / "course.txt", [stamp])


def test_cpu_installs_torch_from_the_cpu_index_first_with_the_course_s_pins(tmp_path):
    runner = Recorder()
    course.install(runner, venv=tmp_path / ".venv", system="Windows", cpu=True)
    first_pip = runner.commands[1][0]
    torch_pins = course.pins(course.REQUIREMENTS / "course.txt")
    assert first_pip[-5:] == ["--no-deps", "--index-url", course.CPU_INDEX, *torch_pins]
    assert [p.split("==")[0] for p in torch_pins] == ["torch", "torchvision"]
    assert first_pip[0] == str(tmp_path / ".venv" / "Scripts" / "python.exe")
    assert "-r" in runner.commands[2][0]          # then the rest, from the ordinary index: torch is already there
    mac = Recorder()
    course.install(mac, venv=tmp_path / "mac", system="Darwin", cpu=True)
    assert not any("--index-url" in c for c, _ in mac.commands) and "CPU/MPS builds already" in mac.out.getvalue()


def test_pins_names_a_missing_pin(tmp_path):
    req = tmp_path / "r.txt"
    req.write_text("# x\ntorch==2.14.1\nnumpy>=2\n")
    with pytest.raises(ValueError, match="no 'name==version' pin for torchvision"):
        course.pins(req)


def test_a_failed_step_stops_the_setup_and_names_it(tmp_path, capsys):
    runner = Recorder(fail_on="course.txt")
    with pytest.raises(course.SetupError, match="installing requirements/course.txt failed .*PIP_INDEX_URL"):
        course.install(runner, venv=tmp_path / ".venv", system="Linux")
    assert not (tmp_path / ".venv" / course.COURSE_STAMP).exists()


def test_test_runs_the_makefile_s_test_steps_and_stops_at_the_first_failure():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    lint_paths = re.search(r"^lint:.*\n\t\$\(BIN\)/ruff check (.+)$", makefile, re.MULTILINE).group(1).split()
    assert set(lint_paths) <= set(course.LINT_PATHS)
    marker = re.search(r'^test-package:.*\n.* -m "([^"]+)"', makefile, re.MULTILINE).group(1)
    runner = Recorder()
    assert course.test(runner, Path("py"), jobs=3) == 0
    lines = _lines(runner)
    assert len(lines) == 5 and lines[0].startswith("py -m ruff check")
    assert f"-n 3 -m {marker}" in lines[2] and lines[3].endswith("-n 3 solutions") and lines[4].endswith("notebooks")
    assert runner.commands[3][1] == {"SEGCOURSE_MODE": "smoke", "MPLBACKEND": course.INLINE_BACKEND}
    failing = Recorder(fail_on="--doctest-modules")
    assert course.test(failing, Path("py")) == 1 and len(failing.commands) == 2


def test_dry_run_prints_every_command_and_runs_none(tmp_path, monkeypatch):
    monkeypatch.setattr(course, "VENV", tmp_path / ".venv")
    out = io.StringIO()
    runner = course.Runner(dry_run=True, out=out)
    monkeypatch.setattr(course.subprocess, "run", lambda *a, **k: pytest.fail("dry run ran a command"))
    monkeypatch.setattr(course, "install", lambda r, **k: course.venv_python(tmp_path / ".venv"))
    assert course.main(["lab", "--dry-run", "--", "--no-browser", "--port", "8899"], runner=runner) == 0
    assert "(dry run) " in out.getvalue() and "--no-browser --port 8899 notebooks/00_start_here.ipynb" in out.getvalue()


def test_the_script_runs_on_its_own_in_dry_run_mode():
    proc = subprocess.run([sys.executable, "-I", "course.py", "doctor", "--dry-run", "--cpu"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "-m segcourse doctor" in proc.stdout
