import json
import math

import pytest

from segcourse.teaching import results


@pytest.mark.parametrize("value,target,met", [
    (0.96, ">= 0.95", True), (0.95, ">= 0.95", True), (0.94, ">= 0.95", False),
    (2.0, "< 3", True), (3.0, "< 3", False), (3.0, "<= 3", True), (math.nan, ">= 0", False),
])
def test_target_met(value, target, met):
    assert results.target_met(value, target) is met


def test_bad_target_is_rejected():
    with pytest.raises(ValueError, match="not of the form"):
        results.target_met(1.0, "about 0.9")


def test_record_prints_and_appends_to_the_report_file(tmp_path, monkeypatch, capsys):
    path = tmp_path / "r.json"
    monkeypatch.setenv("SEGCOURSE_REPORT", str(path))
    assert results.record("unet_dice", 0.961234, label="U-Net Dice", target=">= 0.95") == 0.961234
    results.record("epochs", 3)
    results.record("unet_dice", 0.5, label="U-Net Dice", target=">= 0.95")  # same key replaces
    out = capsys.readouterr().out
    assert "U-Net Dice: 0.9612 (target >= 0.95: met)" in out
    assert "U-Net Dice: 0.5000 (target >= 0.95: MISSED)" in out
    entries = json.loads(path.read_text())
    assert [e["key"] for e in entries] == ["epochs", "unet_dice"]
    assert entries[1] == {"key": "unet_dice", "label": "U-Net Dice", "value": 0.5, "target": ">= 0.95", "met": False}
    assert entries[0]["value"] == 3 and isinstance(entries[0]["value"], int)
    assert results.read(path) == entries


def test_record_marks_a_timing(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    monkeypatch.setenv("SEGCOURSE_REPORT", str(path))
    results.record("latency_ratio", 0.41, timing=True, quiet=True)
    results.record("iou", 0.67, quiet=True)
    assert results.read(path) == [{"key": "latency_ratio", "label": "latency_ratio", "value": 0.41, "timing": True},
                                 {"key": "iou", "label": "iou", "value": 0.67}]


def test_record_without_report_file_only_prints(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("SEGCOURSE_REPORT", raising=False)
    results.record("note", "hello")
    assert capsys.readouterr().out == "note: hello\n"
    assert results.read(tmp_path / "absent.json") == []


@pytest.mark.parametrize("key,value,kwargs,error", [
    ("bad key", 1.0, {}, ValueError),
    ("k", object(), {}, TypeError),
    ("k", "text", {"target": ">= 1"}, ValueError),
])
def test_record_rejects_bad_input(key, value, kwargs, error):
    with pytest.raises(error):
        results.record(key, value, quiet=True, **kwargs)
