"""``python -m segcourse train``: end to end in smoke mode, and its error messages."""

from __future__ import annotations

import json

import pytest
import torch

from segcourse.__main__ import main
from segcourse.train import load_checkpoint, predict
from segcourse.train.registry import available_models


@pytest.fixture(autouse=True)
def _smoke(monkeypatch):
    monkeypatch.setenv("SEGCOURSE_MODE", "smoke")  # --mode writes the variable; keep it local to each test


def test_train_command_writes_a_self_describing_checkpoint(tmp_path, capsys):
    name = "unet"
    out = tmp_path / "ckpt" / "model.safetensors"
    code = main(["train", name, "--data", "cells", "--out", str(out), "--mode", "smoke", "--epochs", "2",
                 "--size", "32", "--train-count", "4", "--val-count", "2", "--batch-size", "2", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "training on cpu" in printed and "saved the best model" in printed
    history = json.loads(out.with_name("model.history.json").read_text())
    assert [r["epoch"] for r in history["records"]] == [1, 2]
    model, config = load_checkpoint(out)  # rebuilt from the stored builder name and arguments
    assert config["model"] == name and config["data"] == "cells" and config["model_kwargs"]["num_classes"] == 2
    assert config["image_size"] == [32, 32] and config["classes"] == ["background", "nucleus"]
    best = max(history["records"], key=lambda r: r["val_miou"])
    assert config["epoch"] == best["epoch"]
    assert predict(model, torch.rand(1, 3, 32, 32)).shape == (1, 32, 32)


def test_train_command_resumes(tmp_path, capsys):
    name = "unet"
    out = tmp_path / "m.safetensors"
    common = ["train", name, "--data", "shapes", "--out", str(out), "--size", "32", "--train-count", "4",
              "--val-count", "2", "--batch-size", "4", "--no-progress", "--mode", "smoke"]
    assert main([*common, "--epochs", "1"]) == 0
    assert main([*common, "--epochs", "2", "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out
    history = json.loads(out.with_name("m.history.json").read_text())
    assert [r["epoch"] for r in history["records"]] == [1, 2]


@pytest.mark.parametrize("argv, message", [
    (["no-such-model", "--data", "cells"], "unknown model 'no-such-model'"),
    (["unet", "--data", "nowhere"], "nowhere"),
    (["unet", "--data", "cells", "--model-kwargs", "{oops"], "JSON object"),
    (["unet", "--data", "cells", "--loss", "magic"], "unknown loss"),
])
def test_train_command_reports_bad_arguments(tmp_path, capsys, argv, message):
    code = main(["train", *argv, "--out", str(tmp_path / "x.safetensors"), "--size", "32", "--train-count", "2",
                 "--val-count", "2", "--no-progress"])
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("name", ["unet", "fcn", "deeplabv3", "deeplabv3plus"])
def test_every_preset_builds_a_working_model(name):
    from segcourse.train.cli import PRESETS
    from segcourse.train.registry import build_model

    assert name in available_models(), f"segcourse.models.{name} is not registered"
    for preset in PRESETS[name]:  # smoke, quick, full
        model = build_model(name, **preset, num_classes=3).eval()
        with torch.no_grad():
            assert model(torch.rand(1, 3, 64, 64)).shape == (1, 3, 64, 64), preset
