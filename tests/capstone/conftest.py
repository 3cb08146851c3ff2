"""A small but complete capstone deliverable (an untrained tiny U-Net, its real smoke-mode test scores, made-up
fold scores), built once per session. Graded with ``mode="smoke"``: the smoke test images and no target."""

from __future__ import annotations

import shutil

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from segcourse.capstone.checks import CHECKPOINT_FILE, ONNX_FILE, SAMPLE_FILE
from segcourse.capstone.crossval import make_folds, summarize
from segcourse.capstone.report import write_report

SIZE = 32


def _figure():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    return fig


#: An error analysis long enough for the script (what it says is the instructor's to grade).
ERROR_ANALYSIS = " ".join(["The errors sit along the outlines of the nuclei and where two nuclei touch."] * 6)


def results_for(split: dict, test: dict | None = None) -> dict:
    """Results that pass every check but the recomputed ones; ``test``: the model's measured test scores (default:
    made-up ones, IoU 0.9 / 0.6 -> Dice 2 IoU / (1 + IoU) = 0.947368... / 0.75)."""
    rng = np.random.default_rng(0)
    folds = [{"fold": i, "train": len(split["pool"]) - len(f), "val": len(f),
              "miou": float(0.8 + 0.01 * rng.random()), "fg_dice": float(0.85 + 0.01 * rng.random()),
              "boundary_iou": float(0.6 + 0.01 * rng.random())} for i, f in enumerate(split["folds"])]
    metrics = ["miou", "fg_dice", "boundary_iou"]
    return {"title": "test report", "mode": "smoke",
            "data": {"dataset": "cells", "images": split["n"], "size": [SIZE, SIZE], "classes": ["background", "nucleus"],
                     "source": "synthetic"},
            "model": {"name": "unet", "kwargs": {"depth": 1}, "parameters": 1000, "recipe": "none", "final": "none"},
            "split": split,
            "cv": {"metrics": metrics, "folds": folds, "summary": summarize([{m: f[m] for m in metrics} for f in folds])},
            "test": test or {"images": 12, "miou": 0.75, "fg_dice": 0.75, "iou_per_class": [0.9, 0.6],
                             "dice_per_class": [2 * 0.9 / 1.9, 0.75], "boundary_iou": 0.5, "hd95": 2.5},
            "error_analysis": ERROR_ANALYSIS,
            "export": {"onnx": ONNX_FILE, "checkpoint": CHECKPOINT_FILE, "sizes": [[SIZE, SIZE]],
                       "max_logit_difference": 1e-7, "tolerance": 1e-4},
            "serving": {"route": "/predict", "status": 200, "sample": SAMPLE_FILE, "equal_to_onnx": True,
                        "pixels_differing_from_eager": 0}}


@pytest.fixture(scope="session")
def model_files(tmp_path_factory):
    """``{name: path}``: a tiny U-Net's checkpoint, its ONNX export and a sample PNG."""
    from segcourse.deploy import export_onnx
    from segcourse.deploy.load import png_bytes
    from segcourse.models.unet import unet
    from segcourse.train import save_checkpoint

    folder = tmp_path_factory.mktemp("capstone-model")
    torch.manual_seed(0)
    kwargs = {"in_channels": 3, "num_classes": 2, "depth": 1, "base_channels": 4}
    model = unet(**kwargs).eval()
    ckpt = save_checkpoint(folder / CHECKPOINT_FILE, model, config={"model": "unet", "model_kwargs": kwargs})
    onnx_path = export_onnx(model, folder / ONNX_FILE, sample_size=SIZE)
    sample = folder / SAMPLE_FILE
    sample.write_bytes(png_bytes(np.random.default_rng(1).integers(0, 256, (SIZE, SIZE + 3, 3), dtype=np.uint8)))
    return {CHECKPOINT_FILE: ckpt, ONNX_FILE: onnx_path, SAMPLE_FILE: sample}


@pytest.fixture(scope="session")
def good_report(tmp_path_factory, model_files):
    """A report folder that passes every rubric item."""
    from segcourse.capstone.checks import measure

    folder = tmp_path_factory.mktemp("capstone") / "report"
    split = make_folds(20, 5, seed=0)
    figures = {name: _figure() for name in ("folds", "examples", "served")}
    measured = measure(model_files[ONNX_FILE].parent, mode="smoke")["test"]
    write_report(folder, results_for(split, measured), figures=figures, files=model_files)
    plt.close("all")
    return folder


@pytest.fixture
def report_copy(good_report, tmp_path):
    """A copy of the good report to break."""
    copy = tmp_path / "report"
    shutil.copytree(good_report, copy)
    return copy
