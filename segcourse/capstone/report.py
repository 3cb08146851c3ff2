"""The capstone's metrics report: a folder with ``report.md``, ``results.json``, figures and the model.

Layout of a report folder (what :mod:`segcourse.capstone.checks` grades)::

    report/
      report.md            the report a person reads (Markdown; links the figures)
      results.json         the same numbers, machine-readable (schema below); marks the folder as a report
      figures/NAME.png     one PNG per figure (per-fold bars, example predictions, served vs eager)
      model.onnx           ...and any other file handed over (checkpoint, sample image), copied in

``results.json`` (every section a dict; ``write_report`` adds ``kind`` and ``figures``)::

    data     {"dataset", "images", "size": [H, W], "classes": [names], "source"}
    model    {"name", "kwargs", "parameters", "recipe", "final"}
    split    crossval.make_folds(...): {"n", "k", "scheme", "seed", "gap", "pool", "folds", "train"}
             (the test images are the brief's, segcourse.capstone.task.test_data: not part of the split)
    cv       {"metrics": [names], "folds": [{"fold", "train", "val", metric: value, ...}],
              "summary": crossval.summarize(...), "comparison": [sentences]  (optional: vs the baseline, paired)}
    test     {"images", "miou", "fg_dice", "iou_per_class", "dice_per_class", "boundary_iou", "hd95"}
    baseline {"method", "test": scores like test, "targets": {metric: value}}                  (optional)
    error_analysis  the learner's own Markdown text: where the errors are and why              (optional)
    export   {"onnx", "checkpoint", "sizes", "max_logit_difference", "tolerance"}      (optional)
    serving  {"route", "status", "sample", "equal_to_onnx", "pixels_differing_from_eager"}  (optional)

The folder is written atomically: everything goes into a temporary folder beside it, which is renamed
into place at the end, so a run that fails half-way leaves the previous report (or nothing), never a
half-written one. An existing folder is replaced only when it is a report folder (its ``results.json``
says so) or empty; anything else is refused.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

KIND = "segcourse-capstone-report"
REPORT = "report.md"
RESULTS = "results.json"
FIGURES = "figures"
#: The report's sections, in order (``check_report`` requires each heading).
SECTIONS = ("Data", "Model", "Cross-validation", "Test set", "Error analysis", "Export and serving")
#: The figures a complete report shows (``write_report`` takes any others too).
REQUIRED_FIGURES = ("folds", "examples", "served")
REQUIRED_RESULTS = ("data", "model", "split", "cv", "test")


def is_report_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a report written by :func:`write_report` (its ``results.json`` says so)."""
    path = Path(folder) / RESULTS
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("kind") == KIND
    except (OSError, ValueError, AttributeError):
        return False


def read_results(folder: str | os.PathLike) -> dict:
    """The ``results.json`` of a report folder.

    Raises:
        FileNotFoundError: no ``results.json`` in ``folder``.
        ValueError: it is not valid JSON, or not an object.
    """
    path = Path(folder) / RESULTS
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: is {folder} a report folder written by write_report?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(data).__name__}")  # noqa: TRY004 - bad file content
    return data


def _fmt(value: Any, fmt: str = ".4f") -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, float)):
        return "NaN" if isinstance(value, float) and math.isnan(value) else format(value, fmt)
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|",
            *["| " + " | ".join(row) + " |" for row in rows]]


def render_markdown(results: Mapping[str, Any]) -> str:
    """``report.md`` for ``results`` (the schema in the module docstring); figures linked from ``results["figures"]``."""
    from .crossval import format_summary

    data, model, split, cv, test = (results[k] for k in REQUIRED_RESULTS)
    figures = results.get("figures", {})
    classes = list(data.get("classes", []))
    intro = (f"Mode: {results.get('mode', 'unknown')}. Every number below was computed by the run that wrote this "
             "report; `results.json` holds the same numbers.")
    lines = [f"# {results.get('title', 'Capstone report')}", "", intro, ""]

    size = " x ".join(str(s) for s in data.get("size", []))
    fold_sizes = ", ".join(str(len(f)) for f in split["folds"])
    scheme = split.get("scheme", "shuffled")
    how = {"shuffled": f"shuffled, seed {split.get('seed')}", "blocks": f"contiguous blocks, gap {split.get('gap', 0)}",
           "groups": "whole groups per fold"}.get(scheme, str(scheme))
    lines += ["## Data", "",
              (f"* data set: {data.get('dataset')} ({data.get('source', '')}), {data.get('images')} images of {size} "
               f"pixels; classes: {', '.join(classes)}"),
              (f"* held-out test images: {test.get('images')}, the brief's (regenerated by the grader), used once, by "
               "the final model"),
              (f"* cross-validation pool: {split['n']} images in {split['k']} folds of "
               f"{fold_sizes} ({how})"), ""]

    described = f"* {model.get('name')} {json.dumps(model.get('kwargs', {}))}"
    if isinstance(model.get("parameters"), int):
        described += f", {model['parameters']:,} parameters"
    lines += ["## Model", "", described, f"* recipe: {model.get('recipe', '')}",
              f"* final model: {model.get('final', '')}", ""]

    metrics = list(cv["metrics"])
    rows = [[str(f["fold"]), str(f.get("train", "")), str(f.get("val", "")), *[_fmt(f[m]) for m in metrics]]
            for f in cv["folds"]]
    rows.append(["**mean ± std (min–max)**", "", "", *[format_summary(cv["summary"][m], ".4f") for m in metrics]])
    cv_intro = (f"{len(cv['folds'])}-fold cross-validation of the recipe: each fold trained on the other folds and "
                "scored on its own; the standard deviation is the sample one (ddof = 1).")
    lines += ["## Cross-validation", "", cv_intro, "", *_table(["fold", "train images", "val images", *metrics], rows),
              ""]
    for sentence in cv.get("comparison", []):
        lines += [f"* {sentence}"]
    if cv.get("comparison"):
        lines += [""]
    if "folds" in figures:
        lines += [f"![per-fold scores]({figures['folds']})", ""]

    test_intro = (f"The final model on the {test.get('images')} held-out test images (one confusion matrix pooled over "
                  "all their pixels; boundary metrics per image, averaged).")
    overall = [["mIoU", _fmt(test.get("miou"))], ["foreground Dice", _fmt(test.get("fg_dice"))],
               ["Boundary IoU (mean over images)", _fmt(test.get("boundary_iou"))],
               ["HD95 in pixels (mean over images)", _fmt(test.get("hd95"), ".2f")]]
    per_class = [[name, _fmt(iou), _fmt(dice)] for name, iou, dice in
                 zip(classes, test.get("iou_per_class", []), test.get("dice_per_class", []))]
    base = results.get("baseline") or {}
    header = ["metric", "final model"]
    if base.get("test"):
        header += [f"baseline ({base.get('method', 'baseline')})", "target"]
        keys = ["miou", "fg_dice", "boundary_iou", "hd95"]
        wanted = base.get("targets") or {}
        for row, key in zip(overall, keys):
            row += [_fmt(base["test"].get(key), ".2f" if key == "hd95" else ".4f"),
                    f">= {_fmt(wanted[key])}" if key in wanted else "-"]
    lines += ["## Test set", "", test_intro, "", *_table(header, overall), "", "Per class:", "",
              *_table(["class", "IoU", "Dice"], per_class), ""]
    if "examples" in figures:
        lines += [f"![example predictions]({figures['examples']})", ""]

    lines += ["## Error analysis", "", str(results.get("error_analysis") or "Not written.").strip(), ""]

    lines += ["## Export and serving", ""]
    export, serving = results.get("export"), results.get("serving")
    if export:
        sizes = ", ".join(f"{h} x {w}" for h, w in export.get("sizes", []))
        difference = _fmt(export.get("max_logit_difference"), ".2e")
        lines += [(f"* ONNX file `{export.get('onnx')}` from the checkpoint `{export.get('checkpoint')}`; largest "
                   f"|ONNX Runtime − PyTorch| logit difference on {sizes}: {difference} "
                   f"(tolerance {_fmt(export.get('tolerance'), '.0e')})")]
    else:
        lines += ["* export: not done"]
    if serving:
        onnx_name = export.get("onnx") if export else "?"
        lines += [(f"* the lesson 10 service on `{onnx_name}` answered `POST {serving.get('route')}` with status "
                   f"{serving.get('status')}; its mask equals the in-process ONNX prediction: "
                   f"{serving.get('equal_to_onnx')}; pixels that differ from eager PyTorch: "
                   f"{serving.get('pixels_differing_from_eager')}")]
    else:
        lines += ["* serving: not done"]
    lines += [""]
    if "served" in figures:
        lines += [f"![served vs eager]({figures['served']})", ""]
    return "\n".join(lines)


def _check_target_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is a file, not a report folder; choose another path")
    if folder.is_dir() and any(folder.iterdir()) and not is_report_folder(folder):
        raise FileExistsError(f"{folder} exists and is not a capstone report folder (no {RESULTS} written by "
                              "write_report): refusing to replace it; choose another path or remove it yourself")


def write_report(folder: str | os.PathLike, results: Mapping[str, Any], *, figures: Mapping[str, Any] | None = None,
                 files: Mapping[str, str | os.PathLike] | None = None, dpi: int = 100) -> Path:
    """Write the report folder atomically and return its path.

    Args:
        folder: where the report goes; replaced if it is an earlier report (or empty), refused otherwise.
        results: the numbers (schema in the module docstring); ``data``, ``model``, ``split``, ``cv`` and
            ``test`` are required, ``export`` and ``serving`` reported as "not done" when missing.
        figures: ``{name: matplotlib Figure, or PNG bytes, or a path to a PNG}``, saved as ``figures/NAME.png``.
        files: ``{name in the folder: source path}`` copied in (the ONNX file, the checkpoint, a sample image).
        dpi: resolution of the saved figures.

    Returns:
        ``Path(folder)``.

    Raises:
        FileExistsError: ``folder`` exists and is not a report folder.
        ValueError: a required section of ``results`` is missing, or a name is not a plain file name.
        FileNotFoundError: a file to copy does not exist.
    """
    folder = Path(folder)
    missing = [k for k in REQUIRED_RESULTS if k not in results]
    if missing:
        raise ValueError(f"results is missing the section(s) {', '.join(missing)}; a report needs "
                         f"{', '.join(REQUIRED_RESULTS)}")
    for name in [*(figures or {}), *(files or {})]:
        if not name or Path(name).name != name or name.startswith("."):
            raise ValueError(f"{name!r} is not a plain file name (no folders, no leading dot)")
    for name, src in (files or {}).items():
        if not Path(src).is_file():
            raise FileNotFoundError(f"file {name!r} to copy into the report: {src} does not exist")
    _check_target_folder(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    old = folder.parent / f".{folder.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / FIGURES).mkdir(parents=True)
        linked = {}
        for name, fig in (figures or {}).items():
            path = tmp / FIGURES / f"{name}.png"
            if isinstance(fig, (bytes, bytearray)):
                path.write_bytes(bytes(fig))
            elif isinstance(fig, (str, os.PathLike)):
                shutil.copyfile(fig, path)
            else:
                fig.savefig(path, dpi=dpi, bbox_inches="tight")
            linked[name] = f"{FIGURES}/{name}.png"
        for name, src in (files or {}).items():
            shutil.copyfile(src, tmp / name)
        full = {"kind": KIND, **{k: v for k, v in results.items() if k != "kind"}, "figures": linked}
        (tmp / RESULTS).write_text(json.dumps(full, indent=2, allow_nan=True), encoding="utf-8")
        (tmp / REPORT).write_text(render_markdown(full), encoding="utf-8")
        _check_target_folder(folder)               # nothing appeared there meanwhile
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not folder.exists():
            old.rename(folder)                     # put the previous report back
        raise
    shutil.rmtree(old, ignore_errors=True)
    return folder
