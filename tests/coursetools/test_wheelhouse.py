"""The offline route: ``make wheelhouse`` and ``make install-offline`` (coursetools/wheelhouse.py).

The unit tests run in ``make test``. The end-to-end test (marker ``wheelhouse``, ``make test-wheelhouse``) builds
or updates the cached wheelhouse (``$SEGCOURSE_WHEELHOUSE``, default ``~/.cache/segcourse/wheelhouse``: a few GB
the first time, from the registry through this machine's pip configuration), then installs the course into a
fresh venv the way a room does, with the index off, every ``PIP_*`` variable dropped, no pip configuration file
(``PIP_CONFIG_FILE=/dev/null``) and a proxy that refuses every connection, so it passes only when the wheelhouse
is complete. A failing download or install fails the test; it never skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from coursetools import checkout
from coursetools import wheelhouse as wh
from segcourse.pins import normalize, parse_pins

ROOT = checkout.root(Path(__file__).parent)  # the checkout these tests belong to


def _wheel(folder: Path, name: str, version: str, tag: str = "py3-none-any") -> Path:
    """A minimal valid wheel file (a zip with .dist-info/METADATA)."""
    path = folder / f"{name.replace('-', '_')}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{name.replace('-', '_')}-{version}.dist-info/METADATA", f"Name: {name}\nVersion: {version}\n")
    return path


def _manifest(folder: Path, files: list[tuple[str, str, str, int]], target: dict | None = None) -> None:
    (folder / wh.MANIFEST).write_text(json.dumps({
        "made": "test", "target": target or wh.target(), "inputs": "", "requirements": [], "constraints": "",
        "files": [{"name": n, "version": v, "file": f, "sha256": "", "size": s} for n, v, f, s in files]}))


# --------------------------------------------------------------------------- unit tests


def test_parse_filename_and_missing_files(tmp_path):
    _wheel(tmp_path, "scikit-image", "0.26.0", "cp311-cp311-manylinux_2_28_x86_64")
    (tmp_path / "INSTALL.txt").write_text("not a distribution")
    assert wh.parse_filename("torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl") == ("torch", "2.14.1")
    assert wh.parse_filename("pycocotools-2.0.11.tar.gz") == ("pycocotools", "2.0.11")
    pins = parse_pins(["# comment", "Scikit_Image==0.26.0", "torch==2.14.1  # the pair", "-r other.txt"])
    assert pins == {"scikit-image": "0.26.0", "torch": "2.14.1"}
    assert wh.missing_files(tmp_path, pins) == ["torch==2.14.1"]
    # another version of a pinned package does not count
    assert wh.missing_files(tmp_path, {"scikit-image": "0.25.0"}) == ["scikit-image==0.25.0"]


def test_check_names_each_missing_requirement_and_its_file(tmp_path):
    present = _wheel(tmp_path, "tqdm", "4.70.1")
    torch_file = "torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl"
    _manifest(tmp_path, [("tqdm", "4.70.1", present.name, present.stat().st_size), ("torch", "2.14.1", torch_file, 10)])
    with pytest.raises(wh.WheelhouseError) as err:
        wh.check(tmp_path)
    message = str(err.value)
    assert f"torch==2.14.1: no file {torch_file}" in message
    assert "1 pinned requirement(s)" in message and "tqdm" not in message
    assert "make wheelhouse" in message


def test_check_reports_a_truncated_file_and_another_python(tmp_path):
    present = _wheel(tmp_path, "tqdm", "4.70.1")
    _manifest(tmp_path, [("tqdm", "4.70.1", present.name, present.stat().st_size + 5)])
    with pytest.raises(wh.WheelhouseError, match=r"tqdm-4.70.1-py3-none-any.whl \(\d+ bytes expected"):
        wh.check(tmp_path)
    other = dict(wh.target(), python="2.7")
    _manifest(tmp_path, [("tqdm", "4.70.1", present.name, present.stat().st_size)], target=other)
    with pytest.raises(wh.WheelhouseError, match="was made for .*'python': '2.7'"):
        wh.check(tmp_path)
    assert wh.check(tmp_path, for_this_python=False)["files"][0]["name"] == "tqdm"
    (tmp_path / wh.MANIFEST).unlink()
    with pytest.raises(wh.WheelhouseError, match="no wheelhouse.json"):
        wh.check(tmp_path)


def test_download_fetches_only_missing_files_and_moves_them_in(tmp_path):
    there = _wheel(tmp_path, "tqdm", "4.70.1")
    items = [wh.Item("tqdm", "4.70.1", there.name), wh.Item("six", "1.17.0", "six-1.17.0-py3-none-any.whl")]
    asked = []

    def fake(todo, folder):
        asked.extend(i.name for i in todo)
        _wheel(folder, "six", "1.17.0")

    new = wh.download(items, tmp_path, downloader=fake)
    assert asked == ["six"], "a file already in the wheelhouse was downloaded again"
    assert [p.name for p in new] == ["six-1.17.0-py3-none-any.whl"] and new[0].is_file()
    assert not list(tmp_path.glob(wh.TMP_PREFIX + "*")), "the temporary download folder was left behind"
    assert wh.download(items, tmp_path, downloader=fake) == [] and asked == ["six"]


@pytest.mark.parametrize("failure", ["pip fails", "truncated", "wrong sha256"])
def test_a_failed_download_leaves_no_partial_file(tmp_path, failure):
    item = wh.Item("torch", "2.14.1", "torch-2.14.1-py3-none-any.whl", sha256="0" * 64 if failure == "wrong sha256" else "")

    def fake(todo, folder):
        if failure == "wrong sha256":
            _wheel(folder, "torch", "2.14.1")
            return
        (folder / item.filename).write_bytes(b"PK\x03\x04 half a wheel")
        if failure == "pip fails":
            raise wh.WheelhouseError("downloading 1 file(s) failed (exit 1): connection reset")

    with pytest.raises(wh.WheelhouseError, match="connection reset|not a readable wheel|sha256 differs"):
        wh.download([item], tmp_path, downloader=fake)
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a partial file or temporary folder was left"


def test_isolated_env_drops_the_machines_pip_settings():
    env = wh.isolated_env({"PIP_FIND_LINKS": "/opt/wheels", "pip_constraint": "/etc/c.txt", "PATH": "/usr/bin"})
    assert env == {"PATH": "/usr/bin", "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def test_build_requirements_cover_pyproject_and_are_locked():
    block = re.search(r"\[build-system\]\s*requires\s*=\s*\[([^\]]*)\]", (ROOT / "pyproject.toml").read_text())
    build_system = re.findall(r'"([^"]+)"', block.group(1))
    assert build_system, "no [build-system] requires in pyproject.toml"
    pins = parse_pins((ROOT / wh.BUILD_REQUIREMENTS).read_text().splitlines())
    lock = parse_pins((ROOT / wh.CONSTRAINTS).read_text().splitlines())
    for spec in build_system:
        req = Requirement(spec)
        name = normalize(req.name)
        assert name in pins, f"pyproject.toml's build requirement {spec} is not pinned in {wh.BUILD_REQUIREMENTS}"
        assert req.specifier.contains(pins[name]), f"{wh.BUILD_REQUIREMENTS} pins {name}=={pins[name]}, outside {spec}"
        assert lock.get(name) == pins[name], f"lock.txt has {name}=={lock.get(name)}, {wh.BUILD_REQUIREMENTS} {pins[name]}"


def test_inputs_digest_follows_included_files(tmp_path):
    (tmp_path / "base.txt").write_text("numpy==2.4.6\n")
    (tmp_path / "top.txt").write_text("-r base.txt\n")
    (tmp_path / "lock.txt").write_text("numpy==2.4.6\n")
    before = wh.inputs_digest([tmp_path / "top.txt"], tmp_path / "lock.txt")
    (tmp_path / "base.txt").write_text("numpy==2.4.7\n")
    assert wh.inputs_digest([tmp_path / "top.txt"], tmp_path / "lock.txt") != before


# --------------------------------------------------------------------------- end to end


def _run(cmd, *, env=None, cwd=None, what="") -> str:
    """``cmd``'s stdout; its stdout and stderr in the failure when it exits non-zero."""
    proc = subprocess.run([str(c) for c in cmd], check=False, env=env, cwd=cwd, capture_output=True, text=True)
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-40:])
    assert proc.returncode == 0, f"{what or cmd[0]} failed (exit {proc.returncode}): {' '.join(map(str, cmd))}\n{tail}"
    return proc.stdout


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _offline_env(tmp: Path) -> dict[str, str]:
    """The room: no pip settings, no index, no network (a proxy that refuses), nothing of the caller's venv."""
    env = wh.isolated_env()
    for key in list(env):
        if key.upper() in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "NO_PROXY") \
                or key.upper().startswith("JUPYTER"):
            del env[key]
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        env[key] = "http://127.0.0.1:9"
    env["HOME"] = str(tmp / "home")  # no user-level kernels or pip cache of the caller
    (tmp / "home").mkdir()
    return env


KERNEL_CHECK = """
import sys
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name="segcourse", startup_timeout=120)
out = []
try:
    kc.execute_interactive("import sys, segcourse; print(sys.prefix, segcourse.__version__)", timeout=120,
                           output_hook=lambda m: out.append(m["content"].get("text", "")))
finally:
    kc.stop_channels(); km.shutdown_kernel(now=True)
print("KERNEL:", "".join(out).strip())
"""


@pytest.mark.wheelhouse
def test_offline_install_from_the_wheelhouse():
    # deselected unless selected by its marker (pyproject's addopts): `make test-wheelhouse` (pytest -m wheelhouse)
    dest = wh.default_wheelhouse()
    times = {}
    t0 = time.monotonic()
    # 1. the connected machine: build or update the cache with this machine's pip configuration (the registry)
    out = _run([sys.executable, "-m", "coursetools", "wheelhouse", "build", "--dest", dest], cwd=ROOT,
               what="make wheelhouse")
    times["build_s"] = round(time.monotonic() - t0, 1)
    print(out.strip().splitlines()[-1])
    manifest = wh.check(dest)
    assert {"torch", "torchvision", "ipykernel", "jupyterlab", "setuptools", "wheel", "segcourse"} <= {
        f["name"] for f in manifest["files"]}
    assert (dest / "INSTALL.txt").is_file() and (dest / "requirements" / "course.txt").is_file()

    tmp = Path(tempfile.mkdtemp(prefix="segcourse-offline-"))
    try:
        env = _offline_env(tmp)
        config = _run([sys.executable, "-m", "pip", "config", "list"], env=env).split()
        assert config == [":env:.config-file='/dev/null'", ":env:.disable-pip-version-check='1'"], \
            f"pip still reads a configuration in the isolated environment: {config}"
        venv = tmp / "venv"
        base_python = getattr(sys, "_base_executable", sys.executable)
        # 2. the room: the Makefile's route, a fresh venv, the index off
        t1 = time.monotonic()
        _run(["make", "--no-print-directory", "install-offline", f"VENV={venv}", f"WHEELHOUSE={dest}",
              f"PYTHON={base_python}"], env=env, cwd=ROOT, what="make install-offline")
        times["install_s"] = round(time.monotonic() - t1, 1)
        python = venv / "bin" / "python"
        _run([python, "-m", "pip", "check"], env=env, what="pip check in the offline venv")
        got = _run([python, "-c", "import segcourse, torch; print(segcourse.__file__, torch.__version__)"],
                   env=env, cwd=tmp).split()
        locked = parse_pins((ROOT / "requirements" / "lock.txt").read_text().splitlines())["torch"]
        assert got[0] == str(ROOT / "segcourse" / "__init__.py") and got[1].split("+")[0] == locked, (got, locked)
        # the doctor: every required check passes and the kernel is the venv's
        checks = json.loads(_run([python, "-m", "segcourse", "doctor", "--json"], env=env, cwd=tmp, what="doctor"))
        kernel = next(c for c in checks if c["name"] == "jupyter kernel")
        assert kernel["passed"] and str(venv) in kernel["message"], kernel
        # the kernel starts and imports segcourse from the venv
        said = _run([python, "-c", KERNEL_CHECK], env=env, cwd=tmp, what="starting the segcourse kernel")
        assert f"KERNEL: {venv} 0.1.0" in said, said
        # segcourse's own wheel (no checkout): installs offline and carries its package data
        target = tmp / "wheel-install"
        _run([python, "-m", "pip", "install", "--quiet", *wh.offline_flags(dest), "--no-deps", "--target", target,
              "segcourse"], env=env, what="installing segcourse's wheel offline")
        from_wheel = _run([python, "-c", "import segcourse; print(segcourse.__file__)"],
                          env=dict(env, PYTHONPATH=str(target)), cwd=tmp).strip()
        assert from_wheel == str(target / "segcourse" / "__init__.py")
        # every module and data file of the checkout's package (the wheel was built from it just now)
        files = sorted(p.relative_to(ROOT / "segcourse") for pattern in ("*.py", "*.json", "*.txt")
                       for p in (ROOT / "segcourse").rglob(pattern) if "__pycache__" not in p.parts)
        lacking = [str(p) for p in files if not (target / "segcourse" / p).is_file()]
        assert files and not lacking, f"segcourse's wheel lacks {lacking}"
        sizes = {"wheelhouse_bytes": _du(dest), "venv_bytes": _du(venv)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    times["total_s"] = round(time.monotonic() - t0, 1)
    print(f"wheelhouse {dest}: {sizes['wheelhouse_bytes'] / 1e9:.2f} GB, {len(manifest['files'])} files; fresh venv "
          f"{sizes['venv_bytes'] / 1e9:.2f} GB; {times}")
    out_dir = ROOT / "build"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "wheelhouse-test.json").write_text(json.dumps({**times, **sizes, "wheelhouse": str(dest)}, indent=1))


def test_the_offline_installer_runs_on_a_bare_python(tmp_path):
    """`make wheelhouse` / `make install-offline` run it before any venv exists: no NumPy, torch or Pillow."""
    import subprocess
    import sys

    blocker = ("import sys, runpy; sys.modules.update(numpy=None, torch=None, PIL=None); "
               f"sys.argv = ['coursetools', 'wheelhouse', 'check', '--dest', {str(tmp_path / 'none')!r}]; "
               "runpy.run_module('coursetools', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", blocker], cwd=checkout.root(), capture_output=True, text=True,
                            check=False)
    assert "no such folder" in result.stdout + result.stderr, result.stderr[-2000:]
    assert "ModuleNotFoundError" not in result.stderr and "ImportError" not in result.stderr
