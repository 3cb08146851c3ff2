"""The capstone's task as code: the brief's data, its fixed test images, the baseline and the targets.

The brief (``docs/capstone.md``) fixes what every learner is measured on, so that the grader can measure it
again without trusting anything in the learner's folder:

* the **pool** (``split="train"`` of the synthetic ``cells`` set): the learner's to cut into folds, train on
  and choose with;
* the **test images** (``split="test"``, a disjoint range of generator seeds): regenerated here,
  deterministically, by the learner's notebook once and by the grader again; the learner's folder never
  supplies them;
* the **baseline**: Otsu's threshold on the grey image (lesson 01), which already segments these bright nuclei
  well (nucleus Dice about 0.95), so "Dice >= 0.92" would be no target at all;
* the **targets**: the baseline's test scores plus a margin (:data:`MARGINS`), on nucleus Dice and on nucleus
  Boundary IoU, where a threshold is weakest (outlines, touching nuclei).

Sizes follow the mode (:data:`SPEC`). Smoke mode trains for one epoch and only proves that the code runs: it
judges no target (:func:`targets` gives none).

    >>> SPEC["quick"]
    {'size': 64, 'pool': 64, 'test': 40}
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

DATASET = "cells"
CLASSES = ("background", "nucleus")
FOREGROUND = 1
#: Image side and number of pool and test images per mode.
SPEC = {"smoke": {"size": 32, "pool": 20, "test": 12},
        "quick": {"size": 64, "pool": 64, "test": 40},
        "full": {"size": 128, "pool": 200, "test": 80}}
#: What the final model must add to the baseline's test score. Measured in quick mode (1 thread): Otsu gets nucleus
#: Dice 0.948 and Boundary IoU 0.693 on the 40 test images; the solution's U-Net (20 epochs) 0.977 and 0.823, and it
#: beat Otsu on each of its 5 cross-validation folds by at least +0.021 Dice and +0.089 Boundary IoU; the same U-Net
#: trained for 10 epochs on 48 images (0.956, 0.689) misses both targets.
MARGINS = {"fg_dice": 0.01, "boundary_iou": 0.05}
BASELINE = "Otsu's threshold on the grey image (mean of the RGB channels), per image"


def spec(mode: str | None = None) -> dict[str, int]:
    """``{"size", "pool", "test"}`` of ``mode`` (default: the current mode)."""
    from ..config import get_mode

    mode = mode or get_mode()
    if mode not in SPEC:
        raise ValueError(f"no capstone data for mode {mode!r}; expected one of {', '.join(SPEC)}")
    return dict(SPEC[mode])


def _tensors(split: str, count: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    from ..data import load_arrays

    data = load_arrays(DATASET, split=split, count=count, size=size)
    images = torch.from_numpy(data["images"]).permute(0, 3, 1, 2).float() / 255
    return images, torch.from_numpy(data["masks"]).long()


def pool_data(mode: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The learner's images: ``(X, Y)``, ``X`` ``(N, 3, H, W)`` float32 in [0, 1], ``Y`` ``(N, H, W)`` int64 class ids."""
    s = spec(mode)
    return _tensors("train", s["pool"], s["size"])


def test_data(mode: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The brief's held-out test images, regenerated from the data set's seeds (same shapes as :func:`pool_data`).

    They share no generator seed with the pool (``split="test"``), so nothing trained on the pool has seen them.
    """
    s = spec(mode)
    return _tensors("test", s["test"], s["size"])


def otsu_masks(images: torch.Tensor) -> torch.Tensor:
    """The baseline's masks: ``(N, H, W)`` int64, 1 where the grey image is above its Otsu threshold.

    Args:
        images: ``(N, 3, H, W)`` float in [0, 1].
    """
    from ..classical import otsu_threshold

    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W), got shape {tuple(images.shape)}")
    grey = (images.mean(dim=1) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    return torch.from_numpy(np.stack([g > otsu_threshold(g) for g in grey]).astype(np.int64))


class OtsuBaseline(nn.Module):
    """The baseline as a model: one-hot "logits" ``(N, 2, H, W)`` of :func:`otsu_masks`, so
    :func:`segcourse.capstone.scoring.score` scores it like any network."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        masks = otsu_masks(images.cpu()).float()
        return torch.stack([1 - masks, masks], dim=1)


def baseline(images: torch.Tensor, target: torch.Tensor) -> dict:
    """The baseline's scores on ``images`` (the dict of :func:`segcourse.capstone.scoring.score`)."""
    from .scoring import score

    return score(OtsuBaseline(), images, target, num_classes=len(CLASSES), foreground=FOREGROUND)


def targets(base: dict, mode: str | None = None) -> dict[str, float]:
    """The test targets: ``{metric: baseline score + margin}`` (:data:`MARGINS`); none in smoke mode.

    Args:
        base: the baseline's test scores (:func:`baseline` on :func:`test_data`).
        mode: default: the current mode.
    """
    from ..config import get_mode

    if (mode or get_mode()) == "smoke":
        return {}
    return {metric: round(float(base[metric]) + margin, 4) for metric, margin in MARGINS.items()}
