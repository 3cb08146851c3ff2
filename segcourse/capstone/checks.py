"""The capstone's rubric, as code: one ``check_*`` per deliverable, :data:`POINTS`, and :func:`grade`.

Each check takes a report folder (see :mod:`segcourse.capstone.report`) and returns a
:class:`~segcourse.checking.CheckResult` (name, passed, a message naming the file or value and what was expected);
a check never raises: whatever goes wrong inside it is its failure message.

**The rubric recomputes what it grades.** The test scores are not read from the learner's ``results.json`` (a
file anyone can edit): the grader regenerates the brief's test images (:func:`segcourse.capstone.task.test_data`,
deterministic from the data set's seeds, never taken from the folder), runs the delivered ``model.onnx`` on
them, scores it, scores the Otsu baseline on the same images, and judges the targets (baseline + margin) on those
numbers; the reported numbers must agree with them. The split and the fold summary are recomputed from their
parts, the ONNX file is compared with the checkpoint again, and the served model is started again from the
folder's ONNX file and asked for a mask. One part is not a script's to judge: the written interpretation of
the errors is graded by the instructor (the script checks only that it is there).

======================  ======  ===============================================================================
rubric item             points  passes when
======================  ======  ===============================================================================
split                   10      k >= 2 non-empty validation folds partitioning the pool, by a named scheme
                                (``shuffled``, ``blocks``, ``groups``); a volume (ISBI 2012) needs ``blocks``
                                or ``groups``
cross-validation        15      k folds recorded, each with every metric, finite, in [0, 1]; the summary's mean
                                and standard deviation equal those recomputed from the folds
report                  10      ``report.md`` has every section, and every figure it links exists and is a PNG
                                (the per-fold, example and served-vs-eager figures among them)
per-class and boundary  10      the grader's own test scores of ``model.onnx``: IoU and Dice for every class,
                                Boundary IoU, HD95; the reported ones equal them within :data:`AGREEMENT`
test target             20      the grader's test scores at least the targets: the Otsu baseline on the same
                                test images plus :data:`segcourse.capstone.task.MARGINS`
ONNX parity             10      ``model.onnx`` matches the checkpoint ``model.safetensors`` in PyTorch within
                                :data:`PARITY_TOLERANCE` on an even and an odd size
served model            10      the lesson 10 service, started on ``model.onnx`` (127.0.0.1, a free port),
                                answers ``POST /predict`` with the sample image's mask, equal to the ONNX one
error analysis          15      graded by the instructor (:data:`ERROR_ANALYSIS_GUIDE`); the script checks that
                                the section is written (at least :data:`MIN_WORDS` words, no placeholder)
======================  ======  ===============================================================================

Total 100 points: 85 given by the script, 15 by the instructor.
"""

from __future__ import annotations

import functools
import io
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checking import CheckFailed, CheckResult
from .report import FIGURES, REPORT, REQUIRED_FIGURES, SECTIONS, read_results

#: Largest |ONNX Runtime - PyTorch| logit difference accepted.
PARITY_TOLERANCE = 1e-4
#: Largest difference accepted between a reported test score and the grader's (another CPU may flip a few pixels).
AGREEMENT = 0.005
ONNX_FILE, CHECKPOINT_FILE, SAMPLE_FILE = "model.onnx", "model.safetensors", "sample.png"
ROUTE = "/predict"
#: Points per rubric item (total 100); the last one is the instructor's.
POINTS = {"split": 10, "cross-validation": 15, "report": 10, "per-class and boundary": 10, "test target": 20,
          "ONNX parity": 10, "served model": 10, "error analysis": 15}
#: The rubric items graded by a person, not by this module.
BY_INSTRUCTOR = ("error analysis",)
#: Fewest words the error analysis must have before it is worth an instructor's reading.
MIN_WORDS = 60
#: What the instructor grades in the error analysis (the brief prints it).
ERROR_ANALYSIS_GUIDE = ("where the errors are (outlines, touching nuclei, dim or small nuclei, dust), read from the "
                        "figures and the per-image scores; whether the masks are too large or too small; what the "
                        "model does that the baseline does not, and where it is still no better; one change that "
                        "would help, and how cross-validation (not the test set) would decide it")
_PLACEHOLDER = re.compile(r"\bTODO\b|\bTBD\b|lorem ipsum", re.IGNORECASE)
_VOLUMES = ("isbi2012",)


@dataclass
class RubricResult(CheckResult):
    """A rubric item's verdict with its points: ``earned`` of ``points``; ``by`` is ``"script"`` or ``"instructor"``
    (an instructor's item passes when it is there to grade, and earns nothing until graded)."""

    points: int = 0
    earned: int = 0
    by: str = "script"


def targets(mode: str | None = None) -> dict[str, float]:
    """The test targets of ``mode`` (default: the current mode): the baseline's scores on the brief's test images
    plus :data:`~segcourse.capstone.task.MARGINS` (none in smoke mode)."""
    from . import task

    return task.targets(task.baseline(*task.test_data(mode)), mode)


def _rubric(name: str) -> Callable:
    """Turn ``fn(folder, ...) -> str`` (the pass message; raise :class:`CheckFailed` or anything to fail) into a check
    returning a :class:`RubricResult` with the item's :data:`POINTS`."""
    def wrap(fn):
        points, by = POINTS[name], "instructor" if name in BY_INSTRUCTOR else "script"

        def result(passed: bool, message: str) -> RubricResult:
            earned = points if passed and by == "script" else 0
            return RubricResult(name, passed, message, points=points, earned=earned, by=by)

        @functools.wraps(fn)
        def check(folder, *args, **kwargs) -> RubricResult:
            try:
                return result(True, fn(Path(folder), *args, **kwargs))
            except CheckFailed as err:
                return result(False, str(err))
            except Exception as err:  # noqa: BLE001 - a broken deliverable is a failed check, never a crash
                return result(False, f"{type(err).__name__}: {err}")
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
    """k >= 2 non-empty validation folds partition the pool, by a scheme that fits the data.

    The pool is ``0 .. n-1`` (the brief fixes the test images); a split that also lists a ``test`` part of
    the ``n`` images (:func:`~segcourse.capstone.crossval.make_split`) must hold it out: ``test + pool`` is each
    image once.
    """
    from .crossval import SCHEMES

    split = _section(folder, "split")
    try:
        n, k, folds = int(split["n"]), int(split["k"]), [list(f) for f in split["folds"]]
        test, pool = list(split.get("test", [])), list(split.get("pool", range(n)))
    except (KeyError, TypeError, ValueError) as err:
        raise CheckFailed(f"results.json split needs n, k and folds (crossval.make_folds writes them): {err}") from None
    scheme = split.get("scheme", "shuffled")
    if scheme not in SCHEMES:
        raise CheckFailed(f"split: scheme is {scheme!r}; name how the folds were made, one of {', '.join(SCHEMES)} "
                          "(crossval.make_folds)")
    dataset = read_results(folder).get("data", {}).get("dataset")
    if dataset in _VOLUMES and scheme == "shuffled":
        raise CheckFailed(f"split: {dataset} is one volume of serial slices, and shuffled folds put a slice's "
                          "neighbours in training (leakage); use scheme 'blocks' (with a gap) or 'groups'")
    if k < 2 or len(folds) != k:
        raise CheckFailed(f"split: k = {k} with {len(folds)} folds listed; expected k >= 2 folds, all listed")
    if set(test) & set(pool):
        raise CheckFailed(f"split: {len(set(test) & set(pool))} images are both in the test part and the CV pool "
                          f"(e.g. {sorted(set(test) & set(pool))[:3]}): the test images must be held out")
    everything = sorted(test + pool)
    if everything != list(range(n)):
        raise CheckFailed(f"split: test + pool have {len(everything)} entries ({len(set(everything))} distinct), "
                          f"expected each of the {n} images once")
    if any(not f for f in folds):
        raise CheckFailed("split: a validation fold is empty")
    in_folds = sorted(i for f in folds for i in f)
    if in_folds != sorted(pool):
        counts = {i: sum(i in f for f in folds) for i in pool}
        bad = [i for i, c in counts.items() if c != 1][:3]
        raise CheckFailed(f"split: the validation folds do not partition the pool of {len(pool)} images: images {bad} "
                          f"are in {[counts[i] for i in bad]} folds (expected exactly one each)")
    for j, train in enumerate(split.get("train") or []):
        if set(train) & set(folds[j]):
            raise CheckFailed(f"split: fold {j} trains on {len(set(train) & set(folds[j]))} of its own validation "
                              "images")
    held = f"{len(test)} held out + " if test else ""
    return (f"{held}{len(pool)} pool images in {k} {scheme} folds of {'/'.join(str(len(f)) for f in folds)}, every "
            "pool image in exactly one")


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


def _report_text(folder: Path) -> tuple[Path, str]:
    """The delivered ``report.md``: its path and text (``CheckFailed`` when it is missing)."""
    path = folder / REPORT
    if not path.is_file():
        raise CheckFailed(f"{path} does not exist")
    return path, path.read_text(encoding="utf-8")


@_rubric("report")
def check_report(folder: Path) -> str:
    """``report.md`` exists with every section, and every figure it links (the required ones included) exists."""
    path, text = _report_text(folder)
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


def _onnx_model(path: Path):
    """``model.onnx`` as a module ``(N, 3, H, W) -> (N, C, H, W)`` logits (no parameters), for :func:`~.scoring.score`."""
    from torch import nn

    from ..deploy import OnnxPredictor

    class OnnxModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.predictor = OnnxPredictor(path, threads=1)

        def forward(self, images):
            return self.predictor(images)

    return OnnxModel()


def measure(folder: str | os.PathLike, mode: str | None = None) -> dict:
    """The grader's own numbers: ``{"test": scores of model.onnx, "baseline": Otsu's scores, "targets"}`` on the
    brief's test images of ``mode`` (default: the current mode), regenerated here, never read from ``folder``.

    Raises:
        CheckFailed: ``model.onnx`` is missing.
    """
    from . import task
    from .scoring import score

    onnx_path = Path(folder) / ONNX_FILE
    if not onnx_path.is_file():
        raise CheckFailed(f"{onnx_path} does not exist: the test scores are computed from the delivered model")
    images, target = task.test_data(mode)
    base = task.baseline(images, target)
    test = score(_onnx_model(onnx_path), images, target, num_classes=len(task.CLASSES), foreground=task.FOREGROUND)
    return {"test": test, "baseline": base, "targets": task.targets(base, mode)}


def _measured(folder: Path, measured: Mapping | None, mode: str | None) -> Mapping:
    return measured if measured is not None else measure(folder, mode)


@_rubric("per-class and boundary")
def check_per_class_and_boundary(folder: Path, measured: Mapping | None = None, mode: str | None = None) -> str:
    """The grader's test scores of ``model.onnx`` per class and at the boundary; the reported ones agree with them."""
    from . import task

    got = _measured(folder, measured, mode)["test"]
    test = _section(folder, "test")
    classes = _section(folder, "data").get("classes") or []
    if list(classes) != list(task.CLASSES):
        raise CheckFailed(f"results.json data classes are {classes!r}, expected {list(task.CLASSES)} (the brief's data)")
    for key in ("iou_per_class", "dice_per_class"):
        reported = test.get(key)
        if not isinstance(reported, list) or len(reported) != len(classes):
            raise CheckFailed(f"test: expected {key} with one value per class ({len(classes)}: {', '.join(classes)})")
        for name, r, g in zip(classes, reported, got[key]):
            r = _finite_unit(r, f"reported test {key} of {name}")
            if abs(r - g) > AGREEMENT:
                raise CheckFailed(f"test: reported {key} of {name} is {r:.4f}, but model.onnx scores {g:.4f} on the "
                                  f"brief's test images (accepted difference {AGREEMENT})")
    for key in ("boundary_iou", "hd95"):
        r = test.get(key)
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r):
            raise CheckFailed(f"test {key} is {r!r}, expected a finite number")
        tolerance = AGREEMENT if key == "boundary_iou" else max(AGREEMENT * 100, 0.5)
        if abs(r - got[key]) > tolerance:
            raise CheckFailed(f"test: reported {key} is {r:.4f}, but model.onnx gives {got[key]:.4f} on the brief's "
                              f"test images (accepted difference {tolerance})")
    return (", ".join(f"{n} IoU {i:.4f}" for n, i in zip(classes, got["iou_per_class"]))
            + f"; Boundary IoU {got['boundary_iou']:.4f}, HD95 {got['hd95']:.2f} px (recomputed from model.onnx on "
            f"{got['images']} test images; the report agrees)")


@_rubric("test target")
def check_test_target(folder: Path, wanted: Mapping[str, float] | None = None, measured: Mapping | None = None,
                      mode: str | None = None) -> str:
    """The grader's test scores of ``model.onnx`` at least the targets (default: the Otsu baseline + margins)."""
    got = _measured(folder, measured, mode)
    wanted = dict(wanted) if wanted is not None else dict(got["targets"])
    base = got["baseline"]
    shown = []
    for key, target in wanted.items():
        value = float(got["test"][key])
        if not value >= target:
            raise CheckFailed(f"test {key} = {value:.4f} (recomputed from model.onnx), expected >= {target:.4f} "
                              f"(baseline Otsu {base[key]:.4f} + {target - base[key]:.3f})")
        shown.append(f"{key} {value:.4f} >= {target:.4f} (Otsu {base[key]:.4f})")
    return "; ".join(shown) or f"no target in this mode (Otsu: nucleus Dice {base['fg_dice']:.4f})"


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


@_rubric("error analysis")
def check_error_analysis(folder: Path) -> str:
    """The report's written interpretation of the errors is there to grade (the instructor grades it)."""
    path, text = _report_text(folder)
    match = re.search(r"^##\s+Error analysis\s*$(.*?)(?=^##\s|\Z)", text, flags=re.MULTILINE | re.DOTALL)
    if not match:
        raise CheckFailed(f"{path.name} has no section '## Error analysis' (your interpretation of the errors)")
    body = match.group(1)
    if _PLACEHOLDER.search(body):
        raise CheckFailed(f"{path.name}: the error analysis still holds a placeholder ({_PLACEHOLDER.search(body)[0]!r})")
    words = len(re.findall(r"[A-Za-z\u00C0-\u024F\u4e00-\u9fff]+", re.sub(r"!\[[^\]]*\]\([^)]*\)", "", body)))
    if words < MIN_WORDS:
        raise CheckFailed(f"{path.name}: the error analysis has {words} words, expected at least {MIN_WORDS}")
    return f"{words} words written; to be graded by the instructor ({POINTS['error analysis']} points)"


#: The rubric in order (what :func:`grade` runs).
CHECKS = (check_split, check_cross_validation, check_report, check_per_class_and_boundary, check_test_target,
          check_onnx_parity, check_service, check_error_analysis)


def format_table(results: list[CheckResult]) -> str:
    """The verdicts as a fixed-width table, one line per rubric item, and the points at the end."""
    width = max(len(r.name) for r in results)
    lines = [f"{'rubric item':{width}}  result  points  detail"]
    for r in results:
        points, earned, by = getattr(r, "points", 0), getattr(r, "earned", 0), getattr(r, "by", "script")
        shown = f"?/{points}" if by == "instructor" else f"{earned}/{points}"
        verdict = ("to grade" if r.passed else "FAIL") if by == "instructor" else ("pass" if r.passed else "FAIL")
        lines.append(f"{r.name:{width}}  {verdict:8}  {shown:>6}  {r.message}")
    script = [r for r in results if getattr(r, "by", "script") == "script"]
    person = [r for r in results if getattr(r, "by", "script") == "instructor"]
    lines.append(f"{sum(r.passed for r in script)} of {len(script)} script-graded items passed: "
                 f"{sum(getattr(r, 'earned', 0) for r in script)} of {sum(getattr(r, 'points', 0) for r in script)} "
                 "points")
    for r in person:
        lines.append(f"{r.name}: {r.points} points, to be graded by the instructor"
                     + ("" if r.passed else " (nothing to grade yet: it earns 0 as it is)"))
    lines.append(f"total: out of {sum(getattr(r, 'points', 0) for r in results)} points")
    return "\n".join(lines)


def grade(folder: str | os.PathLike, wanted: Mapping[str, float] | None = None, *, serve: bool = True,
          mode: str | None = None, log: Callable[[str], None] | None = print) -> list[RubricResult]:
    """Run every rubric check on the report ``folder`` and print the table.

    The test scores are measured once (:func:`measure`: ``model.onnx`` on the regenerated test images) and shared
    by the two checks that need them.

    Args:
        folder: a report folder (:func:`~segcourse.capstone.report.write_report`); a missing one fails every item.
        wanted: test targets (default: the Otsu baseline + margins of ``mode``).
        serve: run the served-model check (starts the service in a subprocess for a few seconds).
        mode: the mode whose test images and targets apply (default: the current mode; never the folder's).
        log: where the table goes (``None``: nowhere).

    Returns:
        One :class:`RubricResult` per rubric item, in rubric order. The script's part passed when every item
        with ``by == "script"`` passed; the instructor's item passes when there is something to grade.
    """
    folder = Path(folder)
    try:
        measured = measure(folder, mode)
    except Exception as err:  # noqa: BLE001 - the two checks that need it report it
        measured, problem = None, f"{type(err).__name__}: {err}" if not isinstance(err, CheckFailed) else str(err)
    results = []
    for check in CHECKS:
        if check in (check_per_class_and_boundary, check_test_target):
            if measured is None:
                name = check.rubric_name
                results.append(RubricResult(name, False, problem, points=POINTS[name]))
            elif check is check_test_target:
                results.append(check(folder, wanted, measured))
            else:
                results.append(check(folder, measured))
        elif check is check_service and not serve:
            results.append(RubricResult("served model", False, "not run (serve=False)", points=POINTS["served model"]))
        else:
            results.append(check(folder))
    if log is not None:
        missing = "" if folder.is_dir() else (f"{folder} does not exist: nothing has been delivered yet (the report "
                                               "folder is written by write_report)\n")
        log(missing + format_table(results))
    return results


def script_passed(results: list[CheckResult]) -> bool:
    """Whether every script-graded item passed and the instructor's items are there to grade."""
    return all(r.passed for r in results)
