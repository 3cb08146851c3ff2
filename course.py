"""The course without ``make`` (Windows, or any machine without it): ``python course.py lab|test|doctor``.

Standard library only, so it runs with the Python that will create the virtual environment, before ``.venv``
exists. It does what the Makefile's targets do, with the same files:

* ``python course.py lab`` -- ``make lab``: create ``.venv`` (first time), install the pinned course
  requirements (``requirements/course.txt`` with ``requirements/lock.txt`` as constraints) and segcourse
  itself (``-e .``), install the Jupyter kernel **Python (segcourse)**, then start JupyterLab on
  ``notebooks/00_start_here.ipynb``. Extra arguments after ``--`` go to JupyterLab
  (``python course.py lab -- --no-browser --port 8899``).
* ``python course.py test`` -- ``make test``: the same setup plus ``requirements/test.txt``, then ruff, the
  doctests, the package tests and the notebooks in smoke mode.
* ``python course.py doctor`` -- ``make doctor``: the setup, then ``python -m segcourse doctor``.
* ``python course.py install`` -- the setup only.

Options:

* ``--cpu`` -- PyTorch without its CUDA libraries, from PyTorch's CPU wheel index
  (https://download.pytorch.org/whl/cpu) on Linux and Windows: first ``torch`` and ``torchvision`` at the
  course's pins (``2.14.1+cpu`` satisfies ``==2.14.1``), then everything else as usual. On Linux x86_64 the
  download is then about 0.5 GB instead of about 3.3 GB (PyPI's Linux wheel pulls about 2.4 GB of CUDA
  libraries and Triton). macOS wheels are CPU/MPS builds already, so there ``--cpu`` changes nothing.
  ``--torch-index URL`` names another CPU index (a mirror).
* ``--dry-run`` -- print the commands instead of running them.
* ``--jobs N`` -- pytest workers for ``test`` (default 2, as the Makefile's ``JOBS``).

The setup runs again only when a requirements file or ``pyproject.toml`` is newer than the stamp it left
(``.venv/.stamp-course``, ``.venv/.stamp-test``, the Makefile's stamps). A package index mirror is used as pip
uses it: set ``PIP_INDEX_URL`` (for example ``https://pypi.tuna.tsinghua.edu.cn/simple``).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements"
COURSE_STAMP = ".stamp-course"
TEST_STAMP = ".stamp-test"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: the packages PyTorch's CPU index serves for this course (their pins are read from requirements/course.txt)
TORCH_PACKAGES = ("torch", "torchvision")
MIN_PYTHON = (3, 10)
PIP_FLAGS = ["--disable-pip-version-check", "-q"]
# the Makefile's test target, command for command
LINT_PATHS = ["segcourse", "coursetools", "tests", "benchmarks", "solutions", "course.py"]
NBVAL_FLAGS = ["--dist", "loadfile", "--nbval-current-env", "--nbval-sanitize-with", "coursetools/nbval_sanitize.cfg",
               "--nbval-cell-timeout=600", "-p", "no:cacheprovider"]
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def venv_python(venv: Path = VENV, system: str | None = None) -> Path:
    """The virtual environment's interpreter: ``Scripts\\python.exe`` on Windows, ``bin/python`` elsewhere."""
    windows = (system or platform.system()) == "Windows"
    return venv / ("Scripts/python.exe" if windows else "bin/python")


def pins(path: Path, names: tuple[str, ...] = TORCH_PACKAGES) -> list[str]:
    """The ``name==version`` lines of ``path`` for ``names``, in file order.

    Raises:
        ValueError: one of ``names`` has no ``==`` pin there.
    """
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s;#]+)", line)
        if match and match.group(1).lower() in names:
            found[match.group(1).lower()] = f"{match.group(1)}=={match.group(2)}"
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"{path}: no 'name==version' pin for {', '.join(missing)}")
    return [found[n] for n in names]


def is_stale(stamp: Path, inputs: list[Path]) -> bool:
    """True when ``stamp`` is missing or older than one of ``inputs`` (what make decides from the same files)."""
    if not stamp.exists():
        return True
    made = stamp.stat().st_mtime
    return any(p.exists() and p.stat().st_mtime > made for p in inputs)


class Runner:
    """Runs (or, with ``dry_run``, prints) the commands; every command goes through :meth:`run`."""

    def __init__(self, dry_run: bool = False, out=None):
        self.dry_run = dry_run
        self.out = out or sys.stdout
        self.commands: list[tuple[list[str], dict[str, str]]] = []

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def run(self, command: list[str], env: dict[str, str] | None = None) -> int:
        """Run ``command`` in the checkout with ``env`` added to the environment; its exit status (0 when dry)."""
        command = [str(c) for c in command]
        extra = dict(env or {})
        self.commands.append((command, extra))
        shown = " ".join([*(f"{k}={shlex.quote(v)}" for k, v in extra.items()), *map(shlex.quote, command)])
        self.say(("(dry run) " if self.dry_run else "+ ") + shown)
        if self.dry_run:
            return 0
        return subprocess.run(command, cwd=ROOT, env={**os.environ, **extra}, check=False).returncode

    def touch(self, path: Path) -> None:
        if not self.dry_run:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()


class SetupError(RuntimeError):
    """A setup step failed (the message names it and what to try)."""


def _must(status: int, what: str, hint: str = "") -> None:
    if status:
        raise SetupError(f"{what} failed (exit status {status}){'; ' + hint if hint else ''}")


def install(runner: Runner, *, test: bool = False, cpu: bool = False, torch_index: str = CPU_INDEX,
            system: str | None = None, venv: Path = VENV) -> Path:
    """Create ``venv`` and install what ``make install`` (and, with ``test``, ``make install-test``) installs.

    Returns:
        The environment's interpreter.

    Raises:
        SetupError: a step failed.
    """
    system = system or platform.system()
    python = venv_python(venv, system)
    if not python.exists():
        runner.say(f"Creating the virtual environment {venv} with Python {platform.python_version()}...")
        _must(runner.run([sys.executable, "-m", "venv", venv]), "creating the virtual environment",
              "on Debian/Ubuntu install the python3-venv package")
    pip = [python, "-m", "pip", "install", *PIP_FLAGS]
    course_inputs = [REQUIREMENTS / "course.txt", REQUIREMENTS / "lock.txt", ROOT / "pyproject.toml"]
    if is_stale(venv / COURSE_STAMP, course_inputs):
        if cpu and system != "Darwin":
            runner.say(f"Installing PyTorch's CPU build from {torch_index} (no CUDA libraries)...")
            # --no-deps: torch's own dependencies come in the next step, from the ordinary index, held to lock.txt
            _must(runner.run([*pip, "--no-deps", "--index-url", torch_index, *pins(REQUIREMENTS / "course.txt")]),
                  "installing PyTorch's CPU build",
                  f"check that {torch_index} is reachable, or pass --torch-index with a mirror")
        elif cpu:
            runner.say("macOS: PyTorch's wheels are CPU/MPS builds already; --cpu changes nothing.")
        runner.say("Installing the course's pinned dependencies into .venv"
                   + (" (PyTorch with CUDA libraries on Linux and Windows: about 3.3 GB to download; "
                      "--cpu avoids them)..." if not cpu and system != "Darwin" else "..."))
        _must(runner.run([*pip, "-r", REQUIREMENTS / "course.txt", "-c", REQUIREMENTS / "lock.txt"]),
              "installing requirements/course.txt", "run it again (pip resumes from its cache); behind a proxy "
              "set HTTPS_PROXY; with a package mirror set PIP_INDEX_URL")
        _must(runner.run([*pip, "--no-deps", "-e", "."]), "installing segcourse itself (pip install -e .)")
        _must(runner.run([python, "-m", "ipykernel", "install", "--sys-prefix", "--name", "segcourse",
                          "--display-name", "Python (segcourse)"]), "installing the Jupyter kernel")
        runner.touch(venv / COURSE_STAMP)
    if test and is_stale(venv / TEST_STAMP, [venv / COURSE_STAMP, REQUIREMENTS / "test.txt",
                                            REQUIREMENTS / "site.txt"]):
        _must(runner.run([*pip, "-r", REQUIREMENTS / "test.txt", "-c", REQUIREMENTS / "lock.txt"]),
              "installing requirements/test.txt")
        runner.touch(venv / TEST_STAMP)
    return python


def lab(runner: Runner, python: Path, lab_args: list[str]) -> int:
    """``make lab``'s last step: JupyterLab on the first notebook (``--allow-root`` as root, as the Makefile)."""
    root_flag = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    return runner.run([python, "-m", "jupyter", "lab", f"--ServerApp.root_dir={ROOT}", *root_flag, *lab_args,
                       "notebooks/00_start_here.ipynb"])


def test(runner: Runner, python: Path, jobs: int = 2) -> int:
    """``make test``: ruff, the doctests, the package tests, the notebooks in smoke mode; stops at the first failure."""
    smoke = {"SEGCOURSE_MODE": "smoke"}
    pytest = [python, "-m", "pytest"]
    steps = [
        ([python, "-m", "ruff", "check", *LINT_PATHS], {}),
        ([*pytest, "--doctest-modules", "segcourse", "coursetools", "-p", "no:cacheprovider"], smoke),
        ([*pytest, "tests", "-n", str(jobs), "-m", "not browser and not site and not wheelhouse"], smoke),
        ([*pytest, "--nbval-lax", *NBVAL_FLAGS, "-n", str(jobs), "solutions"], {**smoke, "MPLBACKEND": INLINE_BACKEND}),
        ([*pytest, "--nbval-lax", *NBVAL_FLAGS, "-n", str(jobs), "notebooks"], {**smoke, "MPLBACKEND": INLINE_BACKEND}),
    ]
    for command, env in steps:
        status = runner.run(command, env)
        if status:
            return status
    return 0


def main(argv: list[str] | None = None, runner: Runner | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python course.py", description=__doc__.split("\n\n")[0],
                                     epilog="Arguments after -- go to JupyterLab (lab only): "
                                            "python course.py lab -- --no-browser --port 8899")
    parser.add_argument("action", choices=["lab", "test", "doctor", "install"],
                        help="lab: set up and open JupyterLab; test: set up and run the tests; doctor: check the "
                             "environment; install: set up only")
    parser.add_argument("--cpu", action="store_true",
                        help="PyTorch without CUDA libraries (Linux/Windows; macOS wheels are CPU/MPS already)")
    parser.add_argument("--torch-index", default=CPU_INDEX, help=f"the CPU wheel index for --cpu (default {CPU_INDEX})")
    parser.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    parser.add_argument("--jobs", type=int, default=2, help="pytest workers for test (default 2)")
    argv = list(sys.argv[1:] if argv is None else argv)
    lab_args = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    args.lab_args = lab_args
    if sys.version_info < MIN_PYTHON:
        print(f"segcourse needs Python >= {'.'.join(map(str, MIN_PYTHON))}; this is {platform.python_version()}. "
              f"Run this file with a newer Python (on Windows: py -3.11 course.py {args.action}).", file=sys.stderr)
        return 1
    if args.lab_args and args.action != "lab":
        parser.error(f"extra arguments {args.lab_args} are for JupyterLab: only with 'lab'")
    runner = runner or Runner(dry_run=args.dry_run)
    try:
        python = install(runner, test=args.action == "test", cpu=args.cpu, torch_index=args.torch_index)
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.action == "lab":
        return lab(runner, python, args.lab_args)
    if args.action == "test":
        return test(runner, python, args.jobs)
    if args.action == "doctor":
        return runner.run([python, "-m", "segcourse", "doctor"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
