"""The report folder (segcourse.capstone.report): its contents, the atomic write, refusing a folder that is not a report."""

from __future__ import annotations

import json

import pytest

from segcourse.capstone.crossval import make_folds
from segcourse.capstone.report import KIND, REQUIRED_FIGURES, SECTIONS, is_report_folder, read_results, write_report

from .conftest import results_for


def test_report_has_every_section_figure_and_file(good_report, model_files):
    text = (good_report / "report.md").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f"\n## {section}\n" in text
    for name in REQUIRED_FIGURES:
        assert f"](figures/{name}.png)" in text
        assert (good_report / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    for name in model_files:
        assert (good_report / name).is_file()
    results = read_results(good_report)
    assert results["kind"] == KIND and results["figures"]["folds"] == "figures/folds.png"
    # the per-fold table has one row per fold and the summary row; per-class rows name the classes
    iou, dice = results["test"]["iou_per_class"][1], results["test"]["dice_per_class"][1]
    assert text.count("\n| ") >= 1 + 5 + 1 and f"| nucleus | {iou:.4f} | {dice:.4f} |" in text
    assert "mean ± std (min–max)" in text


def test_missing_export_and_serving_are_reported_as_not_done(tmp_path):
    results = results_for(make_folds(20, 5, seed=0))
    del results["export"], results["serving"]
    folder = write_report(tmp_path / "r", results)
    text = (folder / "report.md").read_text(encoding="utf-8")
    assert "* export: not done" in text and "* serving: not done" in text


def test_a_required_section_missing_is_a_clear_error_and_writes_nothing(tmp_path):
    results = results_for(make_folds(20, 5, seed=0))
    del results["cv"]
    with pytest.raises(ValueError, match="missing the section"):
        write_report(tmp_path / "r", results)
    assert not (tmp_path / "r").exists()


def test_refuses_to_replace_a_folder_that_is_not_a_report(tmp_path):
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.md").write_text("precious")
    with pytest.raises(FileExistsError, match="not a capstone report folder"):
        write_report(other, results_for(make_folds(20, 5, seed=0)))
    assert (other / "chapter1.md").read_text() == "precious"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        write_report(tmp_path / "afile", results_for(make_folds(20, 5, seed=0)))


def test_replaces_an_earlier_report(tmp_path):
    folder = write_report(tmp_path / "r", results_for(make_folds(20, 5, seed=0)))
    (folder / "stale.txt").write_text("from the first run")
    results = results_for(make_folds(20, 5, seed=0))
    results["title"] = "second run"
    write_report(folder, results)
    assert read_results(folder)["title"] == "second run" and not (folder / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["r"]          # no temporary folder left behind


class _Broken:
    def savefig(self, *args, **kwargs):
        raise RuntimeError("the figure could not be drawn")


def test_a_failure_half_way_keeps_the_previous_report_whole(tmp_path):
    folder = write_report(tmp_path / "r", results_for(make_folds(20, 5, seed=0)))
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    results = results_for(make_folds(20, 5, seed=0))
    results["title"] = "never written"
    with pytest.raises(RuntimeError, match="could not be drawn"):
        write_report(folder, results, figures={"folds": _Broken()})
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    assert is_report_folder(folder) and [p.name for p in tmp_path.iterdir()] == ["r"]
    with pytest.raises(RuntimeError):
        write_report(tmp_path / "new", results, figures={"folds": _Broken()})
    assert not (tmp_path / "new").exists()


def test_file_names_must_be_plain_and_files_must_exist(tmp_path):
    results = results_for(make_folds(20, 5, seed=0))
    with pytest.raises(ValueError, match="plain file name"):
        write_report(tmp_path / "r", results, files={"../escape.onnx": tmp_path})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_report(tmp_path / "r", results, files={"model.onnx": tmp_path / "nope.onnx"})


def test_read_results_names_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="results.json does not exist"):
        read_results(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_results(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="JSON object"):
        read_results(tmp_path)


def test_the_report_shows_the_baseline_the_targets_the_paired_comparison_and_the_error_analysis(tmp_path):
    results = results_for(make_folds(20, 5, scheme="blocks", gap=1))
    results["baseline"] = {"method": "Otsu", "test": {"miou": 0.7, "fg_dice": 0.71, "boundary_iou": 0.4, "hd95": 3.0},
                           "targets": {"fg_dice": 0.72, "boundary_iou": 0.45}}
    results["cv"]["comparison"] = ["U-Net beats Otsu on nucleus Dice: mean paired difference ..."]
    text = (write_report(tmp_path / "r", results) / "report.md").read_text(encoding="utf-8")
    assert "| metric | final model | baseline (Otsu) | target |" in text
    assert "| foreground Dice | 0.7500 | 0.7100 | >= 0.7200 |" in text and "| mIoU | 0.7500 | 0.7000 | - |" in text
    assert "* U-Net beats Otsu on nucleus Dice: mean paired difference ..." in text
    assert "contiguous blocks, gap 1" in text
    analysis = text.split("## Error analysis\n", 1)[1].split("\n## ", 1)[0]
    assert results["error_analysis"] in analysis
