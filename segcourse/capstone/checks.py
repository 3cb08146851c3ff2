"""The capstone's rubric, as code: one ``check_*`` per deliverable, and :func:`grade`.

Each check takes a report folder (see :mod:`segcourse.capstone.report`) and returns a
:class:`~segcourse.checking.CheckResult` (name, passed, a message naming the file or value and what was expected);
a check never raises: whatever goes wrong inside it is its failure message. The checks re-verify
what is cheap to re-verify: the split and the fold summary are recomputed from their parts, the
ONNX file is compared with the checkpoint again, and the served model is started again from the
folder's ONNX file and asked for a mask.

======================  ===============================================================================
rubric item             passes when
======================  ===============================================================================
split                   the test split and the CV pool are disjoint and cover every image; the folds
                        partition the pool (every image in exactly one validation fold), k >= 2
cross-validation        k folds recorded, each with every metric, finite, in [0, 1]; the summary's mean and
                        standard deviation equal those recomputed from the folds
report                  ``report.md`` has every section, and every figure it links exists and is a PNG
                        (the per-fold, example and served-vs-eager figures among them)
per-class and boundary  IoU and Dice for every class, consistent (Dice = 2 IoU / (1 + IoU) from one
                        confusion matrix); Boundary IoU in [0, 1] and HD95 finite
test target             test mIoU and foreground Dice at least the targets (:data:`TARGETS`)
ONNX parity             ``model.onnx`` matches the checkpoint ``model.safetensors`` in PyTorch within
                        :data:`PARITY_TOLERANCE` on an even and an odd size
served model            the lesson 10 service, started on ``model.onnx`` (127.0.0.1, a free port), answers
                        ``POST /predict`` with the sample image's mask, equal to the in-process ONNX one
======================  ===============================================================================
"""

from __future__ import annotations

import functools
import io
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from ..checking import CheckFailed, CheckResult
from .report import FIGURES, REPORT, REQUIRED_FIGURES, SECTIONS, read_results

#: Quality targets on the held-out test set, per mode (smoke mode trains one epoch: nothing to judge). Quick mode
#: measured test mIoU 0.959-0.969 and Dice 0.966-0.974 over three seed offsets, and still 0.923 / 0.935 in an early
#: run whose training a busy machine cut short; full mode (a GPU) is not measured yet and gets the quick targets.
TARGETS = {"smoke": {"miou": 0.0, "fg_dice": 0.0},
           "quick": {"miou": 0.90, "fg_dice": 0.92},
           "full": {"miou": 0.90, "fg_dice": 0.92}}
#: Largest |ONNX Runtime - PyTorch| logit difference accepted.
PARITY_TOLERANCE = 1e-4
ONNX_FILE, CHECKPOINT_FILE, SAMPLE_FILE = "model.onnx", "model.safetensors", "sample.png"
ROUTE = "/predict"


def targets(mode: str | None = None) -> dict[str, float]:
    """The test-set targets of ``mode`` (default: the current mode, :func:`segcourse.config.get_mode`)."""
    from ..config import get_mode

    mode = mode or get_mode()
    if mode not in TARGETS:
        raise ValueError(f"no targets for mode {mode!r}; expected one of {', '.join(TARGETS)}")
    return dict(TARGETS[mode])


def _rubric(name: str) -> Callable:
    """Turn ``fn(folder, ...) -> str`` (the pass message; raise :class:`CheckFailed` or anything to fail) into a check."""
    def wrap(fn):
        @functools.wraps(fn)
        def check(folder, *args, **kwargs) -> CheckResult:
            try:
                return CheckResult(name, True, fn(Path(folder), *args, **kwargs))
            except CheckFailed as err:
                return CheckResult(name, False, str(err))
            except Exception as err:  # noqa: BLE001 - a broken deliverable is a failed check, never a crash
                return CheckResult(name, False, f"{type(err).__name__}: {err}")
        check.rubric_name = name
        return check
    return wrap


def _section(folder: Path, key: str) -> dict:
    results = read_results(folder)
    if not isinstance(results.get(key), dict):
        raise CheckFailed(f"{folder / 'results.json'} has no {key!r} section (expected a JSON object)")
    return results[key]


def _finite_unit(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckFailed(f"{what} is {value!r}, expected a number")
    if not math.isfinite(value):
        raise CheckFailed(f"{what} is {value}, expected a finite number in [0, 1]")
    if not 0.0 <= value <= 1.0:
        raise CheckFailed(f"{what} is {value}, expected a value in [0, 1]")
    return float(value)


@_rubric("split")
def check_split(folder: Path) -> str:
    """The test split and the CV pool partition the images; the k folds partition the pool."""
    split = _section(folder, "split")
    try:
        n, k = int(split["n"]), int(split["k"])
        test, pool, folds = list(split["test"]), list(split["pool"]), [list(f) for f in split["folds"]]
    except (KeyError, TypeError, ValueError) as err:
        raise CheckFailed(f"results.json split needs n, k, test, pool and folds: {err}") from None
    if k < 2 or len(folds) != k:
        raise CheckFailed(f"split: k = {k} with {len(folds)} folds listed; expected k >= 2 folds, all listed")
    if set(test) & set(pool):
        raise CheckFailed(f"split: {len(set(test) & set(pool))} images are both in the test split and the CV pool "
                    f"(e.g. {sorted(set(test) & set(pool))[:3]}): the test split must be held out")
    everything = sorted(test + pool)
    if everything != list(range(n)):
        raise CheckFailed(f"split: test + pool have {len(everything)} entries ({len(set(everything))} distinct), expected "
                    f"each of the {n} images once")
    in_folds = sorted(i for f in folds for i in f)
    if in_folds != sorted(pool):
        counts = {i: sum(i in f for f in folds) for i in pool}
        bad = [i for i, c in counts.items() if c != 1][:3]
        raise CheckFailed(f"split: the validation folds do not partition the pool: images {bad} are in "
                    f"{[counts[i] for i in bad]} folds (expected exactly one each)")
    if any(not f for f in folds):
        raise CheckFailed("split: a validation fold is empty")
    return (f"{len(test)} test + {len(pool)} pool = {n} images; {k} folds of "
            f"{'/'.join(str(len(f)) for f in folds)}, every pool image in exactly one")


@_rubric("cross-validation")
def check_cross_validation(folder: Path) -> str:
    """k folds were trained and scored; each metric has a mean and a spread equal to the folds'."""
    from .crossval import summarize

    cv = _section(folder, "cv")
    k = int(_section(folder, "split")["k"])
    metrics, folds, summary = cv.get("metrics"), cv.get("folds"), cv.get("summary")
    if not metrics or not isinstance(folds, list) or not isinstance(summary, dict):
        raise CheckFailed("results.json cv needs metrics (names), folds (one dict per fold) and summary")
    if len(folds) != k:
        raise CheckFailed(f"cv: {len(folds)} folds scored, expected k = {k}")
    for i, fold in enumerate(folds):
        for m in metrics:
            if m not in fold:
                raise CheckFailed(f"cv: fold {i} has no {m!r}")
            _finite_unit(fold[m], f"cv fold {i} {m}")
    want = summarize([{m: f[m] for m in metrics} for f in folds])
    for m in metrics:
        got = summary.get(m)
        if not isinstance(got, dict) or "mean" not in got or "std" not in got:
            raise CheckFailed(f"cv summary: {m!r} needs a mean and a std")
        for stat in ("mean", "std", "min", "max"):
            if stat in got and not math.isclose(float(got[stat]), want[m][stat], rel_tol=1e-9, abs_tol=1e-12):
                raise CheckFailed(f"cv summary: {m} {stat} is {got[stat]}, but the folds give {want[m][stat]}")
    first = metrics[0]
    return (f"{k} folds, {len(metrics)} metrics; {first} {want[first]['mean']:.4f} ± {want[first]['std']:.4f} "
            f"({want[first]['min']:.4f}–{want[first]['max']:.4f})")


@_rubric("report")
def check_report(folder: Path) -> str:
    """``report.md`` exists with every section, and every figure it links (the required ones included) exists."""
    import re

    path = folder / REPORT
    if not path.is_file():
        raise CheckFailed(f"{path} does not exist")
    text = path.read_text(encoding="utf-8")
    headings = set(re.findall(r"^##\s+(.+?)\s*$", text, flags=re.MULTILINE))
    missing = [s for s in SECTIONS if s not in headings]
    if missing:
        raise CheckFailed(f"{path.name} has no section(s) {', '.join('## ' + s for s in missing)}")
    links = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text)
    for name in REQUIRED_FIGURES:
        if f"{FIGURES}/{name}.png" not in links:
            raise CheckFailed(f"{path.name} does not show the figure {FIGURES}/{name}.png")
    for link in links:
        figure = folder / link
        if not figure.is_file():
            raise CheckFailed(f"{path.name} links {link}, which does not exist in {folder}")
        if figure.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
            raise CheckFailed(f"{link} is not a PNG file")
    return f"{path.name}: {len(SECTIONS)} sections, {len(links)} figures, all present"


@_rubric("per-class and boundary")
def check_per_class_and_boundary(folder: Path) -> str:
    """Per-class IoU and Dice for every class (consistent with each other), Boundary IoU and HD95."""
    test = _section(folder, "test")
    classes = _section(folder, "data").get("classes") or []
    iou, dice = test.get("iou_per_class"), test.get("dice_per_class")
    if not classes:
        raise CheckFailed("results.json data has no class names")
    if not isinstance(iou, list) or not isinstance(dice, list) or len(iou) != len(classes) \
            or len(dice) != len(classes):
        raise CheckFailed(f"test: expected iou_per_class and dice_per_class with one value per class "
                    f"({len(classes)}: {', '.join(classes)})")
    for name, i, d in zip(classes, iou, dice):
        i, d = _finite_unit(i, f"test IoU of {name}"), _finite_unit(d, f"test Dice of {name}")
        if not math.isclose(d, 2 * i / (1 + i), abs_tol=1e-6):
            raise CheckFailed(f"test: {name} has IoU {i:.4f} and Dice {d:.4f}, but from one confusion matrix Dice = "
                        f"2 IoU / (1 + IoU) = {2 * i / (1 + i):.4f}")
    b = _finite_unit(test.get("boundary_iou"), "test Boundary IoU")
    hd = test.get("hd95")
    if isinstance(hd, bool) or not isinstance(hd, (int, float)) or not math.isfinite(hd) or hd < 0:
        raise CheckFailed(f"test HD95 is {hd!r}, expected a finite distance >= 0 (pixels)")
    return ", ".join(f"{n} IoU {i:.4f}" for n, i in zip(classes, iou)) + f"; Boundary IoU {b:.4f}, HD95 {hd:.2f} px"


@_rubric("test target")
def check_test_target(folder: Path, wanted: Mapping[str, float] | None = None) -> str:
    """Test mIoU and foreground Dice at least the targets (default: :func:`targets` of the current mode)."""
    test = _section(folder, "test")
    wanted = dict(wanted) if wanted is not None else targets()
    shown = []
    for key, target in wanted.items():
        value = _finite_unit(test.get(key), f"test {key}")
        if value < target:
            raise CheckFailed(f"test {key} = {value:.4f}, expected >= {target}")
        shown.append(f"{key} {value:.4f} >= {target}")
    return "; ".join(shown)


@_rubric("ONNX parity")
def check_onnx_parity(folder: Path, tolerance: float = PARITY_TOLERANCE) -> str:
    """``model.onnx`` gives the logits of ``model.safetensors`` in PyTorch within ``tolerance``."""
    from ..deploy import OnnxPredictor, max_logit_difference
    from ..train import load_checkpoint

    onnx_path, ckpt = folder / ONNX_FILE, folder / CHECKPOINT_FILE
    for path in (onnx_path, ckpt):
        if not path.is_file():
            raise CheckFailed(f"{path} does not exist")
    model = load_checkpoint(ckpt).model
    size = int(_section(folder, "data").get("size", [64])[0])
    diffs = max_logit_difference(model, OnnxPredictor(onnx_path, threads=1), [(size, size), (size + 3, size + 5)])
    worst = max(diffs.values())
    if not worst <= tolerance:
        raise CheckFailed(f"{ONNX_FILE} differs from {CHECKPOINT_FILE} by up to {worst:.2e} in the logits, expected "
                    f"<= {tolerance:.0e} (was it exported from this checkpoint?)")
    return f"max |ONNX Runtime - PyTorch| = {worst:.2e} <= {tolerance:.0e} on {', '.join(f'{h}x{w}' for h, w in diffs)}"


@_rubric("served model")
def check_service(folder: Path, timeout: float = 90) -> str:
    """The lesson 10 service on ``model.onnx`` answers ``POST /predict`` with the in-process ONNX mask."""
    import httpx
    from PIL import Image

    from ..deploy.load import ServiceProcess
    from ..deploy.service import load_predictor, predict_mask

    onnx_path, sample = folder / ONNX_FILE, folder / SAMPLE_FILE
    for path in (onnx_path, sample):
        if not path.is_file():
            raise CheckFailed(f"{path} does not exist")
    data = sample.read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        pixels = np.asarray(image.convert("RGB"))
    local = predict_mask(load_predictor(onnx_path, threads=1), pixels)
    with ServiceProcess(onnx_path, "--workers", "1", timeout=timeout) as service:   # stopped on leaving, always
        reply = httpx.post(service.url + ROUTE, files={"file": (SAMPLE_FILE, data, "image/png")}, timeout=timeout)
    if reply.status_code != 200:
        raise CheckFailed(f"POST {ROUTE} answered {reply.status_code}: {reply.text[:200]}")
    with Image.open(io.BytesIO(reply.content)) as answer:
        served = np.asarray(answer)
    if served.shape != local.shape:
        raise CheckFailed(f"the served mask is {served.shape}, the sample image {local.shape}")
    differ = int((served != local).sum())
    if differ:
        raise CheckFailed(f"the served mask differs from the in-process ONNX prediction in {differ} pixels")
    return f"POST {ROUTE} {SAMPLE_FILE}: 200, mask {served.shape[0]}x{served.shape[1]} equal to the ONNX predictor's"


#: The rubric in order (what :func:`grade` runs).
CHECKS = (check_split, check_cross_validation, check_report, check_per_class_and_boundary, check_test_target,
          check_onnx_parity, check_service)


def format_table(results: list[CheckResult]) -> str:
    """The verdicts as a fixed-width table, one line per rubric item, and a last line with the total."""
    width = max(len(r.name) for r in results)
    lines = [f"{'rubric item':{width}}  result  detail"]
    lines += [f"{r.name:{width}}  {'pass' if r.passed else 'FAIL':6}  {r.message}" for r in results]
    passed = sum(r.passed for r in results)
    lines.append(f"{passed} of {len(results)} rubric items passed")
    return "\n".join(lines)


def grade(folder: str | os.PathLike, wanted: Mapping[str, float] | None = None, *, serve: bool = True,
          log: Callable[[str], None] | None = print) -> list[CheckResult]:
    """Run every rubric check on the report ``folder`` and print the table.

    Args:
        folder: a report folder (:func:`~segcourse.capstone.report.write_report`).
        wanted: test targets (default :func:`targets` of the current mode).
        serve: run the served-model check (starts the service in a subprocess for a few seconds).
        log: where the table goes (``None``: nowhere).

    Returns:
        One :class:`CheckResult` per rubric item, in rubric order; ``all(results)`` when every one passed.
    """
    results = []
    for check in CHECKS:
        if check is check_test_target:
            results.append(check(folder, wanted))
        elif check is check_service and not serve:
            results.append(CheckResult("served model", False, "not run (serve=False)"))
        else:
            results.append(check(folder))
    if log is not None:
        log(format_table(results))
    return results
