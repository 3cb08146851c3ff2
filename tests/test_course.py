"""The course runner executes lessons, collects their key results and reports failures."""

import json

import nbformat
import pytest

from segcourse import course
from segcourse.__main__ import main


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
              "from segcourse import get_mode, report",
              "report.record('mode', get_mode())\nreport.record('score', 0.97, label='Score', target='>= 0.95')")
    _notebook(folder / "01_missed.ipynb", "from segcourse import report\nreport.record('score', 0.5, target='>= 0.9')")
    _notebook(folder / "02_broken.ipynb", "x = 1", "raise RuntimeError('boom in lesson 02')")
    (folder / "notes.ipynb").write_text("{}")  # not a lesson: no number prefix
    return folder


def test_lessons_are_found_in_order_and_filtered(lessons):
    assert [p.name for p in course.lessons(lessons)] == ["00_intro.ipynb", "01_missed.ipynb", "02_broken.ipynb"]
    assert [p.name for p in course.lessons(lessons, ["2"])] == ["02_broken.ipynb"]
    with pytest.raises(ValueError, match="no lesson numbered 07"):
        course.lessons(lessons, ["07"])


@pytest.mark.slow
def test_course_writes_report_with_results_failures_and_missed_targets(lessons, tmp_path, capsys):
    out = tmp_path / "build"
    code = main(["course", "--solutions", str(lessons), "--out", str(out), "--mode", "quick"])
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


@pytest.mark.slow
def test_notebooks_execute_stores_outputs_in_place_only_on_success(lessons):
    good, bad = lessons / "00_intro.ipynb", lessons / "02_broken.ipynb"
    before = bad.read_text()
    assert main(["notebooks", "execute", str(good), "--mode", "smoke"]) == 0
    nb = nbformat.read(good, as_version=4)
    assert nb.cells[1].outputs[0]["text"].startswith("mode: smoke")
    assert nb.metadata["kernelspec"]["name"] == "segcourse"
    assert main(["notebooks", "execute", str(bad), "--mode", "smoke"]) == 1
    assert bad.read_text() == before
