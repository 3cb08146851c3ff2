"""The instructor pack (``docs/instructor/``): schedules from measured times, lesson notes, slide figures.

Three things are generated from the solution
notebooks, so that they cannot drift from the lessons:

* ``docs/instructor/schedule.md`` -- a one-day and a two-day timetable. Each lesson's slot is

  - the **walk-through**: the lesson's stated time (its ``**Time:** about N minutes`` line) minus the
    time of its exercises (the ``M for the exercises`` the line states, else the sum of the minutes
    its registered exercises state),
  - plus the **run**: the seconds its cells took in the quick-mode run stored in the solution
    (``metadata.segcourse.seconds``), scaled to the room's machine speed with ``--speed`` (images/s,
    as ``make course`` prints it; by default the speed stored with the solutions),
  - plus the **exercises done in class** (the variant's choice; the others are homework),

  rounded up to 5 minutes and laid out on a day of four 90-minute sessions (09:00-16:30). The lessons of each
  plan are chosen by :func:`plan`: in the order of :data:`PRIORITY`, each with the lessons its
  ``**Prerequisites:**`` line names, taught after them; the time left is filled with more exercises. A new
  lesson needs only its notebook (time, exercises, prerequisites).
* the generated blocks of ``docs/instructor/lessons.md`` (between ``<!-- generated:begin NN -->`` and
  ``<!-- generated:end NN -->``): times, exercises, objectives and key points, copied from each lesson.
  Everything outside the blocks (where to pause, discussion questions, learner errors) is written by hand;
  a lesson without a section gets a skeleton.
* ``build/slides/NN_name.png`` -- one slide-ready figure per lesson: the last PNG output of the code cell
  tagged ``slide`` in the solution (the tag is cell metadata, so it does not change the stamp's source
  hash, and the learner notebooks do not carry it).

``python -m coursetools instructor schedule [--check] [--speed S]`` writes (or checks) the first two;
``python -m coursetools instructor slides [--out build/slides] [--width PX]`` extracts the figures.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import checkout
from .generated import sync_generated

#: Where the pack is written, inside the checkout.
DOCS = Path("docs") / "instructor"
SLIDE_TAG = "slide"

_EXERCISE_SPLIT = re.compile(r"\*\*Time:\*\*\s*about\s+\d+\s+min\w*:\s*(\d+)\s+to read and run,\s*(\d+)\s+for")
_OBJECTIVES = re.compile(r"^\*\*(You will learn to|In this notebook you will)\*\*\s*$")
_ITEM = re.compile(r"^(\*|\d+\.)\s+")


@dataclass
class Lesson:
    """What the pack needs to know about one lesson, read from its solution notebook and its checks."""

    number: str
    stem: str
    title: str
    stated_minutes: int
    stated_exercise_minutes: int | None  # from "N to read and run, M for the exercises", if the lesson says so
    exercises: list[tuple[str, str, int, str]]  # (id, level, minutes, title)
    seconds: float | None  # quick-mode run, from the stamp
    speed: float | None  # images/s the stamp was measured at
    objectives: list[str] = field(default_factory=list)
    key_points: list[str] = field(default_factory=list)
    prerequisites: tuple[str, ...] = ()  # lesson numbers from its "**Prerequisites:**" line

    @property
    def exercise_minutes(self) -> int:
        if self.stated_exercise_minutes is not None:
            return self.stated_exercise_minutes
        return sum(e[2] for e in self.exercises)

    @property
    def walkthrough_minutes(self) -> int:
        return max(self.stated_minutes - self.exercise_minutes, 0)

    def run_minutes(self, speed: float | None = None) -> int:
        """The stored quick-mode run in whole minutes, scaled to ``speed`` (images/s) when both speeds are known."""
        if self.seconds is None:
            return 0
        seconds = self.seconds
        if speed and self.speed:
            seconds = seconds * self.speed / speed
        return math.ceil(seconds / 60)


_PREREQUISITES = re.compile(r"\*\*Prerequisites:\*\*(.*?)(?=\*\*Time:\*\*|\n\s*\n|$)", re.DOTALL)
_LESSON_NUMBER = re.compile(r"(?<![\w.])\d{2}(?![\w.])")
#: A sentence of the prerequisites that says a lesson is optional ("Lesson 04 helps but is not needed").
_OPTIONAL = re.compile(r"not needed|optional|helps but", re.IGNORECASE)


def prerequisites(first_cell: str, number: str = "") -> tuple[str, ...]:
    """The lessons that the first cell's ``**Prerequisites:**`` line names, in order, without ``number`` itself.

    A number counts when the sentence that holds it follows the word "lesson" (``lesson 00``, ``lessons 04 (...), 06
    (...) and 07``); a sentence that says it is optional ("helps but is not needed") is left out.

    >>> prerequisites("**Prerequisites:** lessons 04 (U-Net), 06 and 07 (IoU). Lesson 02 helps but is not needed.\\n")
    ('04', '06', '07')
    >>> prerequisites("**Prerequisites:** Python and NumPy. **Time:** about 20 minutes.")
    ()
    """
    match = _PREREQUISITES.search(first_cell)
    if not match:
        return ()
    found: list[str] = []
    for sentence in re.split(r"(?<=[.;])\s+", " ".join(match.group(1).split())):
        if _OPTIONAL.search(sentence):
            continue
        words = re.search(r"\blessons?\b", sentence, re.IGNORECASE)
        if not words:
            continue
        for n in _LESSON_NUMBER.findall(sentence[words.start():]):
            if n != number and n not in found:
                found.append(n)
    return tuple(found)


def _title(first_cell: str) -> str:
    heading = next((ln for ln in first_cell.split("\n") if ln.startswith("# ")), "# ?")[2:].strip()
    return re.sub(r"^(Lesson\s+)?\d{2}\s*[·—-]\s*", "", heading)


def _items(lines: list[str]) -> list[str]:
    """The list items at the start of ``lines`` (continuation lines joined), until the list ends."""
    items: list[str] = []
    for line in lines:
        if _ITEM.match(line):
            items.append(_ITEM.sub("", line).strip())
        elif items and line.startswith(" ") and line.strip():
            items[-1] += " " + line.strip()
        elif items and not line.strip():
            continue
        elif items:
            break
    return items


def objectives(first_cell: str) -> list[str]:
    """The bullets under the first cell's "**You will learn to**" (or "**In this notebook you will**")."""
    lines = first_cell.split("\n")
    start = next((i for i, ln in enumerate(lines) if _OBJECTIVES.match(ln.strip())), None)
    return [] if start is None else _items(lines[start + 1:])


def key_point_items(nb) -> list[str]:
    from .glossary import key_points

    lines = key_points(nb).split("\n")[1:]
    return _items([ln for ln in lines if not ln.startswith("**Terms** (")])


def load_lessons(solutions: Path | None = None) -> list[Lesson]:
    """Every solution notebook of ``solutions`` (default: the checkout's) as a :class:`Lesson`, in order.

    Raises:
        ValueError: a lesson's first cell has no ``**Time:** about N minutes`` line.
    """
    import nbformat

    from segcourse.exercises.registry import all_exercises

    from .coursemap import learner_minutes
    from .stored import stamp_of

    solutions = checkout.root() / "solutions" if solutions is None else solutions
    by_lesson: dict[int, list] = {}
    for ex in all_exercises():
        by_lesson.setdefault(ex.lesson, []).append((ex.id, ex.level, ex.minutes, ex.title))
    lessons = []
    for path in sorted(Path(solutions).glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = "".join(nb.cells[0].source) if nb.cells else ""
        split = _EXERCISE_SPLIT.search(first)
        stamp = stamp_of(nb) or {}
        lessons.append(Lesson(
            number=path.name[:2], stem=path.stem, title=_title(first), stated_minutes=learner_minutes(nb, path.name),
            stated_exercise_minutes=int(split.group(2)) if split else None,
            exercises=by_lesson.get(int(path.name[:2]), []), seconds=stamp.get("seconds"),
            speed=stamp.get("speed_img_per_s"), objectives=objectives(first), key_points=key_point_items(nb),
            prerequisites=prerequisites(first, path.name[:2])))
    return lessons


# ---------------------------------------------------------------------------------------------- schedule

#: A workshop day: sessions (start, end) in minutes after midnight, with what comes after each.
SESSIONS = [((9 * 60, 10 * 60 + 30), "coffee break"), ((10 * 60 + 45, 12 * 60 + 15), "lunch"),
            ((13 * 60 + 15, 14 * 60 + 45), "coffee break"), ((15 * 60, 16 * 60 + 30), None)]
#: An activity is not started with less than this many minutes left before a break.
MIN_PIECE = 15
#: Minutes of questions and catch-up that the extra exercises leave free on each day (the room always runs late).
RESERVE = 15


#: The order in which the lessons are chosen for a workshop too short for all of them (each lesson comes with the
#: lessons its "**Prerequisites:**" line names, recursively): first the path from a threshold to a served model and
#: the capstone, then the other architectures. A lesson not named here (a new one) ranks after these, by number:
#: it needs only its notebook (its time, exercises and prerequisites are read from it).
PRIORITY = ("00", "01", "04", "07", "10", "11", "05", "08", "09")


@dataclass(frozen=True)
class Variant:
    """A workshop format: its name and how many days; the lessons are chosen by :data:`PRIORITY`."""

    name: str
    days: int


VARIANTS = (Variant("One day", 1), Variant("Two days", 2))


def in_class(lesson: Lesson) -> list[tuple[str, str, int, str]]:
    """The exercises done in class: every warm-up, or the first exercise when the lesson has none.

    The core and stretch exercises are homework: at the stated minutes, all of them would not fit in two days.
    """
    warm = [e for e in lesson.exercises if e[1] == "warm-up"]
    return warm or lesson.exercises[:1]


def _round5(minutes: int) -> int:
    return 5 * math.ceil(minutes / 5)


def activities(lessons: list[Lesson], speed: float | None = None,
               exercises: dict[str, list] | None = None) -> list[tuple[str, str, int]]:
    """``(lesson label, what, minutes)`` in order: a walk-through (and run) then the in-class exercises.

    Args:
        exercises: the exercises done in class per lesson number (default: :func:`in_class`).
    """
    out = []
    for lesson in lessons:
        label = f"{lesson.number} {lesson.title.split(':')[0]}"
        run = lesson.run_minutes(speed)
        out.append((label, f"walk-through and run ({lesson.walkthrough_minutes} + {run} min)",
                    _round5(lesson.walkthrough_minutes + run)))
        chosen = in_class(lesson) if exercises is None else exercises.get(lesson.number, [])
        if chosen:
            names = ", ".join(e[0] for e in chosen)
            out.append((label, f"exercise{'s' if len(chosen) > 1 else ''} {names}", _round5(sum(e[2] for e in chosen))))
    return out


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def lay_out(items: list[tuple[str, str, int]], days: int) -> list[list[tuple[str, str, str]]]:
    """Place ``items`` on ``days`` workshop days: ``[[(time range, lesson, what), ...] per day]``.

    An item longer than what is left of a session continues after the break; an item is not started in the
    last ``MIN_PIECE`` minutes before a break, nor when it would not end the same day, and a lesson (the
    consecutive items with the same label) is not started when all of it would not end the same day (a lesson is
    not left half-done overnight). Each session's remaining time is for questions and catch-up.

    Raises:
        ValueError: the items do not fit in ``days`` days (the message says how many minutes are left over).
    """
    queue = [[*item, False] for item in items]  # label, what, minutes, started
    schedule = []
    for _ in range(days):
        rows = []
        for k, ((start, end), after) in enumerate(SESSIONS):
            t = start
            rest_of_day = sum(e - s for (s, e), _a in SESSIONS[k + 1:])
            while queue:
                label, what, minutes, started = queue[0]
                whole = minutes   # a lesson's first item: the lesson's items together must end the same day
                if not started and (not rows or rows[-1][1] != label):
                    whole = sum(q[2] for q in itertools.takewhile(lambda q, first=label: q[0] == first, queue))
                if end - t < min(MIN_PIECE, minutes) or (not started and whole > end - t + rest_of_day):
                    break
                piece = min(minutes, end - t)
                continued = minutes - piece
                rows.append((f"{_clock(t)}–{_clock(t + piece)}", label,
                             what + (" (continues after the break)" if continued else "")))
                t += piece
                if continued:
                    queue[0] = [label, what.split(" (")[0] + " (continued)", continued, True]
                else:
                    queue.pop(0)
            if t < end:
                rows.append((f"{_clock(t)}–{_clock(end)}", "", "questions, catch-up"))
            if after:
                nxt = next(s for (s, _e), _a in SESSIONS if s >= end)
                rows.append((f"{_clock(end)}–{_clock(nxt)}", "", f"*{after}*"))
        schedule.append(rows)
    if queue:
        left = sum(q[2] for q in queue)
        raise ValueError(f"the schedule does not fit in {days} day(s): {left} minutes left over "
                         f"({', '.join(q[0] for q in queue)}); choose fewer lessons or exercises")
    return schedule


def teaching_order(lessons: list[Lesson]) -> list[Lesson]:
    """``lessons`` in number order, except that a lesson comes after the prerequisites it names among them.

    Raises:
        ValueError: the prerequisites form a cycle (the message names the lessons).
    """
    numbers = {lesson.number for lesson in lessons}
    done: list[Lesson] = []
    waiting = sorted(lessons, key=lambda lesson: lesson.number)
    while waiting:
        ready = next((lesson for lesson in waiting
                      if all(p in {d.number for d in done} for p in lesson.prerequisites if p in numbers)), None)
        if ready is None:
            raise ValueError("the lessons' prerequisites form a cycle: " + ", ".join(
                f"{lesson.number} needs {', '.join(lesson.prerequisites)}" for lesson in waiting))
        done.append(ready)
        waiting.remove(ready)
    return done


def with_prerequisites(number: str, by_number: dict[str, Lesson]) -> set[str]:
    """``number`` and every lesson it needs, recursively (prerequisites that are not lessons here are ignored)."""
    found, todo = set(), [number]
    while todo:
        n = todo.pop()
        if n in by_number and n not in found:
            found.add(n)
            todo += list(by_number[n].prerequisites)
    return found


_LEVELS = {"warm-up": 0, "core": 1, "stretch": 2}


@dataclass
class Plan:
    """A workshop: the lessons taught (in teaching order), their in-class exercises, the days, what is left."""

    lessons: list[Lesson]
    exercises: dict[str, list]
    days: list[list[tuple[str, str, str]]]
    left_out: list[Lesson]


def plan(lessons: list[Lesson], days: int, speed: float | None = None,
         priority: tuple[str, ...] = PRIORITY) -> Plan:
    """Choose and lay out the lessons of a ``days``-day workshop.

    In ``priority`` order (lessons not named there after, by number), each lesson is added together with its
    prerequisites (:func:`with_prerequisites`) when all of it still fits (:func:`lay_out`, in
    :func:`teaching_order`, with the :func:`in_class` exercises); a lesson that does not fit is skipped and the
    next ones are tried, so a shorter one can fill the time. Then the time left is filled with more exercises of
    the chosen lessons (by priority; warm-ups, then core, then stretch), each kept only when everything still fits
    and every day keeps :data:`RESERVE` minutes of questions and catch-up (or what it had, if less).
    A lesson is never taught without its prerequisites.
    """
    by_number = {lesson.number: lesson for lesson in lessons}
    rank = {n: i for i, n in enumerate(priority)}
    ranked = sorted(lessons, key=lambda lesson: (rank.get(lesson.number, len(priority)), lesson.number))

    def attempt(numbers: set[str], exercises: dict[str, list] | None):
        taught = teaching_order([by_number[n] for n in numbers])
        return taught, lay_out(activities(taught, speed, exercises), days)

    chosen: set[str] = set()
    for lesson in ranked:
        wanted = chosen | with_prerequisites(lesson.number, by_number)
        if wanted != chosen:
            try:
                attempt(wanted, None)
                chosen = wanted
            except ValueError:
                continue
    exercises = {n: in_class(by_number[n]) for n in chosen}
    free = [sum(free_slots(day)) for day in attempt(chosen, exercises)[1]]
    for lesson in ranked:
        if lesson.number not in chosen:
            continue
        for extra in sorted(lesson.exercises, key=lambda e: _LEVELS.get(e[1], 3)):
            if extra in exercises[lesson.number]:
                continue
            trial = {**exercises, lesson.number: [e for e in lesson.exercises
                                                  if e in exercises[lesson.number] or e == extra]}
            try:
                trial_free = [sum(free_slots(day)) for day in attempt(chosen, trial)[1]]
            except ValueError:
                continue
            if all(f >= min(RESERVE, was) for f, was in zip(trial_free, free)):
                exercises, free = trial, trial_free
    taught, layout = attempt(chosen, exercises)
    return Plan(taught, exercises, layout, [lesson for lesson in lessons if lesson.number not in chosen])


def priority_order(lessons: list[Lesson], priority: tuple[str, ...] = PRIORITY) -> list[str]:
    """The lesson numbers in the order :func:`plan` considers them."""
    rank = {n: i for i, n in enumerate(priority)}
    return [lesson.number for lesson in sorted(lessons, key=lambda x: (rank.get(x.number, len(priority)), x.number))]


def free_slots(day: list[tuple[str, str, str]]) -> list[int]:
    """The minutes of each "questions, catch-up" slot of a laid-out day."""
    out = []
    for t, _label, what in day:
        if what == "questions, catch-up":
            a, b = (int(x[:2]) * 60 + int(x[3:]) for x in t.split("–"))
            out.append(b - a)
    return out


def render_schedule(lessons: list[Lesson], speed: float | None = None) -> str:
    """The whole ``docs/instructor/schedule.md``."""
    stored_speeds = sorted({lesson.speed for lesson in lessons if lesson.speed})
    measured = (f"{stored_speeds[0]:.1f}" if len(stored_speeds) == 1 else
                f"{stored_speeds[0]:.1f}-{stored_speeds[-1]:.1f}" if stored_speeds else "an unknown")
    speed_text = (f"scaled to a machine speed of {speed:.1f} images/s with `--speed`" if speed else
                  f"as stored, measured at {measured} images/s")
    out = ["# Workshop schedules", "",
           "<!-- Generated by `python -m coursetools instructor schedule` from the solution notebooks: do not edit. -->",
           "",
           ("Generated from the lessons: each slot is the lesson's stated time minus its exercise time "
           "(the walk-through), plus the time its cells took in the quick-mode run stored with the solutions "
           f"({speed_text}), plus the exercises done in class (at least every warm-up, or the first exercise when a "
           "lesson has no warm-up; a plan adds more where its days have time), rounded up to 5 minutes. The other "
           "exercises are homework. On the room's "
           "machines, run `make course` the day before: it prints this machine's speed; then "
           "`python -m coursetools instructor schedule --speed S --out schedule-room.md` gives the times for that room."),
           "", "## The lessons' times", "",
           ("| # | lesson | stated (min) | exercises stated (min) | walk-through (min) | quick-mode run (s) | "
           "in class (at least) | homework (at most) |"),
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    notes = []
    for lesson in lessons:
        chosen = {e[0] for e in in_class(lesson)}
        homework = [e[0] for e in lesson.exercises if e[0] not in chosen]
        seconds = f"{lesson.seconds:.0f}" if lesson.seconds is not None else "not stored"
        out.append(f"| {lesson.number} | {lesson.title} | {lesson.stated_minutes} | {lesson.exercise_minutes} | "
                   f"{lesson.walkthrough_minutes} | {seconds} | {', '.join(sorted(chosen)) or '-'} | "
                   f"{', '.join(homework) or '-'} |")
        registry = sum(e[2] for e in lesson.exercises)
        if lesson.stated_exercise_minutes is None and registry and 3 * lesson.walkthrough_minutes < lesson.stated_minutes:
            notes.append(f"Lesson {lesson.number} states {lesson.stated_minutes} minutes with the exercises, and its "
                         f"exercises state {registry} minutes together: that leaves {lesson.walkthrough_minutes} "
                         f"minutes for the walk-through, which is short: plan longer, or take the exercises as homework.")
    if notes:
        out += ["", *[f"* {n}" for n in notes]]
    out += ["", "## How the lessons are chosen", "",
            ("Each plan considers the lessons in this order of priority: " + ", ".join(priority_order(lessons)) +
             " (from a threshold to a served model and the capstone first, then the other architectures; the lessons "
             "that `PRIORITY` does not name last). "
             "A lesson comes with every lesson its **Prerequisites** line names, and is left out when it does not fit "
             "with them; lessons are taught after their prerequisites (otherwise in number order). The time left "
             "is then filled with more of the chosen lessons' exercises (warm-ups, then core, then stretch), "
             f"keeping at least {RESERVE} minutes of questions and catch-up a day."),
            ("A lesson added to the course needs nothing here: its notebook's time, exercises and prerequisites are "
             "read from it, and it ranks after the lessons named in `coursetools/instructor.py`'s `PRIORITY`.")]
    for variant in VARIANTS:
        p = plan(lessons, variant.days, speed)
        moved = [lesson for i, lesson in enumerate(p.lessons)
                 if any(earlier.number > lesson.number for earlier in p.lessons[:i])]
        out += ["", f"## {variant.name}", "",
                (f"Lessons {', '.join(lesson.number for lesson in p.lessons)}, taught in this order"
                 + (" (" + "; ".join(f"{lesson.number} after {', '.join(q for q in lesson.prerequisites if q > lesson.number)}, "
                                     f"which its prerequisites name" for lesson in moved) + ")" if moved else "")
                 + ". In class: " + ", ".join(e[0] for lesson in p.lessons for e in p.exercises[lesson.number])
                 + "; the other exercises are homework.")]
        for d, rows in enumerate(p.days, 1):
            out += ["", f"### Day {d}" if variant.days > 1 else "### The day", "", "| time | lesson | what |",
                    "| --- | --- | --- |"]
            out += [f"| {t} | {label} | {what} |" for t, label, what in rows]
        if p.left_out:
            out += ["", "Self-study after the workshop: " +
                    ", ".join(f"{lesson.number} {lesson.title.split(':')[0]}" for lesson in p.left_out) + "."]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------- lesson notes

_BLOCK = re.compile(r"<!-- generated:begin (\d{2}) -->\n.*?<!-- generated:end \1 -->", re.DOTALL)


def lesson_block(lesson: Lesson) -> str:
    """The generated part of a lesson's section in ``lessons.md``."""
    split = (f" ({lesson.walkthrough_minutes} walk-through, {lesson.exercise_minutes} exercises)"
             if lesson.exercises else "")
    seconds = f"{lesson.seconds:.0f} s" if lesson.seconds is not None else "not stored yet"
    lines = [f"<!-- generated:begin {lesson.number} -->",
             (f"**Notebook:** `solutions/{lesson.stem}.ipynb` · **time:** {lesson.stated_minutes} min{split} · "
             f"**quick-mode run:** {seconds} · **slide:** `build/slides/{lesson.stem}.png`"), ""]
    if lesson.exercises:
        lines += ["**Exercises:** " + "; ".join(f"{e[0]} {e[3]} ({e[1]}, {e[2]} min)" for e in lesson.exercises), ""]
    lines += ["**Objectives** (from the lesson):", ""] + [f"* {o}" for o in lesson.objectives or ["(none stated)"]]
    lines += ["", "**Key points** (from the lesson):", ""] + [f"* {k}" for k in lesson.key_points or ["(none)"]]
    lines.append(f"<!-- generated:end {lesson.number} -->")
    return "\n".join(lines)


SKELETON = """
## {number} — {title}

{block}

### Where to pause

_Not written yet._

### Discussion questions

_Not written yet._

### Common learner errors and fixes

_Not written yet._
"""


def render_notes(current: str, lessons: list[Lesson]) -> str:
    """``lessons.md`` with every lesson's generated block refreshed (a skeleton section added for a new lesson)."""
    blocks = {lesson.number: lesson_block(lesson) for lesson in lessons}
    text = _BLOCK.sub(lambda m: blocks.get(m.group(1), m.group(0)), current)
    present = set(_BLOCK_NUMBERS.findall(text))
    for lesson in lessons:
        if lesson.number in present:
            continue
        section = SKELETON.format(number=lesson.number, title=lesson.title, block=blocks[lesson.number])
        later = [m for m in _SECTION.finditer(text) if m.group(1) > lesson.number]
        if later:   # before the next lesson's section, so that the sections stay in lesson order
            text = text[:later[0].start()] + section.lstrip("\n") + "\n" + text[later[0].start():]
        else:
            text = text.rstrip("\n") + "\n" + section
        present.add(lesson.number)
    return text


_SECTION = re.compile(r"^## (\d{2}) — ", re.MULTILINE)


_BLOCK_NUMBERS = re.compile(r"<!-- generated:begin (\d{2}) -->")


# ---------------------------------------------------------------------------------------------- slides

def slide_png(nb, name: str = "notebook") -> bytes:
    """The last PNG output of the code cell tagged ``slide``.

    Raises:
        ValueError: no cell, or more than one, is tagged ``slide``, or the tagged cell has no stored PNG.
    """
    tagged = [i for i, c in enumerate(nb.cells) if SLIDE_TAG in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"{name}: expected exactly one cell tagged {SLIDE_TAG!r} (the lesson's slide figure), "
                         f"found {len(tagged)} ({tagged})")
    pngs = [o["data"]["image/png"] for o in nb.cells[tagged[0]].get("outputs", [])
            if "image/png" in o.get("data", {})]
    if not pngs:
        raise ValueError(f"{name}: cell {tagged[0]} is tagged {SLIDE_TAG!r} but has no stored PNG output; "
                         f"store the solution's outputs first (make solutions)")
    data = pngs[-1]
    return base64.b64decode("".join(data) if isinstance(data, list) else data)


def write_slides(solutions: Path, out: Path, width: int | None = None, colors: int | None = None,
                 log=print) -> list[Path]:
    """Write ``out/NN_name.png`` for every solution with stored outputs (the others are named and skipped).

    Args:
        width: scale figures wider than this many pixels down to it (None: as stored).
        colors: store with an adaptive palette of this many colours (a much smaller file; None: as stored).
    """
    import io

    import nbformat
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(Path(solutions).glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if not nb.metadata.get("segcourse"):
            log(f"{path.name}: no stored outputs yet (make solutions), so no slide")
            continue
        png = slide_png(nb, path.name)
        target = out / f"{path.stem}.png"
        if width or colors:
            image = Image.open(io.BytesIO(png)).convert("RGB")
            if width and image.width > width:
                image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
            if colors:
                image = image.quantize(colors)
            image.save(target, optimize=True)
        else:
            target.write_bytes(png)
        log(f"{target.relative_to(out.parent) if out.parent in target.parents else target} "
            f"({target.stat().st_size // 1024} kB)")
        written.append(target)
    return written


# ---------------------------------------------------------------------------------------------- command line

def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    sched = sub.add_parser("schedule", help="write docs/instructor/schedule.md and lessons.md's generated blocks")
    sched.add_argument("--check", action="store_true", help="write nothing; fail if a file is not current")
    sched.add_argument("--speed", type=float, help="the room's machine speed in images/s (`make course` prints it)")
    sched.add_argument("--out", type=Path, help="write the schedule here instead (lessons.md is left alone)")
    slides = sub.add_parser("slides", help="extract each lesson's slide figure (the cell tagged 'slide')")
    slides.add_argument("--out", type=Path, default=None, help="default: the checkout's build/slides")
    slides.add_argument("--width", type=int, help="scale figures wider than this many pixels down to it")
    slides.add_argument("--colors", type=int, help="store with an adaptive palette of this many colours (smaller files)")
    slides.add_argument("--only", nargs="*", help="lessons (NN) to extract; default all")
    for p in (sched, slides):
        p.add_argument("--solutions", type=Path, default=None, help="default: the checkout's solutions/")


def run(args: argparse.Namespace) -> int:
    root = checkout.root() if args.solutions is None or args.out is None else None
    args.solutions = root / "solutions" if args.solutions is None else args.solutions
    if args.action == "slides":
        args.out = root / "build" / "slides" if args.out is None else args.out
        solutions = args.solutions
        if args.only:
            import tempfile

            tmp = Path(tempfile.mkdtemp())
            for path in sorted(Path(solutions).glob("[0-9][0-9]_*.ipynb")):
                if path.name[:2] in args.only:
                    (tmp / path.name).symlink_to(path.resolve())
            solutions = tmp
        try:
            write_slides(solutions, args.out, args.width, args.colors)
        except ValueError as error:
            print(f"error: {error}")
            return 1
        return 0
    try:
        lessons = load_lessons(args.solutions)
        files = {args.out or root / DOCS / "schedule.md": render_schedule(lessons, args.speed)}
        if args.out is None:
            notes = root / DOCS / "lessons.md"
            files[notes] = render_notes(notes.read_text(encoding="utf-8") if notes.exists() else "", lessons)
    except ValueError as error:
        print(f"error: {error}")
        return 1
    status = 0
    for path, wanted in files.items():
        if not sync_generated(path, wanted, check=args.check, what="the lesson notes" if path.name == "lessons.md" else "the schedule",
                              command="python -m coursetools instructor schedule") and args.check:
            status = 1
    return status
