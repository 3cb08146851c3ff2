"""The course runner executes lessons, collects their key results and reports failures."""

import json

import nbformat
import pytest

from coursetools import checkout, course
from coursetools.__main__ import main


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def lessons(tmp_path):
    folder = tmp_path / "solutions"
    folder.mkdir()
    _notebook(folder / "00_intro.ipynb",
              "from segcourse import get_mode\nfrom segcourse.teaching import results",
              "results.record('mode', get_mode())\nresults.record('score', 0.97, label='Score', target='>= 0.95')")
    _notebook(folder / "01_missed.ipynb", "from segcourse.teaching import results\nresults.record('score', 0.5, target='>= 0.9')")
    _notebook(folder / "02_broken.ipynb", "x = 1", "raise RuntimeError('boom in lesson 02')")
    (folder / "notes.ipynb").write_text("{}")  # not a lesson: no number prefix
    return folder


def test_lessons_are_found_in_order_and_filtered(lessons):
    assert [p.name for p in course.lessons(lessons)] == ["00_intro.ipynb", "01_missed.ipynb", "02_broken.ipynb"]
    assert [p.name for p in course.lessons(lessons, ["2"])] == ["02_broken.ipynb"]
    with pytest.raises(ValueError, match="no lesson numbered 07"):
        course.lessons(lessons, ["07"])


def test_course_writes_report_with_results_failures_and_missed_targets(lessons, tmp_path, capsys):
    out = tmp_path / "build"
    code = main(["course", "--solutions", str(lessons), "--out", str(out), "--mode", "quick", "--speed-seconds", "0"])
    assert code == 1  # one lesson failed, one missed its target
    report = json.loads((out / "course-report.json").read_text())
    assert report["mode"] == "quick"
    by_name = {e["lesson"]: e for e in report["lessons"]}
    intro = by_name["00_intro"]
    assert intro["ok"] and intro["targets_missed"] == []
    assert {r["key"]: r["value"] for r in intro["results"]} == {"mode": "quick", "score": 0.97}
    assert by_name["01_missed"]["ok"] and by_name["01_missed"]["targets_missed"] == ["score"]
    assert not by_name["02_broken"]["ok"] and "boom in lesson 02" in by_name["02_broken"]["error"]
    table = (out / "course-report.md").read_text()
    assert "| 00_intro |" in table and "Score 0.97 (>= 0.95: met)" in table and "FAIL" in table
    assert (out / "executed" / "00_intro.ipynb").exists()
    assert not (out / "executed" / "02_broken.ipynb").exists()  # failed runs are not saved as if good


def test_notebooks_execute_stores_outputs_in_place_only_on_success(lessons):
    good, bad = lessons / "00_intro.ipynb", lessons / "02_broken.ipynb"
    before = bad.read_text()
    assert main(["notebooks", "execute", str(good), "--mode", "smoke"]) == 0
    nb = nbformat.read(good, as_version=4)
    assert nb.cells[1].outputs[0]["text"].startswith("mode: smoke")
    assert nb.metadata["kernelspec"]["name"] == "segcourse"
    assert main(["notebooks", "execute", str(bad), "--mode", "smoke"]) == 1
    assert bad.read_text() == before


# --------------------------------------------------------------------------- storing and the gate

def _lesson_90(folder):
    """A toy lesson numbered 90 (no exercises registered): one mode-independent cell, one that is not."""
    folder.mkdir(exist_ok=True)
    return _notebook(folder / "90_toy.ipynb",
                     "from segcourse import get_mode\nfrom segcourse.teaching import results",
                     "print('2 + 2 =', 2 + 2)",
                     "print('mode:', get_mode())",
                     "results.record('score', 0.97, label='Score', target='>= 0.95')")


def test_store_writes_quick_outputs_stamp_tags_and_the_learner_notebook(tmp_path, capsys):
    from coursetools import stored

    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    path = _lesson_90(solutions)
    code = main(["course", "--store", "--solutions", str(solutions), "--notebooks", str(notebooks),
                 "--out", str(tmp_path / "build"), "--speed-seconds", "0"])
    assert code == 0, capsys.readouterr().out
    nb = nbformat.read(path, as_version=4)
    stamp = nb.metadata["segcourse"]
    assert stamp["mode"] == "quick" and stamp["source_hash"] == stored.source_hash(nb)
    assert stamp["results"][0]["key"] == "score" and stamp["compared_cells"] == 2
    assert nb.cells[2].outputs[0]["text"] == "mode: quick\n"             # the stored run is quick mode
    assert stored.compared_cells(nb) == [1, 3]    # the mode-independent cells (the score is fixed here)
    assert stored.stamp_problem(nb, path.name) is None
    learner = nbformat.read(notebooks / path.name, as_version=4)
    assert not any(c.get("outputs") for c in learner.cells if c.cell_type == "code")
    assert not stored.compared_cells(learner)

    # Editing a cell without re-storing is caught, naming the lesson and the command.
    nb.cells[1].source = "print('2 + 2 =', 4)"
    problem = stored.stamp_problem(nb, path.name)
    assert "90_toy.ipynb" in problem and "course --store 90" in problem

    # The gate passes on an unchanged lesson and fails once a stored result differs.
    assert main(["course", "--gate", "--mode", "quick", "--solutions", str(solutions),
                 "--out", str(tmp_path / "gate"), "--speed-seconds", "0"]) == 0
    nb = nbformat.read(path, as_version=4)
    nb.metadata["segcourse"]["results"][0]["value"] = 0.90
    nbformat.write(nb, path)
    capsys.readouterr()
    assert main(["course", "--gate", "--mode", "quick", "--solutions", str(solutions),
                 "--out", str(tmp_path / "gate"), "--speed-seconds", "0"]) == 1
    assert "score: stored 0.9, today 0.97" in capsys.readouterr().out


def test_store_refuses_a_lesson_that_misses_its_target(lessons, tmp_path, capsys):
    path = lessons / "01_missed.ipynb"
    before = path.read_text()
    code = main(["course", "--store", "01", "--solutions", str(lessons), "--notebooks", str(tmp_path / "nb"),
                 "--out", str(tmp_path / "build"), "--speed-seconds", "0"])
    assert code == 1
    assert "not stored" in capsys.readouterr().out
    assert path.read_text() == before


def test_store_only_in_quick_mode(lessons, capsys):
    assert main(["course", "--store", "--mode", "smoke", "--solutions", str(lessons), "--speed-seconds", "0"]) == 2


@pytest.mark.parametrize("stored_value, today, tolerance, drifted", [
    (0.950, 0.950, None, False),          # deterministic and equal
    (0.950, 0.9500001, None, True),       # deterministic results must agree exactly
    (0.950, 0.930, 0.03, False),          # a trained result within its tolerance
    (0.950, 0.910, 0.03, True),           # ... and beyond it
    ("FCN-8s", "FCN-8s", None, False),
    ("FCN-8s", "FCN-32s", None, True),
])
def test_drift_uses_the_stated_tolerance_or_exact(stored_value, today, tolerance, drifted):
    old = [{"key": "k", "value": stored_value}]
    new = [{"key": "k", "value": today}]
    problems = course.drift(old, new, {} if tolerance is None else {"k": tolerance})
    assert bool(problems) is drifted, problems


def test_drift_reports_results_recorded_on_one_side_only():
    problems = course.drift([{"key": "a", "value": 1}], [{"key": "b", "value": 1}], {})
    assert any("a: stored in the solution but not recorded today" in p for p in problems)
    assert any("b: recorded today but not stored" in p for p in problems)


def test_drift_never_compares_a_timing():
    # lesson 10's ONNX/eager latency ratio moved 0.41 -> 0.45 between two runs of the same code on
    # two machines of one kind: a time measures the machine, so the gate shows it and does not judge it
    old = [{"key": "latency_ratio", "value": 0.4101, "timing": True}, {"key": "iou", "value": 0.67}]
    new = [{"key": "latency_ratio", "value": 0.4494, "timing": True}, {"key": "iou", "value": 0.67}]
    assert course.drift(old, new, {}) == []
    # a result stored before it was marked as a timing is not compared either
    assert course.drift([{"key": "latency_ratio", "value": 0.41}], new[:1], {}) == []
    # ... but a timing that disappeared is still reported
    assert course.drift(old, new[1:], {}) == ["latency_ratio: stored in the solution but not recorded today"]
    shown = [dict(r, label=r["key"]) for r in new]
    table = course.format_table([{"lesson": "10_deployment", "seconds": 1.0, "ok": True, "results": shown,
                                 "targets_missed": []}], "quick")
    assert "latency_ratio 0.4494 (timing: not gated)" in table


def test_tolerances_file_is_validated(tmp_path):
    (tmp_path / "tolerances.json").write_text(json.dumps({"lessons": {"04_unet": {"unet_dice": -1}}}))
    with pytest.raises(ValueError, match="04_unet"):
        course.load_tolerances(tmp_path)
    (tmp_path / "tolerances.json").write_text(json.dumps({"lessons": {"04_unet": {"unet_dice": 0.02}}}))
    assert course.load_tolerances(tmp_path) == {"04_unet": {"unet_dice": 0.02}}


def test_expected_seconds_scale_with_the_stored_speed():
    assert course._expected_seconds({"seconds": 100.0, "speed_img_per_s": 60.0}, 30.0) == pytest.approx(200.0)
    assert course._expected_seconds({"seconds": 100.0}, 30.0) is None
    assert course._expected_seconds(None, 30.0) is None


def test_spread_table_and_tolerances_from_runs():
    import importlib.util

    runs = [[{"lesson": "04_unet", "seconds": 90.0,
              "results": [{"key": "dice", "label": "Dice", "value": 0.95}, {"key": "otsu", "label": "Otsu", "value": 0.9}]}],
            [{"lesson": "04_unet", "seconds": 95.0,
              "results": [{"key": "dice", "label": "Dice", "value": 0.953}, {"key": "otsu", "label": "Otsu", "value": 0.9}]}],
            [{"lesson": "04_unet", "seconds": 91.0,
              "results": [{"key": "dice", "label": "Dice", "value": 0.948}, {"key": "otsu", "label": "Otsu", "value": 0.9}]}]]
    rows = course.spread_table(runs)
    assert [r["key"] for r in rows] == ["dice", "otsu"]
    assert rows[0]["range"] == pytest.approx(0.005) and rows[1]["range"] == 0
    assert "| 04_unet | dice | 0.95 | 0.953 | 0.948 | 0.0050 |" in course.format_spread(rows, 3)
    spec = importlib.util.spec_from_file_location("spread", checkout.root() / "benchmarks" / "spread.py")
    spread = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(spread)
    assert spread.tolerance(0.005, 0.01) == 0.01      # the floor
    assert spread.tolerance(0.031, 0.01) == 0.07      # 2 x range, rounded up to two decimals
    assert spread.tolerance(0.02, 0.01) == 0.04


def test_the_course_builds_only_the_backbones_its_lessons_load(tmp_path):
    folder = tmp_path / "solutions"
    folder.mkdir()
    _notebook(folder / "03_a.ipynb", "backbone = course_backbone('vgg_tiny')  # lesson 03", "x = 1")
    _notebook(folder / "05_b.ipynb", 'enc = course_backbone("resnet_tiny")\nagain = course_backbone("vgg_tiny")')
    _notebook(folder / "06_c.ipynb", "# no backbone here: course_backbone is not called")
    assert course.needed_backbones(course.lessons(folder)) == ["vgg_tiny", "resnet_tiny"]
    assert course.needed_backbones(course.lessons(folder, ["06"])) == []
    assert course.needed_backbones(course.lessons(checkout.root() / "solutions", ["03", "05"])) == ["vgg_tiny", "resnet_tiny"]
