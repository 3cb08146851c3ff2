"""The README's course map, kept current from one source: the solution notebooks.

Repository tooling. Two columns of the map are facts that live elsewhere and drift when
copied by hand:

* **time (learner)** -- the lesson's own header line ``**Time:** about N minutes ...`` (the total
  for reading, running and the exercises; the first number after ``**Time:**``);
* **quick-mode run** -- the seconds stored in the solution's stamp by ``make solutions``, with the
  machine speed it was measured at (see :mod:`segcourse.stored`).

``python -m segcourse coursemap`` rewrites those two columns (and the totals line under the
table) in ``README.md``; ``--check`` only reports, and ``tests/test_coursemap.py`` runs it.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_TIME = re.compile(r"\*\*Time:\*\*\s*about\s+(\d+)\s+min")
_ROW = re.compile(r"^\|\s*(\d{2})\s*\|(.*)\|\s*([^|]*)\|\s*([^|]*)\|\s*$")
_TOTALS = re.compile(r"^The \"quick-mode run\" column .*?(?=\n\n|\Z)", re.DOTALL | re.MULTILINE)


def learner_minutes(nb, name: str) -> int:
    """The total learner time stated in the notebook's first cell.

    Raises:
        ValueError: the first cell has no ``**Time:** about N minutes`` line.
    """
    first = "".join(nb.cells[0].source) if nb.cells else ""
    match = _TIME.search(first)
    if not match:
        raise ValueError(f"{name}: its first cell must state the learner time as '**Time:** about N minutes ...' "
                         f"(the total with the exercises)")
    return int(match.group(1))


def lesson_facts(solutions: Path) -> dict[str, dict]:
    """``{"04": {"minutes": 75, "seconds": 97.3, "speed": 61.2, "machine": "..."}}`` for every solution."""
    import nbformat

    from .stored import stamp_of

    facts = {}
    for path in sorted(Path(solutions).glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        stamp = stamp_of(nb) or {}
        facts[path.name[:2]] = {"minutes": learner_minutes(nb, path.name), "seconds": stamp.get("seconds"),
                                "speed": stamp.get("speed_img_per_s"), "machine": stamp.get("machine")}
    return facts


def render(readme: str, facts: dict[str, dict]) -> str:
    """``readme`` with the map's time columns and the totals line set from ``facts``.

    Raises:
        ValueError: a lesson has no row in the map, or a row names no lesson.
    """
    lines = readme.split("\n")
    seen = set()
    for i, line in enumerate(lines):
        match = _ROW.match(line)
        if not match:
            continue
        number = match.group(1)
        if number not in facts:
            raise ValueError(f"README's course map has a row for lesson {number}, which has no solution notebook")
        f = facts[number]
        seconds = f"{f['seconds']:.0f} s" if f["seconds"] is not None else "not stored"
        lines[i] = f"| {number} |{match.group(2)}| {f['minutes']} min | {seconds} |"
        seen.add(number)
    missing = sorted(set(facts) - seen)
    if missing:
        raise ValueError(f"README's course map has no row for lesson(s) {', '.join(missing)}")
    text = "\n".join(lines)
    stored = [f for f in facts.values() if f["seconds"] is not None]
    total = sum(f["seconds"] for f in stored)
    speeds = sorted({f["speed"] for f in stored if f["speed"] is not None})
    machines = sorted({f["machine"] for f in stored if f["machine"]})
    speed = (f", at a machine speed of {speeds[0]:.0f} images/s" if len(speeds) == 1 else
             f", at machine speeds of {speeds[0]:.0f}-{speeds[-1]:.0f} images/s" if speeds else "")
    totals = (f"The \"quick-mode run\" column is the wall time of each lesson in the quick-mode run whose outputs the "
              f"solutions show (`make solutions`; all {len(stored)}: {total:.0f} s), measured on "
              f"{' / '.join(machines) or 'a 2-core CPU'}{speed} (U-Net training images per second: "
              f"`make course` prints your machine's and the time to expect). The learner times are the ones each "
              f"lesson states at its top.")
    if not _TOTALS.search(text):
        raise ValueError("README has no paragraph starting 'The \"quick-mode run\" column' under the course map")
    return _TOTALS.sub(lambda _: totals, text, count=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="write nothing; fail if README.md is not current")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--solutions", type=Path, default=ROOT / "solutions")


def run(args: argparse.Namespace) -> int:
    current = args.readme.read_text(encoding="utf-8")
    try:
        wanted = render(current, lesson_facts(args.solutions))
    except ValueError as error:
        print(f"error: {error}")
        return 1
    if wanted == current:
        print(f"{args.readme.name}: the course map is current")
        return 0
    if args.check:
        print(f"{args.readme.name}: the course map's times are not current; run `python -m segcourse coursemap`")
        return 1
    args.readme.write_text(wanted, encoding="utf-8")
    print(f"{args.readme.name}: course map updated")
    return 0
