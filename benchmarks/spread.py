"""How far each recorded key result moves between runs: the table behind ``solutions/tolerances.json``.

Run 1 is the quick-mode run stored in the solutions (their stamps); the other runs are course reports
made with the seeds shifted, as another CPU's floating-point path would shift them, for example::

    SEGCOURSE_SEED_OFFSET=100 python -m coursetools course --mode quick --out build/spread-100 03 04 05 06
    SEGCOURSE_SEED_OFFSET=200 python -m coursetools course --mode quick --out build/spread-200 03 04 05 06
    python benchmarks/spread.py build/spread-100 build/spread-200 --tolerances solutions/tolerances.json

(``python -m coursetools course --spread 3`` does the same in one command, sequentially.) It prints a
Markdown table (every run's value and the range) and, with ``--tolerances``, writes one tolerance per
result that moved (for the lessons the reports cover; the file's other lessons are kept): ``max(2 * range, floor)`` rounded up to two decimals, so that a later run on another
machine stays inside it; a result that did not move at all is deterministic and gets no entry (exact).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nbformat

from coursetools.course import format_spread, spread_table
from coursetools.stored import stamp_of

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"


def stored_run(lessons: list[str]) -> list[dict]:
    run = []
    for stem in lessons:
        stamp = stamp_of(nbformat.read(SOLUTIONS / f"{stem}.ipynb", as_version=4)) or {}
        run.append({"lesson": stem, "results": stamp.get("results", []), "seconds": stamp.get("seconds")})
    return run


def tolerance(value_range: float, floor: float) -> float:
    return math.ceil(max(2 * value_range, floor) * 100 - 1e-9) / 100


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="folders holding a course-report.json")
    parser.add_argument("--tolerances", type=Path, default=None, help="write the tolerances to this JSON file")
    parser.add_argument("--floor", type=float, default=0.01, help="smallest tolerance of a result that moved")
    args = parser.parse_args(argv)
    others = [json.loads((folder / "course-report.json").read_text())["lessons"] for folder in args.reports]
    lessons = [e["lesson"] for e in others[0]]
    for run in others:
        if [e["lesson"] for e in run] != lessons:
            parser.error("every report must cover the same lessons")
    runs = [stored_run(lessons)] + [[{k: e[k] for k in ("lesson", "results", "seconds")} for e in run] for run in others]
    rows = spread_table(runs)
    print(format_spread(rows, len(runs)))
    if args.tolerances:
        # lessons these reports cover are replaced; the others keep their tolerances
        old = json.loads(args.tolerances.read_text()).get("lessons", {}) if args.tolerances.exists() else {}
        table: dict[str, dict[str, float]] = {k: v for k, v in old.items() if k not in lessons}
        timings = {r["key"] for run in runs for e in run for r in e["results"] if r.get("timing")}
        for row in rows:
            if row["range"] and row["key"] not in timings:  # a timing is never gated: no tolerance
                table.setdefault(row["lesson"], {})[row["key"]] = tolerance(row["range"], args.floor)
        text = {"about": "Absolute tolerances of the quality gate (make gate): how far a key result may move from "
                         "the value stored in the solution. Set by benchmarks/spread.py from the run-to-run spread "
                         "(docs/benchmarks.md); a result not listed is deterministic and must agree exactly.",
                "lessons": table}
        args.tolerances.write_text(json.dumps(text, indent=2) + "\n")
        print(f"\nwrote {args.tolerances}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
