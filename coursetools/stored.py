"""Stored outputs of the solution notebooks: stamps, compared cells and what may never be shown.

Used by ``python -m coursetools course --store`` (``make solutions``) and the tests.

The solution notebooks carry the outputs of a real **quick-mode** run, so that a learner
reading them on a code host sees what the course produces on a laptop. Each one carries a
stamp in its metadata (``metadata["segcourse"]``)::

    {"mode": "quick", "source_hash": "sha256:...", "seconds": 97.3, "python": "3.11.7",
     "torch": "2.14.1", "machine": "...", "speed_img_per_s": 61.2, "load_per_cpu": 0.05,
     "stored": "2026-12-01T10:02:11", "results": [{"key": "unet_dice", "value": 0.96, ...}], "compared_cells": 23}

``source_hash`` covers every cell's type and source (not outputs, not metadata), so editing
any cell without re-storing is caught by ``tests/coursetools/test_stored_outputs.py``. ``speed_img_per_s``
(:func:`coursetools.speed.machine_speed`) and ``load_per_cpu`` (the load average before the run)
say how fast and how busy the machine was, so the course runner can scale ``seconds`` to another machine.

**Which outputs ``make test`` compares.** ``make test`` runs every notebook in *smoke* mode and
nbval compares it with the stored *quick*-mode outputs, so only outputs that do not depend on
the mode can be compared (formulas, shapes, fixed data, error messages). nbval runs in lax mode
and compares the cells tagged ``nbval-check-output``. The tags are not chosen by hand: when a
notebook is stored, it is also run in smoke mode, and every code cell whose sanitized text output
is identical in both runs (and is more than a figure's ``<Figure size ...>`` line) is tagged. The
store command prints the cells that gained or lost the tag, so a maintainer sees a formerly
deterministic output that became mode-dependent.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path

#: The (regex, replacement) pairs nbval applies before comparing outputs: ``make test`` passes the same file
#: to nbval (``--nbval-sanitize-with coursetools/nbval_sanitize.cfg``).
SANITIZE_FILE = Path(__file__).with_name("nbval_sanitize.cfg")

#: Notebook metadata key of the stamp.
STAMP_KEY = "segcourse"
#: The nbval tag of a cell whose output ``make test`` compares.
CHECK_TAG = "nbval-check-output"
#: Tags that the compared-cells policy replaces (hand-chosen before, now derived).
#: The mode whose outputs are stored.
STORED_MODE = "quick"

#: Output keys nbval never compares (as in nbval, plus images: we run without nbdime).
_SKIP_KEYS = {"metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
              "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg"}
_FIGURE_REPR = re.compile(r"^<Figure size [0-9.]+x[0-9.]+ with \d+ Axes>$")

#: What a stored output may never show, line by line: (pattern, what it means).
FORBIDDEN = [
    (re.compile(r"\[FAIL\]"), "a failed environment check line"),
    (re.compile(r"environment check passed: False"), "a failed environment check"),
    (re.compile(r"\bMISSED\)"), "a missed quality target"),
    (re.compile(r"\bfailed ✗"), "a failed exercise check"),
    (re.compile(r"\bnot attempted\b"), "an exercise left unsolved"),
    (re.compile(r"^Traceback \(most recent call last\)"), "a traceback"),
]
#: A cell tagged so is *meant* to show a failing check (lesson 00 demonstrates the verdicts).
SHOWS_FAILURE_TAG = "shows-failing-check"


def source_hash(nb) -> str:
    """``sha256:<hex>`` of every cell's type and source, in order."""
    cells = [[cell.get("cell_type"), _text(cell.get("source", ""))] for cell in nb["cells"]]
    digest = hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode("utf-8")).hexdigest()
    return f"sha256:{digest}"


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def sanitize_patterns(path: Path = SANITIZE_FILE) -> list[tuple[str, str]]:
    """The (regex, replacement) pairs that nbval applies with ``--nbval-sanitize-with``."""
    from nbval.plugin import get_sanitize_patterns  # a test dependency: only storing needs it

    return get_sanitize_patterns(Path(path).read_text())


def comparable_outputs(cell, patterns: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """What nbval would compare of a code cell: ``(key, sanitized text)`` pairs, streams merged.

    Images, metadata and execution counts are left out, as nbval does without nbdime.
    """
    patterns = list(patterns)

    def clean(text: str) -> str:
        for regex, replace in patterns:
            text = re.sub(regex, replace, text)
        return text

    pairs: list[tuple[str, str]] = []
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "stream":
            name, text = output.get("name", "stdout"), clean(_text(output.get("text", "")))
            if pairs and pairs[-1][0] == name:
                pairs[-1] = (name, pairs[-1][1] + text)
            else:
                pairs.append((name, text))
        elif kind in ("execute_result", "display_data"):
            for key, value in output.get("data", {}).items():
                if key not in _SKIP_KEYS:
                    pairs.append((key, clean(_text(value))))
        elif kind == "error":
            pairs.append(("error", f"{output.get('ename')}: {output.get('evalue')}"))
    return pairs


def _is_trivial(pairs: list[tuple[str, str]]) -> bool:
    """Nothing worth comparing: no output, or only figure placeholders."""
    return all(key == "text/plain" and _FIGURE_REPR.match(text.strip()) for key, text in pairs)


def mode_independent_cells(stored_nb, other_nb, patterns: Iterable[tuple[str, str]]) -> list[int]:
    """Indices of the code cells whose comparable output is the same in both runs (and not trivial).

    Args:
        stored_nb: the notebook executed in the stored mode (quick).
        other_nb: the same notebook (same cells) executed in smoke mode.
    """
    patterns = list(patterns)
    if len(stored_nb["cells"]) != len(other_nb["cells"]):
        raise ValueError("the two runs have different cells; run both from the same notebook")
    same = []
    for i, (a, b) in enumerate(zip(stored_nb["cells"], other_nb["cells"])):
        if a.get("cell_type") != "code":
            continue
        pa, pb = comparable_outputs(a, patterns), comparable_outputs(b, patterns)
        if pa == pb and not _is_trivial(pa):
            same.append(i)
    return same


def set_compared_cells(nb, indices: Iterable[int]) -> tuple[list[int], list[int]]:
    """Tag exactly the code cells ``indices`` with ``nbval-check-output``.

    Returns:
        ``(gained, lost)``: the cell indices that gained and that lost the tag.
    """
    wanted = set(indices)
    gained, lost = [], []
    for i, cell in enumerate(nb["cells"]):
        meta = cell.setdefault("metadata", {})
        tags = meta.get("tags", [])
        had = CHECK_TAG in tags
        tags = [t for t in tags if t != CHECK_TAG]
        if i in wanted:
            tags.append(CHECK_TAG)
            if not had:
                gained.append(i)
        elif had:
            lost.append(i)
        if tags:
            meta["tags"] = tags
        else:
            meta.pop("tags", None)
    return gained, lost


def compared_cells(nb) -> list[int]:
    """Indices of the cells tagged ``nbval-check-output``."""
    return [i for i, c in enumerate(nb["cells"]) if CHECK_TAG in c.get("metadata", {}).get("tags", [])]


def output_problems(nb) -> list[str]:
    """What a stored notebook must never show: errors, failed checks, missed targets.

    Cells tagged ``shows-failing-check`` may show a failed or unattempted exercise verdict
    (the lesson demonstrates one); nothing may show an error, a failed doctor line or a missed target.

    Returns:
        One line per problem, naming the cell index (empty when the outputs are clean).
    """
    problems = []
    for i, cell in enumerate(nb["cells"]):
        allowed = {"a failed exercise check", "an exercise left unsolved"} \
            if SHOWS_FAILURE_TAG in cell.get("metadata", {}).get("tags", []) else set()
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "error":
                problems.append(f"cell {i}: an error output ({output.get('ename')}: {output.get('evalue')})")
                continue
            if kind == "stream":
                texts = [_text(output.get("text", ""))]
            else:
                texts = [_text(v) for k, v in output.get("data", {}).items() if k.startswith("text/")]
            for text in texts:
                for line in text.splitlines():
                    for pattern, meaning in FORBIDDEN:
                        if meaning not in allowed and pattern.search(line):
                            problems.append(f"cell {i}: {meaning}: {line.strip()[:120]}")
    return problems


def stamp_of(nb) -> dict | None:
    """The stamp stored in a notebook's metadata, or ``None``."""
    stamp = nb.get("metadata", {}).get(STAMP_KEY)
    return stamp if isinstance(stamp, dict) else None


def stamp_problem(nb, name: str) -> str | None:
    """Why a solution notebook's stored outputs are not current (``None`` when they are).

    The message names the lesson and the command that re-stores it.
    """
    command = f"`python -m coursetools course --store {name[:2]}` (or `make solutions LESSONS={name[:2]}`)"
    stamp = stamp_of(nb)
    if stamp is None:
        return f"{name}: no stamp in its metadata: its outputs were not stored by the course runner; run {command}"
    if stamp.get("mode") != STORED_MODE:
        return (f"{name}: its stored outputs come from a {stamp.get('mode')!r}-mode run, not {STORED_MODE!r}; "
                f"run {command}")
    if stamp.get("source_hash") != source_hash(nb):
        return (f"{name}: cells were edited after its outputs were stored (the stamp's source hash does not "
                f"match the cells); run {command}")
    return None


def make_stamp(nb, *, seconds: float, results: list[dict], speed: float | None, mode: str = STORED_MODE,
               load_per_cpu: float | None = None) -> dict:
    """The stamp for a notebook just executed in ``mode`` (see the module docstring)."""
    import platform
    import time

    import torch

    from segcourse.config import MODES

    from .speed import machine_name

    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    return {
        "mode": mode,
        "source_hash": source_hash(nb),
        "seconds": round(float(seconds), 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": machine_name(),
        "speed_img_per_s": None if speed is None else round(float(speed), 1),
        "load_per_cpu": load_per_cpu,
        "stored": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "results": results,
        "compared_cells": len(compared_cells(nb)),
    }
