"""The README's course map, kept current from one source: the solution notebooks.

Two columns of the map are facts that live elsewhere and drift when
copied by hand:

* **time (learner)** -- the lesson's own header line ``**Time:** about N minutes ...`` (the total
  for reading, running and the exercises; the first number after ``**Time:**``);
* **quick-mode run** -- the seconds stored in the solution's stamp by ``make solutions``, with the
  machine speed it was measured at (see :mod:`coursetools.stored`).

``python -m coursetools coursemap`` rewrites those two columns (and the totals line under the
table) in ``README.md`` and in the Chinese ``README.zh-CN.md`` (its own units and totals paragraph,
:data:`ZH`); ``--check`` only reports, and ``tests/coursetools/test_coursemap.py`` runs it.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import checkout
from .generated import sync_generated

_TIME = re.compile(r"\*\*Time:\*\*\s*about\s+(\d+)\s+min")
_ROW = re.compile(r"^\|\s*(\d{2})\s*\|(.*)\|\s*([^|]*)\|\s*([^|]*)\|\s*$")
_TOTALS = re.compile(r"^The \"quick-mode run\" column .*?(?=\n\n|\Z)", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Language:
    """How one README writes the map's time columns and the totals paragraph under it."""

    minutes: str  # format of the learner time, e.g. "{} min"
    seconds: str  # format of the quick-mode seconds, e.g. "{:.0f} s"
    not_stored: str
    totals: re.Pattern  # the totals paragraph to replace
    totals_text: Callable[[int, float, str, str], str]  # (lessons stored, total s, machines, speed) -> paragraph
    speed_one: str  # ", at a machine speed of {:.0f} images/s"
    speed_range: str  # ", at machine speeds of {:.0f}-{:.0f} images/s"
    default_machine: str
    totals_start: str  # how the totals paragraph starts (for the error message)


EN = Language(
    minutes="{} min", seconds="{:.0f} s", not_stored="not stored", totals=_TOTALS,
    totals_text=lambda n, total, machines, speed: (
        f"The \"quick-mode run\" column is the wall time of each lesson in the quick-mode run whose outputs the "
        f"solutions show (`make solutions`; all {n}: {total:.0f} s), measured on {machines}{speed} (U-Net training "
        f"images per second: `make course` prints your machine's and the time to expect). The learner times are "
        f"the ones each lesson states at its top."),
    speed_one=", at a machine speed of {:.0f} images/s", speed_range=", at machine speeds of {:.0f}-{:.0f} images/s",
    default_machine="a 2-core CPU", totals_start='The "quick-mode run" column')

ZH = Language(
    minutes="{} 分钟", seconds="{:.0f} 秒", not_stored="尚未保存",
    totals=re.compile(r"^“快速模式运行”一列.*?(?=\n\n|\Z)", re.DOTALL | re.MULTILINE),
    totals_text=lambda n, total, machines, speed: (
        f"“快速模式运行”一列是解答笔记本中所存输出那次快速模式运行里每课的实际用时（`make solutions`；"
        f"{n} 课合计 {total:.0f} 秒），测于 {machines}{speed}（机器速度指 U-Net 每秒训练的图像数；"
        f"`make course` 会测出你的机器的速度，并给出每课预计用时）。学习时间是每课开头写明的时间。"),
    speed_one="，机器速度为每秒 {:.0f} 张图像", speed_range="，机器速度为每秒 {:.0f}–{:.0f} 张图像",
    default_machine="一台双核 CPU 的机器", totals_start="“快速模式运行”一列")

#: The READMEs whose course map is kept current, with their language.
READMES = {"README.md": EN, "README.zh-CN.md": ZH}


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


def render(readme: str, facts: dict[str, dict], lang: Language = EN) -> str:
    """``readme`` with the map's time columns and the totals line set from ``facts``, written in ``lang``.

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
        seconds = lang.seconds.format(f["seconds"]) if f["seconds"] is not None else lang.not_stored
        lines[i] = f"| {number} |{match.group(2)}| {lang.minutes.format(f['minutes'])} | {seconds} |"
        seen.add(number)
    missing = sorted(set(facts) - seen)
    if missing:
        raise ValueError(f"README's course map has no row for lesson(s) {', '.join(missing)}")
    text = "\n".join(lines)
    stored = [f for f in facts.values() if f["seconds"] is not None]
    total = sum(f["seconds"] for f in stored)
    speeds = sorted({f["speed"] for f in stored if f["speed"] is not None})
    machines = sorted({f["machine"] for f in stored if f["machine"]})
    speed = (lang.speed_one.format(speeds[0]) if len(speeds) == 1 else
             lang.speed_range.format(speeds[0], speeds[-1]) if speeds else "")
    totals = lang.totals_text(len(stored), total, " / ".join(machines) or lang.default_machine, speed)
    if not lang.totals.search(text):
        raise ValueError(f"README has no paragraph starting '{lang.totals_start}' under the course map")
    return lang.totals.sub(lambda _: totals, text, count=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="write nothing; fail if a README is not current")
    parser.add_argument("--readme", type=Path, action="append",
                        help=f"a README to update (default: {', '.join(READMES)} in the repository root; "
                             f"the language follows the file name)")
    parser.add_argument("--solutions", type=Path, default=None, help="default: the checkout's solutions/")


def run(args: argparse.Namespace) -> int:
    root = checkout.root() if args.readme is None or args.solutions is None else None
    readmes = args.readme or [root / name for name in READMES if (root / name).exists()]
    try:
        facts = lesson_facts(args.solutions or root / "solutions")
    except ValueError as error:
        print(f"error: {error}")
        return 1
    status = 0
    for readme in readmes:
        current = readme.read_text(encoding="utf-8")
        try:
            wanted = render(current, facts, READMES.get(readme.name, EN))
        except ValueError as error:
            print(f"error: {readme.name}: {error}")
            status = 1
            continue
        if not sync_generated(readme, wanted, check=args.check, what="the course map",
                              command="python -m coursetools coursemap") and args.check:
            status = 1
    return status
