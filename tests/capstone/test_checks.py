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


def test_grade_passes_every_item_of_a_complete_deliverable_and_prints_the_table(good_report):
    said = []
    results = C.grade(good_report, {"miou": 0.7, "fg_dice": 0.7}, log=said.append)   # starts the service once
    assert [r.name for r in results] == ["split", "cross-validation", "report", "per-class and boundary",
                                         "test target", "ONNX parity", "served model"]
    assert all(results), C.format_table(results)
    assert said[0].splitlines()[-1] == "7 of 7 rubric items passed"
    assert "POST /predict sample.png: 200" in results[-1].message


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
    (C.check_split, _set(["split", "test"], [0, 1, 2, 3, 4, 5]), "both in the test split and the CV pool"),
    (C.check_split, _set(["split", "n"], 21), "expected each of the 21 images once"),
    (C.check_split, lambda d: d["split"]["folds"][0].append(d["split"]["folds"][1][0]), "exactly one each"),
    (C.check_split, _set(["split", "k"], 1), "expected k >= 2"),
    (C.check_cross_validation, lambda d: d["cv"]["folds"].pop(), "4 folds scored, expected k = 5"),
    (C.check_cross_validation, lambda d: d["cv"]["folds"][2].update(miou=float("nan")), "cv fold 2 miou is nan"),
    (C.check_cross_validation, lambda d: d["cv"]["summary"]["miou"].update(mean=0.99), "but the folds give"),
    (C.check_cross_validation, lambda d: d["cv"]["summary"]["fg_dice"].pop("std"), "needs a mean and a std"),
    (C.check_per_class_and_boundary, _set(["test", "iou_per_class"], [0.9]), "one value per class"),
    (C.check_per_class_and_boundary, _set(["test", "dice_per_class"], [0.9, 0.6]), "Dice = 2 IoU / (1 + IoU)"),
    (C.check_per_class_and_boundary, _set(["test", "boundary_iou"], float("nan")), "test Boundary IoU is nan"),
    (C.check_per_class_and_boundary, _set(["test", "hd95"], float("inf")), "expected a finite distance"),
    (C.check_per_class_and_boundary, lambda d: d.pop("test"), "has no 'test' section"),
]


@pytest.mark.parametrize("check, change, words", BROKEN_RESULTS,
                         ids=[f"{c.rubric_name}-{i}" for i, (c, _, _) in enumerate(BROKEN_RESULTS)])
def test_each_check_fails_on_broken_results_and_says_why(report_copy, check, change, words):
    assert check(report_copy)
    _edit(report_copy, change)
    result = check(report_copy)
    assert not result and words in result.message, result.message


def test_test_target_fails_below_the_target_and_on_nan(report_copy):
    assert C.check_test_target(report_copy, {"miou": 0.75})
    result = C.check_test_target(report_copy, {"miou": 0.8})
    assert not result and result.message == "test miou = 0.7500, expected >= 0.8"
    _edit(report_copy, _set(["test", "fg_dice"], float("nan")))
    assert "test fg_dice is nan" in C.check_test_target(report_copy, {"fg_dice": 0.0}).message


def test_targets_are_those_of_the_mode():
    assert C.targets("quick") == C.TARGETS["quick"] and C.targets("smoke") == {"miou": 0.0, "fg_dice": 0.0}
    with pytest.raises(ValueError, match="no targets for mode 'fast'"):
        C.targets("fast")


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


def test_a_folder_that_is_no_report_fails_every_check_without_raising(tmp_path):
    results = C.grade(tmp_path, {"miou": 0.5}, serve=False, log=None)
    assert not any(results) and len(results) == len(C.CHECKS)
    assert "results.json does not exist" in results[0].message
    assert results[-1].message == "not run (serve=False)"


def test_parity_tolerance():
    assert math.isclose(C.PARITY_TOLERANCE, 1e-4)


def test_the_brief_states_the_targets_and_the_rubric_the_checks_use():
    brief = (Path(__file__).resolve().parents[2] / "docs" / "capstone.md").read_text(encoding="utf-8")
    for mode in ("quick", "full"):
        row = next(line for line in brief.splitlines() if line.startswith(f"| {mode} "))
        assert row.count("≥") == 2 and f"≥ {C.TARGETS[mode]['miou']} " in row and \
            f"≥ {C.TARGETS[mode]['fg_dice']} " in row, row
    for check in C.CHECKS:
        assert f"| `{check.rubric_name}` |" in brief, f"docs/capstone.md does not describe {check.rubric_name!r}"
    assert f"within {C.PARITY_TOLERANCE:.0e}".replace("e-04", "e-4") in brief
