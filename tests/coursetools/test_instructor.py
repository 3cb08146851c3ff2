"""The instructor pack: schedules laid out from the lessons' times, generated lesson notes, slide figures."""

from __future__ import annotations

import base64
import copy
import io
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from PIL import Image

from coursetools import checkout
from coursetools import instructor as I
from coursetools.instructor import Lesson
from coursetools.stored import source_hash

ROOT = checkout.root(Path(__file__).parent)  # the checkout these tests belong to

SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


def _lesson(number="03", stated=90, split=None, exercises=(("3.1", "warm-up", 10, "a"), ("3.2", "core", 20, "b")),
            seconds=120.0, speed=2.0):
    return Lesson(number=number, stem=f"{number}_x", title="X: y", stated_minutes=stated,
                  stated_exercise_minutes=split, exercises=list(exercises), seconds=seconds, speed=speed)


def test_walkthrough_is_the_stated_time_minus_the_exercises_and_the_run_scales_with_the_speed():
    lesson = _lesson()
    assert lesson.exercise_minutes == 30 and lesson.walkthrough_minutes == 60   # 90 - (10 + 20)
    assert _lesson(split=45).walkthrough_minutes == 45                          # the lesson's own split wins
    assert lesson.run_minutes() == 2                                            # 120 s as stored
    assert lesson.run_minutes(speed=8.0) == 1                                   # 120 s * 2 / 8 = 30 s -> 1 min
    assert _lesson(seconds=None).run_minutes() == 0


def test_in_class_takes_the_warm_ups_or_else_the_first_exercise():
    assert [e[0] for e in I.in_class(_lesson())] == ["3.1"]
    core_only = _lesson(exercises=(("10.1", "core", 15, "a"), ("10.2", "core", 15, "b")))
    assert [e[0] for e in I.in_class(core_only)] == ["10.1"]


def test_activities_round_up_to_five_minutes():
    items = I.activities([_lesson()])
    # walk-through 60 + run 2 = 62 -> 65; exercise 3.1: 10
    assert [(what.split(" (")[0], minutes) for _, what, minutes in items] == [("walk-through and run", 65),
                                                                             ("exercise 3.1", 10)]


def test_lay_out_splits_a_long_item_at_the_break_and_fills_the_rest_with_catch_up():
    day = I.lay_out([("01 A", "walk-through", 100), ("01 A", "exercise 1.1", 10)], days=1)[0]
    assert day[0] == ("09:00–10:30", "01 A", "walk-through (continues after the break)")
    assert day[1] == ("10:30–10:45", "", "*coffee break*")
    assert day[2] == ("10:45–10:55", "01 A", "walk-through (continued)")             # 100 - 90 = 10
    assert day[3] == ("10:55–11:05", "01 A", "exercise 1.1")
    assert day[4] == ("11:05–12:15", "", "questions, catch-up")


def test_lay_out_does_not_start_an_item_in_the_last_minutes_before_a_break():
    day = I.lay_out([("A", "x", 80), ("B", "y", 30)], days=1)[0]
    # 09:00-10:20 A; 10 minutes left (< MIN_PIECE): B starts after the break
    assert day[1] == ("10:20–10:30", "", "questions, catch-up")
    assert day[3] == ("10:45–11:15", "B", "y")


def test_lay_out_keeps_a_day_s_last_item_whole_and_refuses_what_does_not_fit():
    items = [("A", "x", 270 + 60), ("B", "y", 40)]   # A fills 3 sessions and 60 min of the fourth; B needs 40 > 30
    days = I.lay_out(items, days=2)
    assert days[0][-1] == ("16:00–16:30", "", "questions, catch-up")
    assert days[1][0] == ("09:00–09:40", "B", "y")
    with pytest.raises(ValueError, match="does not fit in 1 day"):
        I.lay_out(items, days=1)


def test_objectives_and_key_points_are_read_from_the_lesson():
    first = "# 04 · X\n\n**You will learn to**\n\n1. read a U-Net;\n2. fix the odd-size\n   bug;\n\n**Time:** about 5 min"
    assert I.objectives(first) == ["read a U-Net;", "fix the odd-size bug;"]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(first), nbformat.v4.new_markdown_cell(
        "## Key points\n\n* one\n  more\n* two\n\n**Terms** ([glossary](x)): ...\n\n## Common mistakes\n\n* no")]
    assert I.key_point_items(nb) == ["one more", "two"]


def test_render_notes_refreshes_the_generated_block_keeps_the_rest_and_adds_new_lessons():
    lesson, new = _lesson(), _lesson(number="11")
    current = "# Notes\n\n## 03 — X\n\n<!-- generated:begin 03 -->\nold\n<!-- generated:end 03 -->\n\nHand-written.\n"
    text = I.render_notes(current, [lesson, new])
    assert "old" not in text and I.lesson_block(lesson) in text and "Hand-written." in text
    assert "## 11 — X: y" in text and I.lesson_block(new) in text and "_Not written yet._" in text
    assert I.render_notes(text, [lesson, new]) == text
    middle = I.render_notes(text, [lesson, _lesson(number="05"), new])   # a lesson between two others
    assert middle.index("## 03 — ") < middle.index("## 05 — X: y") < middle.index("## 11 — ")


def _png(color) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), color).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_slide_png_takes_the_last_figure_of_the_one_tagged_cell():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plot()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": _png("red")}),
                    nbformat.v4.new_output("display_data", data={"image/png": _png("blue")})]
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), cell]
    with pytest.raises(ValueError, match="exactly one cell tagged 'slide'"):
        I.slide_png(nb, "x.ipynb")
    cell.metadata["tags"] = ["slide"]
    with Image.open(io.BytesIO(I.slide_png(nb))) as image:
        assert image.getpixel((0, 0)) == (0, 0, 255)
    cell.outputs = []
    with pytest.raises(ValueError, match="no stored PNG"):
        I.slide_png(nb, "x.ipynb")


def test_the_slide_tag_does_not_change_the_stamp_s_source_hash():
    nb = nbformat.read(SOLUTIONS[0], as_version=4)
    other = copy.deepcopy(nb)
    for cell in other.cells:
        cell.metadata["tags"] = [t for t in cell.metadata.get("tags", []) if t != I.SLIDE_TAG]
    assert source_hash(other) == source_hash(nb)


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_every_solution_has_one_slide_figure(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if I.SLIDE_TAG in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code", f"{path.name}: tag one figure cell 'slide'"
    if nb.metadata.get("segcourse"):   # stored outputs: the figure is there
        assert I.slide_png(nb, path.name).startswith(b"\x89PNG\r\n\x1a\n")


def test_write_slides_scales_down_and_uses_a_palette(tmp_path):
    (tmp_path / "sol").mkdir()
    nb = nbformat.v4.new_notebook()
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "green").save(buffer, format="PNG")
    cell = nbformat.v4.new_code_cell("plot()", metadata={"tags": ["slide"]})
    cell.outputs = [nbformat.v4.new_output("display_data",
                                           data={"image/png": base64.b64encode(buffer.getvalue()).decode()})]
    nb.cells = [cell]
    nb.metadata["segcourse"] = {"mode": "quick"}   # stored
    nbformat.write(nb, tmp_path / "sol" / "04_x.ipynb")
    [out] = I.write_slides(tmp_path / "sol", tmp_path / "slides", width=10, colors=16, log=lambda _: None)
    with Image.open(out) as image:
        assert out.name == "04_x.png" and image.size == (10, 5) and image.mode == "P"


def test_committed_schedule_and_lesson_notes_are_current():
    proc = subprocess.run([sys.executable, "-m", "coursetools", "instructor", "schedule", "--check"], check=False, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _short(number, minutes=60, prerequisites=()):
    return Lesson(number=number, stem=f"{number}_x", title=f"L{number}", stated_minutes=minutes,
                  stated_exercise_minutes=None, exercises=[], seconds=None, speed=None, prerequisites=prerequisites)


def test_prerequisites_are_read_from_the_first_cell_without_optional_ones_or_other_numbers():
    first = ("# 11 · X\n**Prerequisites:** lessons 04 (U-Net), 07 (IoU/Dice, HD95) and 10 (ONNX export). Lesson 02 "
             "helps but is not needed. PyTorch 2 basics.\n**Time:** about 120 minutes")
    assert I.prerequisites(first, "11") == ("04", "07", "10")
    assert I.prerequisites("# 00\n**Prerequisites:** Python and NumPy.\n") == ()


def test_plan_takes_lessons_by_priority_each_with_its_prerequisites():
    lessons = [_short("00"), _short("01", prerequisites=("00",)), _short("02", prerequisites=("00",)),
               _short("03", prerequisites=("01", "02")), _short("04", prerequisites=("00",))]
    # one day holds 5 lessons of 60 min (+0 run) = 300 of 360 min; with priority 00, 03 the closure of 03 is 00-03
    p = I.plan(lessons, days=1, priority=("00", "03"))
    assert [x.number for x in p.lessons] == ["00", "01", "02", "03", "04"] and p.left_out == []
    p = I.plan([*lessons[:4], _short("04", minutes=200, prerequisites=("00",))], days=1, priority=("00", "03"))
    assert [x.number for x in p.lessons] == ["00", "01", "02", "03"]          # 04 (200 min) no longer fits
    assert [x.number for x in p.left_out] == ["04"]
    # a high-priority lesson whose prerequisites do not fit is left out, and a later one fills the time
    long_prerequisite = [_short("00"), _short("01", minutes=300), _short("02", prerequisites=("01",)), _short("03")]
    p = I.plan(long_prerequisite, days=1, priority=("00", "02", "03"))
    # 02 needs 01 (300 min): 00 + 01 + 02 = 420 > 360 min, so 02 is left out; 03 fits; 01 alone (tried last, as
    # it is not in the priority) would not fit beside 00 and 03 (420 min)
    assert [x.number for x in p.lessons] == ["00", "03"] and [x.number for x in p.left_out] == ["01", "02"]


def test_plan_teaches_a_lesson_after_the_prerequisites_it_names_and_refuses_a_cycle():
    lessons = [_short("06", prerequisites=("07",)), _short("07"), _short("10", prerequisites=("06", "07"))]
    assert [x.number for x in I.teaching_order(lessons)] == ["07", "06", "10"]
    with pytest.raises(ValueError, match="cycle: 06 needs 07, 07 needs 06"):
        I.teaching_order([_short("06", prerequisites=("07",)), _short("07", prerequisites=("06",))])


def test_plan_fills_the_time_left_with_more_exercises():
    lesson = _lesson(number="00", stated=90, split=30, exercises=(("0.1", "warm-up", 10, "a"), ("0.2", "core", 20, "b"),
                                                         ("0.3", "stretch", 300, "c")))
    p = I.plan([lesson], days=1)
    assert [e[0] for e in p.exercises["00"]] == ["0.1", "0.2"]   # 0.3 (300 min) does not fit the day
    assert [x[2] for x in p.days[0][:2]] == ["walk-through and run (60 + 2 min)",   # 65 + 30 min: past 10:30
                                              "exercises 0.1, 0.2 (continues after the break)"]


def test_the_extra_exercises_leave_the_reserve_free():
    # walk-through 335 min + warm-up 5 = 340 of the day's 360: 20 min free; 0.2 (10 min) would leave 10 < RESERVE
    lesson = Lesson(number="00", stem="00_x", title="X", stated_minutes=355, stated_exercise_minutes=20,
                    exercises=[("0.1", "warm-up", 5, "a"), ("0.2", "core", 10, "b"), ("0.3", "core", 5, "c")],
                    seconds=None, speed=None)
    p = I.plan([lesson], days=1)
    assert [e[0] for e in p.exercises["00"]] == ["0.1", "0.3"] and sum(I.free_slots(p.days[0])) == I.RESERVE


def test_a_new_lesson_needs_only_its_metadata():
    lessons = [_short("00"), _short("01", prerequisites=("00",)), _short("12", prerequisites=("01",))]
    p = I.plan(lessons, days=1, priority=("00",))     # 12 is not in the priority: it ranks last and still fits
    assert [x.number for x in p.lessons] == ["00", "01", "12"]


@pytest.fixture(scope="module")
def course_lessons():
    return I.load_lessons()


@pytest.mark.parametrize("variant", I.VARIANTS, ids=[v.name for v in I.VARIANTS])
def test_the_course_s_plans_respect_prerequisites_and_leave_no_large_empty_slot(course_lessons, variant):
    p = I.plan(course_lessons, variant.days)
    taught = [x.number for x in p.lessons]
    for i, lesson in enumerate(p.lessons):
        missing = [q for q in lesson.prerequisites if q in {x.number for x in course_lessons} and q not in taught[:i]]
        assert not missing, f"{variant.name}: lesson {lesson.number} is taught before (or without) {missing}"
    slots = [m for day in p.days for m in I.free_slots(day)]
    assert max(slots, default=0) <= 30, f"{variant.name}: an empty slot of {max(slots)} min ({p.days})"
    if variant.days == 2:   # the design: two days reach deployment and the capstone
        assert {"10", "11"} <= set(taught), f"two days teach {taught}"


def test_write_slides_names_and_skips_a_lesson_without_stored_outputs(tmp_path):
    (tmp_path / "sol").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("plot()", metadata={"tags": ["slide"]})]
    nbformat.write(nb, tmp_path / "sol" / "09_x.ipynb")
    said = []
    assert I.write_slides(tmp_path / "sol", tmp_path / "slides", log=said.append) == []
    assert said == ["09_x.ipynb: no stored outputs yet (make solutions), so no slide"]
