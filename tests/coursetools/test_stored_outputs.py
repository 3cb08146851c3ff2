"""The solutions' stored outputs are a current quick-mode run, show nothing wrong, and stay light.

``python -m coursetools course --store NN`` (``make solutions``) writes them; see ``coursetools/stored.py``.
"""

from __future__ import annotations

import base64
from pathlib import Path

import nbformat
import pytest

from coursetools import checkout, stored
from coursetools.course import load_tolerances

ROOT = checkout.root(Path(__file__).parent)  # the checkout these tests belong to
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"
PATHS = sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))
#: Size limits that keep the repository light: one figure, and all of solutions/.
MAX_IMAGE_BYTES = 800_000   # a grid of photo-like panels at the default 100 dpi is 300-750 kB
MAX_SOLUTIONS_BYTES = 14_000_000


def _read(path):
    return nbformat.read(path, as_version=4)


def test_there_are_lessons():
    assert len(PATHS) >= 8, PATHS


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_solution_stamp_is_quick_mode_and_current(path):
    problem = stored.stamp_problem(_read(path), path.name)
    assert problem is None, problem


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_stored_outputs_show_no_error_failed_check_or_missed_target(path):
    nb = _read(path)
    problems = stored.output_problems(nb)
    assert not problems, f"{path.name} shows:\n" + "\n".join(problems)
    stamp = stored.stamp_of(nb) or {}
    missed = [r["key"] for r in stamp.get("results", []) if r.get("met") is False]
    assert not missed, f"{path.name}: stored results missed their targets: {missed}"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_every_lesson_compares_its_mode_independent_cells(path):
    nb = _read(path)
    compared = stored.compared_cells(nb)
    assert compared, f"{path.name}: nbval compares no cell; re-store it (`python -m coursetools course --store {path.name[:2]}`)"
    assert (stored.stamp_of(nb) or {}).get("compared_cells") == len(compared)
    for i in compared:
        cell = nb.cells[i]
        assert cell.cell_type == "code" and cell.outputs, f"{path.name}: compared cell {i} has no stored output"
    legacy = [i for i, c in enumerate(nb.cells) if "nbval-ignore-output" in c.metadata.get("tags", [])]
    assert not legacy, f"{path.name}: cells {legacy} still carry hand-chosen nbval-ignore-output tags"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_learner_notebooks_carry_no_outputs_and_compare_nothing(path):
    learner = _read(NOTEBOOKS / path.name)
    assert all(not c.get("outputs") for c in learner.cells if c.cell_type == "code")
    assert not stored.compared_cells(learner), "learner notebooks have no outputs to compare with"
    assert stored.STAMP_KEY not in learner.metadata


def test_figures_and_solutions_stay_light():
    total = sum(p.stat().st_size for p in SOLUTIONS.glob("*.ipynb"))
    assert total <= MAX_SOLUTIONS_BYTES, f"solutions/ is {total / 1e6:.1f} MB (limit {MAX_SOLUTIONS_BYTES / 1e6:.0f} MB)"
    for path in PATHS:
        for i, cell in enumerate(_read(path).cells):
            for output in cell.get("outputs", []):
                png = output.get("data", {}).get("image/png")
                if png:
                    size = len(base64.b64decode(png))
                    assert size <= MAX_IMAGE_BYTES, (
                        f"{path.name} cell {i}: a {size / 1e3:.0f} kB figure (limit {MAX_IMAGE_BYTES / 1e3:.0f} kB): "
                        "use a smaller figsize or fewer panels")


def test_tolerances_name_stored_results():
    tolerances = load_tolerances(SOLUTIONS)
    stems = {p.stem: p for p in PATHS}
    for lesson, table in tolerances.items():
        assert lesson in stems, f"solutions/tolerances.json names a lesson that does not exist: {lesson}"
        keys = {r["key"] for r in (stored.stamp_of(_read(stems[lesson])) or {}).get("results", [])}
        unknown = set(table) - keys
        assert not unknown, f"solutions/tolerances.json: {lesson} has no stored results {sorted(unknown)}"


def test_compared_cell_counts_are_reported(capsys):
    rows = []
    for path in PATHS:
        nb = _read(path)
        code = sum(c.cell_type == "code" for c in nb.cells)
        rows.append((path.stem, len(stored.compared_cells(nb)), code))
    with capsys.disabled():
        print("\nnbval compares (mode-independent cells of the stored quick-mode run):")
        for stem, n, code in rows:
            print(f"  {stem:28} {n:3d} of {code:3d} code cells")
    assert all(n > 0 for _, n, _ in rows)
