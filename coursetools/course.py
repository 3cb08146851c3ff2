"""``make course``: the instructor's preflight, the quality gate, and storing the solutions' outputs.

Runs every solution notebook headless in the current mode (quick on a CPU, full on a
GPU, unless ``--mode`` or ``$SEGCOURSE_MODE`` says otherwise), and writes

* ``build/course-report.json`` -- the machine's speed; per lesson: seconds, pass/fail, error, key results;
* ``build/course-report.md``   -- the same as a readable table (also printed);
* ``build/executed/*.ipynb``   -- the executed notebooks, to look at what went wrong.

Key results come from :func:`segcourse.teaching.record` calls in the lessons, never from
parsing the notebooks' text. Exit status is non-zero when a lesson failed or, outside
smoke mode, missed a stated quality target.

Before the lessons it measures how fast this machine trains (:func:`coursetools.speed.machine_speed`,
a few seconds) and, from the speed and seconds stored in each solution's stamp, how long the
course should take here; the report shows both beside each lesson's time.

Three more ways to run it:

* ``--store`` (``make solutions``): run in quick mode, also in smoke mode to find the cells whose
  output does not depend on the mode (those ``make test`` compares), and store the quick-mode
  outputs with a stamp in ``solutions/`` (see :mod:`coursetools.stored`); then regenerate the
  learner notebooks. Nothing is written for a lesson that failed, missed a target or shows an error.
* ``--gate`` (CI): also fail when a key result differs from the one stored in the committed
  solution by more than its tolerance (``solutions/tolerances.json``; exact when none is given).
* ``--spread N``: run the course N times with the seeds shifted (``$SEGCOURSE_SEED_OFFSET`` =
  0, 100, 200, ...) and report how far each recorded result moves: the measurement the
  tolerances are set from (``docs/benchmarks.md``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

from segcourse.config import MODES, get_mode
from segcourse.constants import SEED_OFFSET_ENV
from segcourse.files import atomic_path
from segcourse.teaching import results as results_mod

from . import checkout

TOLERANCES_FILE = "tolerances.json"
#: Load average per CPU above which ``--store`` warns that the stored times will be pessimistic.
BUSY_LOAD = 0.5

#: A result without a stated tolerance must agree to this (relative and absolute): deterministic.
EXACT = 1e-9


def lessons(folder: Path, only: list[str] | None = None) -> list[Path]:
    """The solution notebooks in lesson order, optionally only those whose number is in ``only``."""
    paths = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = {o.zfill(2) for o in only}
        unknown = wanted - {p.name[:2] for p in paths}
        if unknown:
            raise ValueError(f"no lesson numbered {', '.join(sorted(unknown))} in {folder}")
        paths = [p for p in paths if p.name[:2] in wanted]
    return paths


def _shown(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_table(entries: list[dict], mode: str) -> str:
    """A Markdown table of the report."""
    has_expected = any(e.get("expected_seconds") is not None for e in entries)
    head = "| lesson | seconds |" + (" expected here |" if has_expected else "") + " status | key results |"
    rows = [head, "| --- | ---: |" + (" ---: |" if has_expected else "") + " --- | --- |"]
    for e in entries:
        results = []
        for r in e["results"]:
            mark = ""
            if "target" in r and mode != "smoke":
                mark = f" ({r['target']}: {'met' if r['met'] else 'MISSED'})"
            if r.get("timing"):
                mark += " (timing: not gated)"
            results.append(f"{r['label']} {_shown(r['value'])}{mark}")
        for d in e.get("drift", []):
            results.append(f"**{d}**")
        status = "pass" if e["ok"] and not e.get("targets_missed") and not e.get("drift") else "FAIL"
        expected = ""
        if has_expected:
            x = e.get("expected_seconds")
            expected = f" {x:.0f} |" if x is not None else " - |"
        rows.append(f"| {e['lesson']} | {e['seconds']:.1f} |{expected} {status} | {'; '.join(results) or '-'} |")
    total = sum(e["seconds"] for e in entries)
    expected_total = ""
    if has_expected:
        xs = [e["expected_seconds"] for e in entries if e.get("expected_seconds") is not None]
        expected_total = f" {sum(xs):.0f} |" if xs else " - |"
    passed = sum(e["ok"] and not e.get("targets_missed") and not e.get("drift") for e in entries)
    rows.append(f"| **total** | {total:.1f} |{expected_total} {passed}/{len(entries)} pass | |")
    return "\n".join(rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lessons", nargs="*", help="lesson numbers to run (default: all), e.g. 03 04")
    parser.add_argument("--mode", choices=MODES, default=None, help="default: auto (full with CUDA, quick otherwise)")
    parser.add_argument("--solutions", type=Path, default=None, help="default: the checkout's solutions/")
    parser.add_argument("--notebooks", type=Path, default=None,
                        help="where --store regenerates the learner notebooks (default: the checkout's notebooks/)")
    parser.add_argument("--out", type=Path, default=None, help="default: the checkout's build/")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds any one cell may take")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--store", action="store_true",
                        help="store the quick-mode outputs (and stamps) in the solution notebooks")
    action.add_argument("--gate", action="store_true",
                        help="also fail when a key result drifted from the committed solutions beyond its tolerance")
    action.add_argument("--spread", type=int, metavar="N", default=None,
                        help="run N times with shifted seeds and report how far each result moves")
    parser.add_argument("--speed-seconds", type=float, default=4.0,
                        help="seconds spent measuring the machine's training speed first (0: skip)")


# --------------------------------------------------------------------------- gate


def load_tolerances(solutions: Path) -> dict[str, dict[str, float]]:
    """``{lesson stem: {result key: absolute tolerance}}`` from ``solutions/tolerances.json``.

    Raises:
        ValueError: the file is not a mapping of lessons to mappings of keys to numbers >= 0.
    """
    path = Path(solutions) / TOLERANCES_FILE
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    lessons_part = data.get("lessons") if isinstance(data, dict) else None
    if not isinstance(lessons_part, dict):
        raise ValueError(f"{path}: expected {{\"lessons\": {{lesson: {{key: tolerance}}}}}} (and an optional \"about\")")  # noqa: TRY004 - bad file content
    for lesson, table in lessons_part.items():
        if not isinstance(table, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in table.values()):
            raise ValueError(f"{path}: lesson {lesson!r} must map result keys to tolerances >= 0, got {table!r}")
    return {lesson: {k: float(v) for k, v in table.items()} for lesson, table in lessons_part.items()}


def drift(stored: list[dict], today: list[dict], tolerances: dict[str, float]) -> list[str]:
    """How today's key results differ from the stored ones beyond their tolerances (empty: none do).

    A numeric result with a tolerance may move by that much; one without must agree to 1e-9
    (deterministic); strings and booleans must be equal. A result recorded on one side only is drift too.
    A result recorded with ``timing=True`` (a latency, a throughput) is never compared: it measures
    the machine and whatever else runs on it, not the lesson.
    """
    problems = []
    old = {r["key"]: r for r in stored}
    new = {r["key"]: r for r in today}
    for key in old.keys() - new.keys():
        problems.append(f"{key}: stored in the solution but not recorded today")
    for key in new.keys() - old.keys():
        problems.append(f"{key}: recorded today but not stored in the solution (re-store it)")
    for key in sorted(old.keys() & new.keys()):
        if old[key].get("timing") or new[key].get("timing"):
            continue  # a time or speed: it depends on the machine and its load, so it is shown, never gated
        a, b = old[key]["value"], new[key]["value"]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
        if not numeric:
            if a != b:
                problems.append(f"{key}: stored {a!r}, today {b!r}")
            continue
        tol = tolerances.get(key)
        allowed = tol if tol is not None else EXACT * max(1.0, abs(a))
        if math.isnan(a) or math.isnan(b) or abs(a - b) > allowed:
            what = f"tolerance {tol:g}" if tol is not None else "deterministic: exact"
            problems.append(f"{key}: stored {_shown(a)}, today {_shown(b)} (differs by {abs(a - b):.4g}; {what})")
    return problems


# --------------------------------------------------------------------------- running


def _speed(seconds: float) -> float | None:
    if seconds <= 0:
        return None
    from .speed import machine_speed

    return machine_speed(seconds)


def _expected_seconds(stamp: dict | None, speed: float | None) -> float | None:
    """The stamp's seconds scaled by the speed it was stored at over this machine's speed."""
    if not stamp or speed is None or not stamp.get("speed_img_per_s") or stamp.get("seconds") is None:
        return None
    return float(stamp["seconds"]) * float(stamp["speed_img_per_s"]) / speed


def run_lessons(paths: list[Path], *, mode: str, out: Path, timeout: int, speed: float | None,
                gate: bool = False, tolerances: dict | None = None, log=print) -> list[dict]:
    """Execute each lesson, collect its results, and (``gate``) compare them with the stored ones."""
    import nbformat

    from .execute import execute_notebook
    from .stored import stamp_of

    entries = []
    for path in paths:
        stamp = stamp_of(nbformat.read(path, as_version=4))
        expected = _expected_seconds(stamp, speed)
        report_file = out / "results" / f"{path.stem}.json"
        report_file.parent.mkdir(parents=True, exist_ok=True)
        report_file.unlink(missing_ok=True)
        log(f"  {path.name} ..." + (f" (expected here: {expected:.0f} s)" if expected is not None else ""), end=" ",
            flush=True)
        result = execute_notebook(path, mode=mode, report=report_file, timeout=timeout,
                                  write_to=out / "executed" / path.name)
        results = results_mod.read(report_file)
        missed = [r["key"] for r in results if mode != "smoke" and r.get("met") is False]
        drifted = []
        if gate and result.ok:
            if stamp is None:
                drifted = ["no stamp in the committed solution: nothing to compare with"]
            else:
                drifted = drift(stamp.get("results", []), results, (tolerances or {}).get(path.stem, {}))
        entries.append({"lesson": path.stem, "seconds": round(result.seconds, 1), "ok": result.ok,
                        "error": result.error, "results": results, "targets_missed": missed, "drift": drifted,
                        "expected_seconds": None if expected is None else round(expected, 1),
                        "notebook": result.notebook if result.ok else None})
        status = "ok" if result.ok else "FAILED"
        extra = (f" (missed: {', '.join(missed)})" if missed else "") + (" (drift)" if drifted else "")
        log(f"{result.seconds:.1f} s {status}{extra}", flush=True)
        if result.error:
            log("      " + result.error.replace("\n", "\n      "), flush=True)
        for line in drifted:
            log(f"      drift: {line}", flush=True)
    return entries


def store_lesson(path: Path, entry: dict, *, timeout: int, speed: float | None, notebooks: Path, log=print,
                 load: float | None = None) -> bool:
    """Store the quick-mode outputs of ``entry`` (a :func:`run_lessons` entry) in ``path``, with its stamp.

    Runs the lesson once more in smoke mode to decide which cells ``make test`` compares. Writes
    nothing (and returns ``False``) when the lesson failed, missed a target, or shows a forbidden output.
    """
    import nbformat

    from .execute import execute_notebook
    from .learner import build as build_learner
    from .stored import make_stamp, mode_independent_cells, output_problems, sanitize_patterns, set_compared_cells

    if not entry["ok"] or entry["targets_missed"]:
        log(f"  {path.name}: not stored (the quick-mode run {'failed' if not entry['ok'] else 'missed a target'})")
        return False
    executed = entry["notebook"]
    smoke = execute_notebook(path, mode="smoke", timeout=timeout)
    if not smoke.ok:
        log(f"  {path.name}: not stored: the smoke-mode run (which decides the compared cells) failed:\n"
            f"      {smoke.error}")
        return False
    gained, lost = set_compared_cells(executed, mode_independent_cells(executed, smoke.notebook, sanitize_patterns()))
    for cell in executed.cells:
        cell.metadata.pop("execution", None)
    problems = output_problems(executed)
    if problems:
        log(f"  {path.name}: not stored: its outputs show what a solution may not show:")
        for line in problems:
            log(f"      {line}")
        return False
    executed.metadata["segcourse"] = make_stamp(executed, seconds=entry["seconds"], results=entry["results"],
                                                speed=speed, load_per_cpu=load)
    with atomic_path(path) as tmp:
        nbformat.write(executed, tmp)
    stamp = executed.metadata["segcourse"]
    log(f"  {path.name}: stored ({stamp['seconds']} s, {stamp['compared_cells']} compared cells"
        + (f"; now compared: cells {gained}" if gained else "") + (f"; NO LONGER compared: cells {lost}" if lost else "")
        + ")")
    build_learner([path.stem], solutions=path.parent, notebooks=notebooks, log=lambda m: log(f"    {m}"))
    return True


def _header(mode: str, speed: float | None, log=print) -> None:
    import torch

    log(f"Running the course in {mode} mode ({platform.node()}, Python {platform.python_version()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads)", flush=True)
    if speed is not None:
        log(f"Machine speed: {speed:.1f} images/s (U-Net training step, 96 x 96, batch 8, CPU fp32; "
            f"a quiet fast 2-core machine gives about 70)", flush=True)


def needed_backbones(paths: list[Path]) -> list[str]:
    """The course backbones the lessons ``paths`` load (``course_backbone("NAME")`` in a code cell), in order."""
    import re

    import nbformat

    names: list[str] = []
    for path in paths:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                names += [n for n in re.findall(r"course_backbone\(\s*[\"'](\w+)[\"']", cell.source) if n not in names]
    return names


def build_backbones(names: list[str], mode: str, log=print) -> list[dict]:
    """Pre-train the course backbones ``names`` of ``mode`` that are not cached yet (:mod:`segcourse.train.course_backbones`).

    Returns one entry per encoder: ``{"name", "seconds"}`` (the time spent now: 0 when it was cached) and
    ``"build_seconds"`` (what building it took, from its cached file).
    """
    from segcourse.train.checkpoint import read_file
    from segcourse.train.course_backbones import backbone_path, build_course_backbone

    entries = []
    for name in names:
        start = time.perf_counter()
        cached = backbone_path(name, mode).exists()
        path = build_course_backbone(name, mode, log=lambda m: log(f"  {m}", flush=True))
        seconds = time.perf_counter() - start
        built = read_file(path)[1].get("config", {}).get("seconds")
        log(f"  course backbone {name}: " + (f"cached (built in {built} s)" if cached else f"built in {seconds:.1f} s"),
            flush=True)
        entries.append({"name": name, "seconds": round(seconds, 1) if not cached else 0.0, "build_seconds": built})
    return entries


def _summary(entries: list[dict], mode: str, speed: float | None, backbones: list[dict] | None = None) -> dict:
    import torch

    backbones = backbones or []
    return {"mode": mode, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "python": sys.version.split()[0],
            "machine": platform.platform(), "torch": torch.__version__,
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            "cpu_threads": torch.get_num_threads(), "speed_img_per_s": None if speed is None else round(speed, 1),
            "total_seconds": round(sum(e["seconds"] for e in entries) + sum(b["seconds"] for b in backbones), 1),
            "backbones": backbones,
            "lessons": [{k: v for k, v in e.items() if k != "notebook"} for e in entries]}


def run(args: argparse.Namespace) -> int:
    mode = args.mode or ("quick" if args.store else get_mode())
    if args.store and mode != "quick":
        print(f"--store stores quick-mode outputs only (the course's stored mode), not {mode!r}", file=sys.stderr)
        return 2
    if None in (args.solutions, args.notebooks, args.out):
        root = checkout.root()
        args.solutions = root / "solutions" if args.solutions is None else args.solutions
        args.notebooks = root / "notebooks" if args.notebooks is None else args.notebooks
        args.out = root / "build" if args.out is None else args.out
    paths = lessons(args.solutions, args.lessons)
    out: Path = args.out
    (out / "executed").mkdir(parents=True, exist_ok=True)
    from .speed import load_average

    load = load_average()  # before our own measuring adds to it
    speed = _speed(args.speed_seconds)
    _header(mode, speed)
    if load is not None:
        print(f"Load average before starting: {load:.2f} per CPU", flush=True)
        if args.store and load > BUSY_LOAD:
            print(f"WARNING: other work is using this machine (load {load:.2f} per CPU): the stored seconds and "
                  "speed will be pessimistic, and a lesson's time budget may cut its training short. Store on a "
                  "quiet machine.", flush=True)
    names = needed_backbones(paths)
    if names:
        print(f"Course backbones the lessons start from ({', '.join(names)}; pre-trained once, cached):", flush=True)
    backbones = build_backbones(names, mode)
    if args.spread is not None:
        return run_spread(paths, args.spread, mode=mode, out=out, timeout=args.timeout, speed=speed)
    expected = [_expected_seconds(_stamp(p), speed) for p in paths]
    if speed is not None and all(x is not None for x in expected):
        print(f"Expected time on this machine, from the stored runs: {sum(expected):.0f} s", flush=True)
    tolerances = load_tolerances(args.solutions) if args.gate else None
    entries = run_lessons(paths, mode=mode, out=out, timeout=args.timeout, speed=speed, gate=args.gate,
                          tolerances=tolerances)
    stored_ok = True
    if args.store:
        print("Storing the quick-mode outputs:", flush=True)
        for path, entry in zip(paths, entries):
            stored_ok &= store_lesson(path, entry, timeout=args.timeout, speed=speed, notebooks=args.notebooks,
                                      load=load)
    summary = _summary(entries, mode, speed, backbones)
    (out / "course-report.json").write_text(json.dumps(summary, indent=2))
    table = format_table(entries, mode)
    if backbones:
        built = sum(b["seconds"] for b in backbones)
        table += (f"\n\nCourse backbones: {built:.1f} s now" if built else "\n\nCourse backbones: cached") + \
            f" (building them takes {sum(b['build_seconds'] or 0 for b in backbones):.0f} s on the machine that built them)."
    speed_line = f"Machine speed: {speed:.1f} images/s.\n\n" if speed is not None else ""
    (out / "course-report.md").write_text(f"# Course report ({mode} mode)\n\n{speed_line}{table}\n")
    print()
    print(table)
    print(f"\nwritten: {out / 'course-report.json'}, {out / 'course-report.md'}")
    bad = [e for e in entries if not e["ok"] or e["targets_missed"] or e["drift"]]
    return 1 if bad or not stored_ok else 0


def _stamp(path: Path) -> dict | None:
    import nbformat

    from .stored import stamp_of

    return stamp_of(nbformat.read(path, as_version=4))


# --------------------------------------------------------------------------- spread


def run_spread(paths: list[Path], n: int, *, mode: str, out: Path, timeout: int, speed: float | None) -> int:
    """Run the lessons ``n`` times with seed offsets 0, 100, ...; write ``build/spread.{json,md}``."""
    if n < 2:
        print("--spread needs at least 2 runs", file=sys.stderr)
        return 2
    runs: list[list[dict]] = []
    old = os.environ.get(SEED_OFFSET_ENV)
    try:
        for i in range(n):
            os.environ[SEED_OFFSET_ENV] = str(100 * i)
            print(f"Run {i + 1}/{n} (seed offset {100 * i}):", flush=True)
            runs.append(run_lessons(paths, mode=mode, out=out / f"spread-{i}", timeout=timeout, speed=speed))
    finally:
        if old is None:
            os.environ.pop(SEED_OFFSET_ENV, None)
        else:
            os.environ[SEED_OFFSET_ENV] = old
    table = spread_table(runs)
    (out / "spread.json").write_text(json.dumps(table, indent=2))
    md = format_spread(table, n)
    (out / "spread.md").write_text(md + "\n")
    print()
    print(md)
    failed = [e["lesson"] for run in runs for e in run if not e["ok"]]
    return 1 if failed else 0


def spread_table(runs: list[list[dict]]) -> list[dict]:
    """Per lesson and numeric result: the values of every run, their range and seconds per run."""
    rows = []
    for lesson_runs in zip(*runs):
        lesson = lesson_runs[0]["lesson"]
        keys = [r["key"] for r in lesson_runs[0]["results"]]
        for key in keys:
            values = []
            for entry in lesson_runs:
                match = [r["value"] for r in entry["results"] if r["key"] == key]
                values.append(match[0] if match else None)
            numeric = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            label = next(r["label"] for r in lesson_runs[0]["results"] if r["key"] == key)
            rows.append({"lesson": lesson, "key": key, "label": label, "values": values,
                         "range": (max(numeric) - min(numeric)) if len(numeric) == len(values) else None,
                         "seconds": [e["seconds"] for e in lesson_runs]})
    return rows


def format_spread(rows: list[dict], n: int) -> str:
    lines = [f"| lesson | result | {' | '.join(f'run {i + 1}' for i in range(n))} | range |",
             "| --- | --- |" + " ---: |" * (n + 1)]
    for r in rows:
        vals = " | ".join(_shown(v) if v is not None else "-" for v in r["values"])
        rng = f"{r['range']:.4f}" if r["range"] is not None else "-"
        lines.append(f"| {r['lesson']} | {r['key']} | {vals} | {rng} |")
    return "\n".join(lines)
