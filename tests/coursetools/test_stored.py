"""coursetools.stored: source hashes, the compared-cells policy and the outputs a solution may not show."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from coursetools import stored


def _nb(*cells):
    nb = new_notebook()
    nb.cells = list(cells)
    return nb


def _code(source, *texts, tags=()):
    cell = new_code_cell(source)
    cell.outputs = [new_output("stream", name="stdout", text=t) for t in texts]
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def test_source_hash_covers_sources_and_types_not_outputs_or_tags():
    a = _nb(new_markdown_cell("# title"), _code("print(1)", "1\n"))
    b = _nb(new_markdown_cell("# title"), _code("print(1)", "other output\n", tags=["nbval-check-output"]))
    assert stored.source_hash(a) == stored.source_hash(b)
    c = _nb(new_markdown_cell("# title!"), _code("print(1)"))
    d = _nb(new_code_cell("# title"), _code("print(1)"))
    assert len({stored.source_hash(a), stored.source_hash(c), stored.source_hash(d)}) == 3


def test_mode_independent_cells_compare_sanitized_text_and_skip_figures():
    patterns = stored.sanitize_patterns()
    figure = new_code_cell("plt.plot()")
    figure.outputs = [new_output("display_data", data={"text/plain": "<Figure size 640x480 with 1 Axes>",
                                                      "image/png": "AAAA"})]
    quick = _nb(_code("print(shape)", "(4, 96, 96)\n"), _code("print(t)", "took 12.5 s\n"),
                _code("print(dice)", "0.951\n"), figure, new_markdown_cell("text"), _code("x = 1"))
    smoke = _nb(_code("print(shape)", "(4, 96, 96)\n"), _code("print(t)", "took 0.3 s\n"),
                _code("print(dice)", "0.402\n"), figure, new_markdown_cell("text"), _code("x = 1"))
    # cell 1 differs only in a duration, which the sanitize file replaces; a figure or no output is not compared
    assert stored.mode_independent_cells(quick, smoke, patterns) == [0, 1]


def test_streams_are_merged_before_comparing():
    one = _code("", "a\nb\n")
    two = _code("", "a\n", "b\n")
    assert stored.comparable_outputs(one, []) == stored.comparable_outputs(two, [])


def test_set_compared_cells_reports_gains_and_losses():
    nb = _nb(_code("a"), _code("b", tags=["nbval-check-output", "hint"]), _code("c"))
    gained, lost = stored.set_compared_cells(nb, [0, 2])
    assert (gained, lost) == ([0, 2], [1])
    assert [c.metadata.get("tags") for c in nb.cells] == [["nbval-check-output"], ["hint"], ["nbval-check-output"]]
    assert stored.compared_cells(nb) == [0, 2]


@pytest.mark.parametrize("text, meaning", [
    ("[FAIL] datasets   No module named 'segcourse.data.paths'", "failed environment check line"),
    ("environment check passed: False", "failed environment check"),
    ("U-Net foreground Dice: 0.3441 (target >= 0.95: MISSED)", "missed quality target"),
    ("Exercise 4.2 (Pad): failed ✗", "failed exercise check"),
    ("Exercise 4.2 (Pad): not attempted -- replace the raise", "left unsolved"),
    ("Traceback (most recent call last):", "traceback"),
])
def test_output_problems_finds_what_a_solution_may_not_show(text, meaning):
    problems = stored.output_problems(_nb(new_markdown_cell("x"), _code("x", "fine\n", text + "\n")))
    assert len(problems) == 1 and problems[0].startswith("cell 1:") and meaning in problems[0]


def test_error_outputs_are_problems_and_a_demonstration_cell_may_show_a_failed_check():
    cell = new_code_cell("1/0")
    cell.outputs = [new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])]
    assert "ZeroDivisionError" in stored.output_problems(_nb(cell))[0]
    demo = _code("check('0.1', wrong)", "Exercise 0.1 (x): failed ✗\n", "Exercise 0.1 (x): not attempted\n",
                 tags=[stored.SHOWS_FAILURE_TAG])
    assert stored.output_problems(_nb(demo)) == []
    missed = _code("record(...)", "Dice: 0.3 (target >= 0.9: MISSED)\n", tags=[stored.SHOWS_FAILURE_TAG])
    assert len(stored.output_problems(_nb(missed))) == 1     # the tag never excuses a missed target


def test_stamp_problem_names_missing_smoke_and_stale_stamps():
    nb = _nb(_code("print(1)", "1\n"))
    assert "no stamp" in stored.stamp_problem(nb, "04_unet.ipynb")
    nb.metadata["segcourse"] = {"mode": "smoke", "source_hash": stored.source_hash(nb)}
    assert "'smoke'-mode run" in stored.stamp_problem(nb, "04_unet.ipynb")
    nb.metadata["segcourse"] = stored.make_stamp(nb, seconds=3.21, results=[], speed=50.0)
    assert stored.stamp_problem(nb, "04_unet.ipynb") is None
    nb.cells[0].source = "print(2)"
    message = stored.stamp_problem(nb, "04_unet.ipynb")
    assert "04_unet.ipynb" in message and "course --store 04" in message and "make solutions LESSONS=04" in message


def test_stamp_round_trips_through_a_file(tmp_path):
    nb = _nb(_code("print(1)", "1\n", tags=["nbval-check-output"]))
    nb.metadata["segcourse"] = stored.make_stamp(nb, seconds=1.0, results=[{"key": "k", "value": 1}], speed=None)
    nbformat.write(nb, tmp_path / "x.ipynb")
    back = nbformat.read(tmp_path / "x.ipynb", as_version=4)
    assert stored.stamp_problem(back, "x.ipynb") is None and stored.stamp_of(back)["compared_cells"] == 1
