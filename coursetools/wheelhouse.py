"""``python -m coursetools wheelhouse``: every pinned wheel in one folder, for rooms with no internet.

``build`` (on a connected machine) resolves the course's requirements (``requirements/course.txt`` and the
build requirements in ``requirements/build.txt``, with ``requirements/lock.txt`` as constraints) for the Python
that runs it, downloads each wheel that is not in the folder yet, builds segcourse's own wheel from the checkout
and writes ``wheelhouse.json`` (what is there, for which Python and platform), copies of the requirement files
and ``INSTALL.txt``. ``check`` says which pinned requirement has no file in the folder. The room then installs
with the index switched off: ``make install-offline WHEELHOUSE=DIR`` (``pip install --no-index --find-links DIR``).

A wheelhouse is for the Python version and platform it was made on (torch's wheels are CPython- and
platform-specific): make it with the Python the room's machines have.

The download uses this machine's pip configuration (its index, mirror, proxy); everything that reads the folder
(the offline check, segcourse's own wheel build) runs pip with that configuration switched off
(:func:`isolated_env`), so it passes only when the folder is complete. Downloads land in a temporary folder
inside the wheelhouse and are moved in (an atomic rename) once pip has checked their sha256 and the zip reads:
an interrupted build leaves no half-written wheel, and a rerun downloads only what is missing.

This module uses only the standard library and pip (and :mod:`coursetools.checkout`), so that it runs before
any environment exists: ``python -m coursetools wheelhouse build --dest DIR`` (from the checkout) is what
``make wheelhouse`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from segcourse.files import atomic_write_text  # segcourse.files and .pins need only the standard library
from segcourse.pins import normalize

from .checkout import root as checkout_root

#: what a learner needs; a maintainer may add requirements/test.txt (``make wheelhouse WHEELHOUSE_REQUIREMENTS=...``)
DEFAULT_REQUIREMENTS = ("requirements/course.txt",)
#: always added: what an offline ``pip install -e .`` / ``pip wheel .`` needs (pyproject.toml's [build-system])
BUILD_REQUIREMENTS = "requirements/build.txt"
CONSTRAINTS = "requirements/lock.txt"
MANIFEST = "wheelhouse.json"
#: environment variable naming the wheelhouse the test (and ``default_wheelhouse``) uses
WHEELHOUSE_ENV = "SEGCOURSE_WHEELHOUSE"
#: pip >= 22.2 writes ``--report``
MIN_PIP = (22, 2)
TMP_PREFIX = ".tmp-"

_WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")
_SDIST = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)\.(tar\.gz|zip)$")


class WheelhouseError(RuntimeError):
    """The wheelhouse cannot be built or is incomplete; the message names the file or requirement."""


@dataclass(frozen=True)
class Item:
    """One resolved distribution: ``name==version`` and the file that provides it."""

    name: str
    version: str
    filename: str
    url: str = ""
    sha256: str = ""

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


def parse_filename(filename: str) -> tuple[str, str] | None:
    """``(normalized name, version)`` of a wheel or sdist file name, ``None`` for other files.

    >>> parse_filename("scikit_image-0.26.0-cp311-cp311-manylinux_2_28_x86_64.whl")
    ('scikit-image', '0.26.0')
    >>> parse_filename("INSTALL.txt") is None
    True
    """
    match = _WHEEL.match(filename) or _SDIST.match(filename)
    if not match:
        return None
    return normalize(match.group("name")), match.group("version")


def missing_files(folder: Path, pins: dict[str, str]) -> list[str]:
    """The pins (``name==version``, sorted) that no wheel or sdist in ``folder`` provides."""
    present = {parsed for f in Path(folder).iterdir() if f.is_file() and (parsed := parse_filename(f.name))}
    return sorted(f"{name}=={version}" for name, version in pins.items() if (normalize(name), version) not in present)


def target() -> dict[str, str]:
    """The interpreter and platform wheels are chosen for (what a wheelhouse is good for)."""
    return {"implementation": sys.implementation.name, "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
            "platform": sysconfig.get_platform()}


def isolated_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """``environ`` for a pip that must see only the wheelhouse: no ``PIP_*`` variable and no pip config file.

    ``PIP_CONFIG_FILE=/dev/null`` makes pip skip every configuration file (global, user and site), so a
    machine's ``find-links``, ``extra-index-url`` or ``constraint`` cannot fill in what the wheelhouse lacks.
    """
    env = {k: v for k, v in (os.environ if environ is None else environ).items() if not k.upper().startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def offline_flags(wheelhouse: Path) -> list[str]:
    """pip options that install from ``wheelhouse`` only."""
    return ["--no-index", "--find-links", str(Path(wheelhouse).resolve())]


def _pip(python: str, args: list[str], env: dict[str, str] | None = None, what: str = "pip") -> None:
    cmd = [python, "-m", "pip", *args]
    proc = subprocess.run(cmd, check=False, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-25:])
        raise WheelhouseError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")


def check_pip(python: str = sys.executable) -> None:
    out = subprocess.run([python, "-m", "pip", "--version"], check=False, capture_output=True, text=True)
    match = re.match(r"pip (\d+)\.(\d+)", out.stdout)
    if not match or tuple(map(int, match.groups())) < MIN_PIP:
        raise WheelhouseError(f"{python} -m pip --version says {out.stdout.strip() or out.stderr.strip()!r}: "
                              f"the wheelhouse needs pip >= {'.'.join(map(str, MIN_PIP))} (--report); "
                              f"{python} -m pip install -U pip")


def _requirement_args(requirements: list[Path], constraints: Path) -> list[str]:
    args = []
    for req in requirements:
        args += ["-r", str(req)]
    return [*args, "-c", str(constraints)]


def resolve(requirements: list[Path], constraints: Path, *, wheelhouse: Path | None = None,
            python: str = sys.executable) -> list[Item]:
    """What pip would install into an empty environment of ``python``, with the file of each.

    With ``wheelhouse`` the resolution is offline (index off, pip config isolated): it succeeds only when the
    folder holds everything. Without, it uses this machine's pip configuration and the index (only metadata
    is downloaded where the index serves it).
    """
    with tempfile.TemporaryDirectory(prefix="segcourse-resolve-") as tmp:
        report = Path(tmp) / "report.json"
        args = ["install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report),
                *_requirement_args(requirements, constraints)]
        env = None
        if wheelhouse is not None:
            args += offline_flags(wheelhouse)
            env = isolated_env()
        _pip(python, args, env, what="resolving " + ", ".join(str(r) for r in requirements)
             + (f" offline from {wheelhouse}" if wheelhouse is not None else ""))
        data = json.loads(report.read_text())
    items = []
    for entry in data["install"]:
        info = entry["download_info"]
        url = info["url"]
        hashes = info.get("archive_info", {}).get("hashes", {})
        filename = url.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        items.append(Item(normalize(entry["metadata"]["name"]), entry["metadata"]["version"], unquote(filename),
                          url.split("#", 1)[0], hashes.get("sha256", "")))
    return sorted(items, key=lambda i: i.name)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_archive(path: Path) -> None:
    """A wheel whose zip directory does not read is truncated or not a wheel."""
    if path.suffix == ".whl":
        try:
            with zipfile.ZipFile(path) as z:
                if not any(n.endswith(".dist-info/METADATA") for n in z.namelist()):
                    raise WheelhouseError(f"{path}: a wheel without .dist-info/METADATA")
        except zipfile.BadZipFile as exc:
            raise WheelhouseError(f"{path}: not a readable wheel ({exc}); delete it and rerun") from exc


def download(items: list[Item], wheelhouse: Path, python: str = sys.executable, downloader=None) -> list[Path]:
    """Download the items whose file is not in ``wheelhouse`` yet; return the new files.

    pip downloads into a temporary folder inside the wheelhouse (checking each file's sha256 against the
    index's); each file is checked to read as a wheel and then renamed into place, so ``wheelhouse`` never
    holds a partial file. ``downloader(items, folder)`` replaces pip in tests.
    """
    wheelhouse = Path(wheelhouse)
    todo = [i for i in items if not (wheelhouse / i.filename).is_file()]
    if not todo:
        return []
    downloader = downloader or (lambda todo, folder: _pip_download(todo, folder, python))
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=wheelhouse))
    try:
        downloader(todo, tmp)
        new = []
        for item in todo:
            path = tmp / item.filename
            if not path.is_file():
                raise WheelhouseError(f"pip did not download {item.filename} ({item.pin}) from {item.url}")
            _check_archive(path)
            if item.sha256 and _sha256(path) != item.sha256:
                raise WheelhouseError(f"{item.filename}: sha256 differs from the index's {item.sha256}")
            new.append(path)
        moved = []
        for path in new:
            os.replace(path, wheelhouse / path.name)
            moved.append(wheelhouse / path.name)
        return moved
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pip_download(todo: list[Item], folder: Path, python: str) -> None:
    # exact files by URL, with the index's sha256 for pip to check (no resolution: the set is already resolved)
    urls = [f"{i.url}#sha256={i.sha256}" if i.sha256 else i.url for i in todo]
    for start in range(0, len(urls), 50):  # keep the command line short
        _pip(python, ["download", "--no-deps", "--quiet", "--dest", str(folder), *urls[start:start + 50]],
             what=f"downloading {len(urls)} file(s)")


def build_own_wheel(wheelhouse: Path, checkout: Path | None = None, python: str = sys.executable) -> Path:
    """segcourse's wheel, built from a clean copy of ``checkout`` (default: :func:`coursetools.checkout.root`)
    with the wheelhouse's build requirements only."""
    wheelhouse = Path(wheelhouse)
    checkout = checkout_root() if checkout is None else Path(checkout)
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=wheelhouse) as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (checkout / name).exists():
                shutil.copy2(checkout / name, src / name)
        # a copy, so no stale build/ or egg-info of the checkout ends up in the wheel
        shutil.copytree(checkout / "segcourse", src / "segcourse",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        out = Path(tmp) / "out"
        _pip(python, ["wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), *offline_flags(wheelhouse), str(src)],
             isolated_env(), what="building segcourse's wheel offline (setuptools and wheel from the wheelhouse)")
        (built,) = out.glob("segcourse-*.whl")
        _check_archive(built)
        for old in wheelhouse.glob("segcourse-*.whl"):
            if old.name != built.name:
                old.unlink()
        os.replace(built, wheelhouse / built.name)
    return wheelhouse / built.name


def _included(path: Path, seen: list[Path]) -> list[Path]:
    """``path`` and the files it includes with ``-r``/``-c`` lines, in order."""
    path = path.resolve()
    if path in seen:
        return seen
    seen.append(path)
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*(-r|--requirement|-c|--constraint)\s*=?\s*(\S+)", line)
        if match:
            _included(path.parent / match.group(2), seen)
    return seen


def inputs_digest(requirements: list[Path], constraints: Path) -> str:
    """sha256 over the requirement files (with what they include), the constraints and :func:`target`."""
    digest = hashlib.sha256(json.dumps(target(), sort_keys=True).encode())
    files: list[Path] = []
    for path in [*requirements, constraints]:
        _included(Path(path), files)
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def read_manifest(wheelhouse: Path) -> dict | None:
    path = Path(wheelhouse) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def check(wheelhouse: Path, *, for_this_python: bool = True) -> dict:
    """Raise :class:`WheelhouseError` naming every pinned requirement of ``wheelhouse.json`` without its file.

    With ``for_this_python`` also when the wheelhouse was made for another Python or platform than this one.
    Returns the manifest.
    """
    wheelhouse = Path(wheelhouse)
    if not wheelhouse.is_dir():
        raise WheelhouseError(f"{wheelhouse}: no such folder; make it on a connected machine with "
                              f"`make wheelhouse WHEELHOUSE={wheelhouse}`")
    manifest = read_manifest(wheelhouse)
    if manifest is None:
        raise WheelhouseError(f"{wheelhouse}: no {MANIFEST}, so not a wheelhouse made by `make wheelhouse`")
    if for_this_python and manifest["target"] != target():
        raise WheelhouseError(f"{wheelhouse} was made for {manifest['target']}, this Python is {target()}: "
                              "make the wheelhouse with the Python version and platform the room uses")
    pins = {f["name"]: f["version"] for f in manifest["files"]}
    missing = missing_files(wheelhouse, pins)
    files = {f["name"]: f["file"] for f in manifest["files"]}
    broken = [f"{f['file']} ({f['size']} bytes expected, {(wheelhouse / f['file']).stat().st_size} there)"
              for f in manifest["files"]
              if (wheelhouse / f["file"]).is_file() and (wheelhouse / f["file"]).stat().st_size != f["size"]]
    if missing or broken:
        lines = [f"  {pin}: no file {files[normalize(pin.split('==')[0])]}" for pin in missing]
        lines += [f"  {b}" for b in broken]
        raise WheelhouseError(f"{wheelhouse} is incomplete: {len(missing) + len(broken)} pinned requirement(s) "
                              "have no (complete) file there:\n" + "\n".join(lines)
                              + f"\nrerun `make wheelhouse WHEELHOUSE={wheelhouse}` on a connected machine")
    return manifest


@contextlib.contextmanager
def _locked(wheelhouse: Path):
    """One build at a time per folder (a second waits); stale temporary folders of killed builds are removed."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        fcntl = None
    with open(wheelhouse / ".lock", "w") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        for stale in wheelhouse.glob(TMP_PREFIX + "*"):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink()
        yield


def _install_text(manifest: dict) -> str:
    t = manifest["target"]
    size = sum(f["size"] for f in manifest["files"]) / 1e9
    own = next((f for f in manifest["files"] if f["name"] == "segcourse"), None)
    return f"""segcourse wheelhouse: every wheel the course installs, for machines with no internet.

Made {manifest['made']} by `make wheelhouse` ({len(manifest['files'])} files, {size:.1f} GB) for
{t['implementation']} {t['python']} on {t['platform']}: use it with that Python version on that platform only.
From {', '.join(manifest['requirements'])} with {manifest['constraints']} as constraints (copies in requirements/).
Below, THIS_FOLDER is the folder this file is in, wherever it was copied to. Check it on the machine that will use it
(in the checkout): python -m coursetools wheelhouse check --dest THIS_FOLDER

In the course checkout (what the course does, offline):
    make install-offline WHEELHOUSE=THIS_FOLDER
    make lab

The same without make, in the checkout:
    python3 -m venv .venv
    .venv/bin/python -m pip install --no-index --find-links THIS_FOLDER -r requirements/course.txt -c requirements/lock.txt
    .venv/bin/python -m pip install --no-index --find-links THIS_FOLDER --no-deps -e .
    .venv/bin/python -m ipykernel install --sys-prefix --name segcourse --display-name "Python (segcourse)"

Without the checkout (segcourse's own wheel, {own['file'] if own else 'not built'}; the notebooks come with the checkout):
    python3 -m venv venv
    venv/bin/python -m pip install --no-index --find-links THIS_FOLDER -r THIS_FOLDER/requirements.txt -c THIS_FOLDER/constraints.txt

Where the machine's pip has its own configuration (find-links, an index), add PIP_CONFIG_FILE=/dev/null in front
of the pip commands to be sure only this folder is used.
"""


def build(wheelhouse: Path, requirements: list[Path] | None = None, constraints: Path | None = None, *,
          python: str = sys.executable, log=print) -> dict:
    """Make or update ``wheelhouse``: download what is missing, rebuild segcourse's wheel, write the manifest.

    Up to date (the same requirement files, constraints and Python as the manifest records, every file there):
    no resolution and no download. Returns the manifest.
    """
    t0 = time.monotonic()
    wheelhouse = Path(wheelhouse)
    root = checkout_root()
    requirements = [Path(r) for r in (requirements or [root / r for r in DEFAULT_REQUIREMENTS])]
    build_reqs = root / BUILD_REQUIREMENTS
    if build_reqs.resolve() not in [r.resolve() for r in requirements]:
        requirements.append(build_reqs)
    constraints = Path(constraints or root / CONSTRAINTS)
    for path in [*requirements, constraints]:
        if not path.is_file():
            raise WheelhouseError(f"{path}: no such requirements file")
    wheelhouse.mkdir(parents=True, exist_ok=True)
    digest = inputs_digest(requirements, constraints)
    with _locked(wheelhouse):
        old = read_manifest(wheelhouse)
        current = False
        if old is not None and old.get("inputs") == digest:
            try:
                check(wheelhouse)
                current = True
            except WheelhouseError as exc:
                log(f"wheelhouse: {str(exc).splitlines()[0]}; resolving again")
        if current:
            items = [Item(f["name"], f["version"], f["file"], sha256=f.get("sha256", ""))
                     for f in old["files"] if f["name"] != "segcourse"]
            log(f"wheelhouse: {wheelhouse} holds the {len(items)} pinned files already (nothing downloaded)")
        else:
            check_pip(python)
            log(f"wheelhouse: resolving {', '.join(map(str, requirements))} with {constraints} for {target()}...")
            items = resolve(requirements, constraints, python=python)
            t1 = time.monotonic()
            new = download(items, wheelhouse, python)
            log(f"wheelhouse: {len(new)} file(s) downloaded, {len(items) - len(new)} already there "
                f"({time.monotonic() - t1:.0f} s)")
        own = build_own_wheel(wheelhouse, root, python=python)
        files = [{"name": i.name, "version": i.version, "file": i.filename, "sha256": i.sha256,
                  "size": (wheelhouse / i.filename).stat().st_size} for i in items]
        own_version = parse_filename(own.name)[1]
        files.append({"name": "segcourse", "version": own_version, "file": own.name, "sha256": _sha256(own),
                      "size": own.stat().st_size})
        manifest = {"made": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "target": target(), "inputs": digest,
                    "requirements": [_relative(r, root) for r in requirements],
                    "constraints": _relative(constraints, root),
                    "files": files}
        # copies of the requirement files, so the copied folder says what it was made from
        reqdir = wheelhouse / "requirements"
        reqdir.mkdir(exist_ok=True)
        included: list[Path] = []
        for path in [*requirements, constraints]:
            _included(path, included)
        for path in included:
            atomic_write_text(reqdir / path.name, path.read_text())
        atomic_write_text(wheelhouse / "constraints.txt", constraints.read_text())
        atomic_write_text(wheelhouse / "requirements.txt",
                      "# segcourse and what a learner needs, pinned (constraints: constraints.txt)\n"
                      + "".join(f"-r requirements/{r.name}\n" for r in requirements if r.resolve() != build_reqs.resolve())
                      + f"segcourse=={own_version}\n")
        atomic_write_text(wheelhouse / "INSTALL.txt", _install_text(manifest))
        if not current:
            # pip itself, index off, configuration off: does the folder hold everything?
            resolve([wheelhouse / "requirements.txt", wheelhouse / "requirements" / build_reqs.name],
                    wheelhouse / "constraints.txt", wheelhouse=wheelhouse, python=python)
            keep = {f["file"] for f in files}
            for path in wheelhouse.iterdir():  # versions no longer pinned
                if path.is_file() and parse_filename(path.name) and path.name not in keep:
                    log(f"wheelhouse: removing {path.name} (no longer pinned)")
                    path.unlink()
        atomic_write_text(wheelhouse / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        check(wheelhouse)
    size = sum(f["size"] for f in files)
    log(f"wheelhouse: {wheelhouse}: {len(files)} files, {size / 1e9:.2f} GB, for {target()} "
        f"({time.monotonic() - t0:.0f} s); install with `make install-offline WHEELHOUSE={wheelhouse}`")
    return manifest


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(path)


def default_wheelhouse() -> Path:
    """``$SEGCOURSE_WHEELHOUSE``, else ``${XDG_CACHE_HOME:-~/.cache}/segcourse/wheelhouse`` (kept between runs)."""
    if os.environ.get(WHEELHOUSE_ENV):
        return Path(os.environ[WHEELHOUSE_ENV])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "segcourse" / "wheelhouse"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["build", "check"],
                        help="build: download what is missing and write the manifest; check: is every pinned file there")
    parser.add_argument("--dest", type=Path, default=None,
                        help=f"the wheelhouse folder (default ${WHEELHOUSE_ENV} or ~/.cache/segcourse/wheelhouse)")
    parser.add_argument("-r", "--requirement", dest="requirements", action="append", type=Path, default=None,
                        help=f"requirements file (repeatable; default {', '.join(DEFAULT_REQUIREMENTS)}; "
                             f"{BUILD_REQUIREMENTS} is always added)")
    parser.add_argument("-c", "--constraint", dest="constraints", type=Path, default=None,
                        help=f"constraints file (default {CONSTRAINTS})")


def run(args: argparse.Namespace) -> int:
    dest = args.dest or default_wheelhouse()
    try:
        if args.action == "build":
            build(dest, args.requirements, args.constraints)
        else:
            manifest = check(dest)
            print(f"{dest}: all {len(manifest['files'])} pinned files there, for {manifest['target']}")
    except WheelhouseError as exc:
        print(f"wheelhouse: {exc}", file=sys.stderr)
        return 1
    return 0

