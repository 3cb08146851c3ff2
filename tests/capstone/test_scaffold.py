"""The learner's capstone notebook is a scaffold: it gives data, folds, baseline, formats and the grading cell, and
leaves the project (training, cross-validation, final model, error analysis, export, serving, report) to the learner.
What the unchanged scaffold delivers (no report folder) failing the rubric is tested in test_checks.py."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[2]
#: Calls that do the learner's work: none of them may run in the scaffold.
WORK = {"fit", "train_recipe", "score", "summarize", "compare_folds", "save_checkpoint", "export_onnx",
        "max_logit_difference", "ServiceProcess", "write_report", "error_breakdown"}


def _calls(path: Path) -> set[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    called = set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        tree = ast.parse(TransformerManager().transform_cell("".join(cell["source"])))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                called.add(func.id if isinstance(func, ast.Name) else getattr(func, "attr", ""))
    return called


@pytest.mark.parametrize("name", ["11_capstone.ipynb"])
def test_the_scaffold_does_none_of_the_project_and_the_solution_does_all_of_it(name):
    assert not _calls(ROOT / "notebooks" / name) & WORK, sorted(_calls(ROOT / "notebooks" / name) & WORK)
    assert WORK <= _calls(ROOT / "solutions" / name), sorted(WORK - _calls(ROOT / "solutions" / name))


def test_the_scaffold_gives_data_folds_baseline_and_grading_and_does_not_link_the_solution():
    text = (ROOT / "notebooks" / "11_capstone.ipynb").read_text(encoding="utf-8")
    for given in ("task.pool_data()", "task.test_data()", "make_folds(", "task.baseline(", "grade(REPORT_DIR)",
                  "Your turn", "Project scaffold"):
        assert given in text, given
    assert "solutions/11_capstone" not in text


def test_the_scaffold_grades_its_own_folder_never_the_worked_solution_s():
    # make test-notebooks runs solutions/ before notebooks/ in one checkout: were the folders the same, the
    # unchanged scaffold would grade the solution's report and pass.
    learner = (ROOT / "notebooks" / "11_capstone.ipynb").read_text(encoding="utf-8")
    solution = (ROOT / "solutions" / "11_capstone.ipynb").read_text(encoding="utf-8")
    assert 'f\\"capstone-report-{get_mode()}\\"' in learner and "capstone-solution-" not in learner
    assert 'f\\"capstone-solution-{get_mode()}\\"' in solution
