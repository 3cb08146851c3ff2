"""``python -m segcourse doctor``: is this machine ready for the course?

Prints Python, torch, torchvision and the key packages' versions, the device and mode,
which datasets are already built, and whether JupyterLab has the widget extension and
the course's kernel. Exits non-zero, naming what to do, when something required is
missing or broken. Lesson 00 shows the same checks via :func:`collect`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as md
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from segcourse.checking import CheckResult
from segcourse.pins import parse_pins

#: import name -> distribution name, for the packages every lesson needs
REQUIRED_PACKAGES = {
    "numpy": "numpy", "scipy": "scipy", "skimage": "scikit-image", "matplotlib": "matplotlib",
    "PIL": "pillow", "albumentations": "albumentations", "cv2": "opencv-python-headless", "tqdm": "tqdm",
    "safetensors": "safetensors", "ipywidgets": "ipywidgets",
}
#: packages some lessons need; missing ones are reported, not fatal
OPTIONAL_PACKAGES = {"onnx": "onnx", "onnxruntime": "onnxruntime", "jupyterlab": "jupyterlab", "tensorboard": "tensorboard"}
#: what a missing optional package costs (shown on its ``warn`` line)
OPTIONAL_USES = {
    "onnx": "lesson 10's ONNX export needs it", "onnxruntime": "lesson 10's ONNX parity check needs it",
    "jupyterlab": "needed to open the notebooks in JupyterLab (not to run them with `python -m coursetools course`)",
    "tensorboard": "no lesson needs it; fit(log_dir=...) writes TensorBoard logs with it (an ImportError without)",
}


@dataclass
class Check(CheckResult):
    """One line of the doctor's report: a :class:`~segcourse.checking.CheckResult` that may be optional
    (``required=False``: a failure is a warning)."""

    required: bool = True

    def line(self) -> str:
        mark = "ok " if self.passed else ("FAIL" if self.required else "warn")
        return f"[{mark:4}] {self.name:<22} {self.message}"


def _pins() -> dict[str, str]:
    """``{name: version}`` of the exact pins in ``requirements/course.txt`` of the source checkout segcourse is
    imported from (:func:`segcourse.data.paths.repo_root`); empty for an installed package, which has none."""
    from ..data.paths import repo_root

    root = repo_root()
    path = None if root is None else root / "requirements" / "course.txt"
    if path is None or not path.is_file():
        return {}
    return parse_pins(path.read_text().splitlines())


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def check_python() -> Check:
    ok = sys.version_info >= (3, 10)
    return Check("python", ok, f"{sys.version.split()[0]} ({sys.executable})" + ("" if ok else " -- the course needs Python >= 3.10"))


def check_torch(pins: dict[str, str]) -> list[Check]:
    checks = []
    for dist in ("torch", "torchvision"):
        version = _version(dist)
        if version is None:
            checks.append(Check(dist, False, "not installed -- run `make lab` (or pip install -r requirements/course.txt)"))
            continue
        want = pins.get(dist)
        same = want is None or version.split("+")[0] == want
        detail = version + ("" if same else f" (the course is tested with {want}; other versions may work)")
        checks.append(Check(dist, True, detail))
    if all(c.passed for c in checks):
        try:
            import torch
            from torchvision.ops import nms

            kept = nms(torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0]]), torch.tensor([0.9, 0.8]), 0.5)
            checks.append(Check("torchvision ops", kept.tolist() == [0], "compiled ops (nms) load and run"))
        except Exception as exc:  # noqa: BLE001 - the classic torch/torchvision mismatch
            checks.append(Check("torchvision ops", False, f"compiled ops fail to load ({type(exc).__name__}: {exc}); "
                                "torch and torchvision must be a matching pair: reinstall with `make distclean lab`"))
    return checks


def check_packages() -> list[Check]:
    checks = []
    for module, dist in {**REQUIRED_PACKAGES, **OPTIONAL_PACKAGES}.items():
        required = module in REQUIRED_PACKAGES
        try:
            importlib.import_module(module)
            checks.append(Check(dist, True, _version(dist) or "installed", required))
        except Exception as exc:  # noqa: BLE001 - any import failure is reported, not raised
            hint = ("run `make lab` to install the pinned environment" if required
                    else f"optional: {OPTIONAL_USES.get(module, 'only some lessons use it')}")
            checks.append(Check(dist, False, f"missing ({type(exc).__name__}); {hint}", required))
    return checks


def check_device() -> list[Check]:
    import torch

    from ..config import MODE_ENV, get_device, get_mode

    try:
        mode = get_mode()
    except ValueError as exc:
        return [Check("mode", False, str(exc))]
    device = get_device()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        bf16 = torch.cuda.is_bf16_supported()
        detail = f"cuda: {name} ({torch.cuda.device_count()} GPU(s), bf16 {'yes' if bf16 else 'no'})"
    elif device.type == "mps":
        detail = "mps (Apple GPU)"
    else:
        threads = torch.get_num_threads()
        detail = f"cpu ({threads} thread{'' if threads == 1 else 's'}); no GPU found"
    detail += f", lessons run in {mode} mode"
    chosen = os.environ.get(MODE_ENV, "").strip().lower()
    source = f"set by {MODE_ENV}={chosen}" if chosen and chosen != "auto" else \
        "chosen automatically (full with CUDA, quick without)"
    return [Check("device", True, detail),
            Check("mode", True, f"{mode}, {source}; to change it, set {MODE_ENV}=smoke|quick|full before "
                                "starting JupyterLab")]


def check_datasets() -> list[Check]:
    try:
        from ..data.catalog import DATASETS
        from ..data.paths import data_root
    except ImportError as exc:
        return [Check("datasets", False, f"segcourse.data is incomplete ({exc})")]
    root = data_root()
    present = [name for name in DATASETS if (root / name).exists() and any((root / name).rglob("*.png"))]
    missing = [name for name in DATASETS if name not in present]
    detail = f"{root}: built {', '.join(present) or 'none yet'}"
    if missing:
        detail += f"; {', '.join(missing)} will be generated on first use (or `make data`)"
    return [Check("datasets", True, detail, required=False)]


def check_jupyter() -> list[Check]:
    checks = []
    manager = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "@jupyter-widgets" / "jupyterlab-manager" / "package.json"
    version = None
    if manager.exists():
        version = json.loads(manager.read_text()).get("version")
    if version is None:
        try:
            from jupyterlab_widgets import __version__ as version
        except ImportError:
            version = None
    checks.append(Check("widget extension", version is not None,
                        f"@jupyter-widgets/jupyterlab-manager {version}" if version else
                        "JupyterLab's ipywidgets extension is missing: sliders will show 'Error displaying widget'; "
                        "pip install jupyterlab_widgets (comes with ipywidgets>=8)"))
    try:
        from jupyter_client.kernelspec import find_kernel_specs

        specs = find_kernel_specs()
        ok = "segcourse" in specs
        checks.append(Check("jupyter kernel", ok, f"'segcourse' at {specs['segcourse']}" if ok else
                            "kernel 'segcourse' not installed: python -m ipykernel install --sys-prefix --name segcourse "
                            "--display-name 'Python (segcourse)'", required=False))
    except ImportError:
        checks.append(Check("jupyter kernel", False, "jupyter_client not installed (JupyterLab missing)", required=False))
    return checks


def collect() -> list[Check]:
    """Run every check; the environment is never modified."""
    checks = [check_python()]
    torch_checks = check_torch(_pins())
    checks += torch_checks
    checks += check_packages()
    if all(c.passed for c in torch_checks):
        checks += check_device()
    checks += check_datasets()
    checks += check_jupyter()
    return checks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")


def run(args: argparse.Namespace) -> int:
    checks = collect()
    if args.json:
        print(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        for c in checks:
            print(c.line())
    failed = [c for c in checks if c.required and not c.passed]
    if failed:
        print(f"\n{len(failed)} problem(s): {', '.join(c.name for c in failed)}. Fix them as described above.", file=sys.stderr)
        return 1
    if not args.json:
        print("\nAll required checks passed.")
    return 0
