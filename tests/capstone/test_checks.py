"""The rubric (segcourse.capstone.checks): every check passes on a complete deliverable and fails, naming the
file or value and what was expected, on a broken one."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from segcourse.capstone import checks as C


def _edit(folder, change):
    path = folder / "results.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


ITEMS = ["split", "cross-validation", "report", "per-class and boundary", "test target", "ONNX parity",
         "served model", "error analysis"]


def test_grade_passes_every_item_of_a_complete_deliverable_and_prints_the_points(good_report):
    said = []
    results = C.grade(good_report, log=said.append)   # smoke mode (tests/conftest.py); starts the service once
    assert [r.name for r in results] == ITEMS
    assert all(results), C.format_table(results)
    table = said[0].splitlines()
    assert "7 of 7 script-graded items passed: 85 of 85 points" in table
    assert "error analysis: 15 points, to be graded by the instructor" in table and table[-1] == "total: out of 100 points"
    assert "POST /predict sample.png: 200" in results[6].message
    assert results[-1].by == "instructor" and results[-1].earned == 0 and "to be graded by the instructor" in \
        results[-1].message
    assert sum(C.POINTS.values()) == 100 and [r.points for r in results] == [C.POINTS[n] for n in ITEMS]


def _set(path, value):
    def change(data):
        *parents, last = path
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    return change


BROKEN_RESULTS = [
    # (check, how the results are broken, words the message must contain)
    (C.check_split, _set(["split", "test"], [0, 1, 2, 3, 4, 5]), "both in the test part and the CV pool"),
    (C.check_split, _set(["split", "n"], 21), "expected each of the 21 images once"),
    (C.check_split, lambda d: d["split"]["folds"][0].append(d["split"]["folds"][1][0]), "exactly one each"),
    (C.check_split, _set(["split", "k"], 1), "expected k >= 2"),
    (C.check_split, _set(["split", "scheme"], "random"), "name how the folds were made"),
    (C.check_split, _set(["data", "dataset"], "isbi2012"), "use scheme 'blocks'"),
    (C.check_split, lambda d: d["split"]["train"][0].append(d["split"]["folds"][0][0]), "trains on 1 of its own"),
    (C.check_cross_validation, lambda d: d["cv"]["folds"].pop(), "4 folds scored, expected k = 5"),
    (C.check_cross_validation, lambda d: d["cv"]["folds"][2].update(miou=float("nan")), "cv fold 2 miou is nan"),
    (C.check_cross_validation, lambda d: d["cv"]["summary"]["miou"].update(mean=0.99), "but the folds give"),
    (C.check_cross_validation, lambda d: d["cv"]["summary"]["fg_dice"].pop("std"), "needs a mean and a std"),
    (C.check_per_class_and_boundary, _set(["test", "iou_per_class"], [0.9]), "one value per class"),
    (C.check_per_class_and_boundary, _set(["test", "dice_per_class"], [0.9, 0.6]), "but model.onnx scores"),
    (C.check_per_class_and_boundary, _set(["data", "classes"], ["background", "cell"]), "expected ['background', "),
    (C.check_per_class_and_boundary, _set(["test", "boundary_iou"], float("nan")), "test boundary_iou is nan, expected a finite number"),
    (C.check_per_class_and_boundary, _set(["test", "hd95"], float("inf")), "test hd95 is inf"),
    (C.check_per_class_and_boundary, lambda d: d.pop("test"), "has no 'test' section"),
]


@pytest.mark.parametrize("check, change, words", BROKEN_RESULTS,
                         ids=[f"{c.rubric_name}-{i}" for i, (c, _, _) in enumerate(BROKEN_RESULTS)])
def test_each_check_fails_on_broken_results_and_says_why(report_copy, check, change, words):
    assert check(report_copy)
    _edit(report_copy, change)
    result = check(report_copy)
    assert not result and words in result.message, result.message


def test_test_target_is_recomputed_from_the_delivered_model_not_read_from_results_json(report_copy):
    measured = C.measure(report_copy)
    assert C.check_test_target(report_copy, {"fg_dice": measured["test"]["fg_dice"]})
    result = C.check_test_target(report_copy, {"fg_dice": measured["test"]["fg_dice"] + 0.01})
    assert not result and "(recomputed from model.onnx)" in result.message and "baseline Otsu" in result.message
    # editing the reported scores upward changes nothing the target reads, and the agreement check catches it
    _edit(report_copy, lambda d: d["test"].update(fg_dice=1.0, miou=1.0, dice_per_class=[1.0, 1.0],
                                                  iou_per_class=[1.0, 1.0]))
    assert not C.check_test_target(report_copy, {"fg_dice": measured["test"]["fg_dice"] + 0.01})
    edited = C.check_per_class_and_boundary(report_copy)
    assert not edited and "but model.onnx scores" in edited.message


def test_the_untrained_model_misses_the_quick_targets_set_from_the_otsu_baseline(report_copy):
    from segcourse.capstone import task

    got = C.measure(report_copy, mode="quick")
    base = task.baseline(*task.test_data("quick"))
    assert got["baseline"] == base and got["targets"] == C.targets("quick")
    assert got["targets"] == {k: round(base[k] + m, 4) for k, m in task.MARGINS.items()}
    result = C.check_test_target(report_copy, measured=got)
    assert not result and "expected >=" in result.message and "baseline Otsu" in result.message
    assert C.targets("smoke") == {}


def test_the_error_analysis_is_left_to_the_instructor_but_must_be_written(report_copy):
    md = report_copy / "report.md"
    text = md.read_text(encoding="utf-8")
    result = C.check_error_analysis(report_copy)
    assert result and result.by == "instructor" and result.earned == 0 and result.points == 15
    start = text.index("## Error analysis")
    end = text.index("## Export and serving")
    md.write_text(text[:start] + "## Error analysis\n\nTODO: write this.\n\n" + text[end:], encoding="utf-8")
    assert "still holds a placeholder ('TODO')" in C.check_error_analysis(report_copy).message
    md.write_text(text[:start] + "## Error analysis\n\nMostly fine.\n\n" + text[end:], encoding="utf-8")
    assert "has 2 words, expected at least 60" in C.check_error_analysis(report_copy).message
    md.write_text(text.replace("## Error analysis", "## Errors"), encoding="utf-8")
    assert "no section '## Error analysis'" in C.check_error_analysis(report_copy).message


def test_report_check_fails_on_a_missing_section_figure_or_file(report_copy):
    assert C.check_report(report_copy)
    md = report_copy / "report.md"
    text = md.read_text(encoding="utf-8")
    md.write_text(text.replace("## Cross-validation", "## CV"), encoding="utf-8")
    assert "no section(s) ## Cross-validation" in C.check_report(report_copy).message
    md.write_text(text.replace("](figures/served.png)", "](figures/other.png)"), encoding="utf-8")
    assert "does not show the figure figures/served.png" in C.check_report(report_copy).message
    md.write_text(text, encoding="utf-8")
    (report_copy / "figures" / "examples.png").unlink()
    assert "links figures/examples.png, which does not exist" in C.check_report(report_copy).message
    (report_copy / "figures" / "examples.png").write_text("not a picture")
    assert "figures/examples.png is not a PNG" in C.check_report(report_copy).message
    md.unlink()
    assert C.check_report(report_copy).message.endswith("report.md does not exist")


def test_onnx_parity_fails_for_a_model_exported_from_other_weights(report_copy, tmp_path):
    import torch

    from segcourse.deploy import export_onnx
    from segcourse.models.unet import unet

    assert C.check_onnx_parity(report_copy)
    torch.manual_seed(1)
    export_onnx(unet(in_channels=3, num_classes=2, depth=1, base_channels=4).eval(), report_copy / C.ONNX_FILE,
                sample_size=32)
    result = C.check_onnx_parity(report_copy)
    assert not result and "was it exported from this checkpoint?" in result.message
    (report_copy / C.CHECKPOINT_FILE).unlink()
    assert C.check_onnx_parity(report_copy).message.endswith("model.safetensors does not exist")


def test_service_check_fails_without_the_model_or_the_sample(report_copy):
    (report_copy / C.SAMPLE_FILE).unlink()
    assert C.check_service(report_copy).message.endswith("sample.png does not exist")
    (report_copy / C.ONNX_FILE).unlink()
    assert C.check_service(report_copy).message.endswith("model.onnx does not exist")


def test_what_the_unchanged_scaffold_delivers_fails_every_item_and_says_what_is_missing(tmp_path):
    # The learner notebook run unchanged writes no report folder (its training, export and report cells are the
    # learner's to write); its grading cell grades build/capstone-report-<mode>, which is then missing.
    said = []
    results = C.grade(tmp_path / "capstone-report-smoke", log=said.append)
    assert [r.name for r in results] == ITEMS and not any(results)
    assert sum(r.earned for r in results) == 0 and "0 of 7 script-graded items passed: 0 of 85 points" in said[0]
    assert "results.json does not exist" in results[0].message
    assert "model.onnx does not exist: the test scores are computed from the delivered model" in results[3].message
    assert results[5].message.endswith("model.onnx does not exist")
    assert results[7].message.endswith("report.md does not exist")
    assert "nothing to grade yet" in said[0]
    assert said[0].startswith(f"{tmp_path / 'capstone-report-smoke'} does not exist: nothing has been delivered yet")


def test_a_folder_with_only_results_json_fails_every_recomputed_item(good_report, tmp_path):
    import shutil

    folder = tmp_path / "only-json"
    folder.mkdir()
    shutil.copy(good_report / "results.json", folder / "results.json")
    results = C.grade(folder, serve=False, log=None)
    assert [r.passed for r in results] == [True, True, False, False, False, False, False, False]
    assert results[-2].message == "not run (serve=False)"


def test_parity_tolerance():
    assert math.isclose(C.PARITY_TOLERANCE, 1e-4)


def test_the_brief_states_the_rubric_the_checks_use():
    brief = (Path(__file__).resolve().parents[2] / "docs" / "capstone.md").read_text(encoding="utf-8")
    for check in C.CHECKS:
        name = check.rubric_name
        assert f"| `{name}` | {C.POINTS[name]} |" in brief, f"docs/capstone.md does not describe {name!r} with its points"
    assert f"within {C.PARITY_TOLERANCE:.0e}".replace("e-04", "e-4") in brief
    from segcourse.capstone.task import MARGINS

    assert f"| nucleus Dice | ≥ Otsu's + {MARGINS['fg_dice']} |" in brief
    assert f"| nucleus Boundary IoU | ≥ Otsu's + {MARGINS['boundary_iou']} |" in brief
    assert "solutions/11_capstone" not in brief, "the brief handed to learners must not link the worked solution"
