"""``make course``: the instructor's preflight.

Runs every solution notebook headless in the current mode (quick on a CPU, full on a
GPU, unless ``--mode`` or ``$SEGCOURSE_MODE`` says otherwise), and writes

* ``build/course-report.json`` -- per lesson: seconds, pass/fail, error, key results;
* ``build/course-report.md``   -- the same as a readable table (also printed);
* ``build/executed/*.ipynb``   -- the executed notebooks, to look at what went wrong.

Key results come from :func:`segcourse.report.record` calls in the lessons, never from
parsing the notebooks' text. Exit status is non-zero when a lesson failed or, outside
smoke mode, missed a stated quality target.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from . import report as report_mod
from .config import MODES, get_mode

ROOT = Path(__file__).resolve().parent.parent


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


def format_table(entries: list[dict], mode: str) -> str:
    """A Markdown table of the report."""
    rows = ["| lesson | seconds | status | key results |", "| --- | ---: | --- | --- |"]
    for e in entries:
        results = []
        for r in e["results"]:
            value = r["value"]
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            mark = ""
            if "target" in r and mode != "smoke":
                mark = f" ({r['target']}: {'met' if r['met'] else 'MISSED'})"
            results.append(f"{r['label']} {shown}{mark}")
        status = "pass" if e["ok"] else "FAIL"
        rows.append(f"| {e['lesson']} | {e['seconds']:.1f} | {status} | {'; '.join(results) or '-'} |")
    total = sum(e["seconds"] for e in entries)
    rows.append(f"| **total** | {total:.1f} | {sum(e['ok'] for e in entries)}/{len(entries)} pass | |")
    return "\n".join(rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("lessons", nargs="*", help="lesson numbers to run (default: all), e.g. 03 04")
    parser.add_argument("--mode", choices=MODES, default=None, help="default: auto (full with CUDA, quick otherwise)")
    parser.add_argument("--solutions", type=Path, default=ROOT / "solutions")
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds any one cell may take")


def run(args: argparse.Namespace) -> int:
    from .notebooks import execute_notebook

    mode = args.mode or get_mode()
    out: Path = args.out
    (out / "executed").mkdir(parents=True, exist_ok=True)
    entries = []
    print(f"Running the course in {mode} mode ({platform.node()}, Python {platform.python_version()})", flush=True)
    for path in lessons(args.solutions, args.lessons):
        report_file = out / "results" / f"{path.stem}.json"
        report_file.parent.mkdir(parents=True, exist_ok=True)
        report_file.unlink(missing_ok=True)
        print(f"  {path.name} ...", end=" ", flush=True)
        result = execute_notebook(path, mode=mode, report=report_file, timeout=args.timeout,
                                  write_to=out / "executed" / path.name)
        results = report_mod.read(report_file)
        missed = [r["key"] for r in results if mode != "smoke" and r.get("met") is False]
        entries.append({"lesson": path.stem, "seconds": round(result.seconds, 1), "ok": result.ok,
                        "error": result.error, "results": results, "targets_missed": missed})
        print(f"{result.seconds:.1f} s {'ok' if result.ok else 'FAILED'}" + (f" (missed: {', '.join(missed)})" if missed else ""), flush=True)
        if result.error:
            print("      " + result.error.replace("\n", "\n      "), flush=True)
    summary = {"mode": mode, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "python": sys.version.split()[0],
               "machine": platform.platform(), "total_seconds": round(sum(e["seconds"] for e in entries), 1),
               "lessons": entries}
    try:
        import torch

        summary["torch"] = torch.__version__
        summary["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
        summary["cpu_threads"] = torch.get_num_threads()
    except Exception:  # pragma: no cover
        pass
    (out / "course-report.json").write_text(json.dumps(summary, indent=2))
    table = format_table(entries, mode)
    (out / "course-report.md").write_text(f"# Course report ({mode} mode)\n\n{table}\n")
    print()
    print(table)
    print(f"\nwritten: {out / 'course-report.json'}, {out / 'course-report.md'}")
    bad = [e for e in entries if not e["ok"] or e["targets_missed"]]
    return 1 if bad else 0
