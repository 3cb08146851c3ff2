"""Lesson 01's threshold slider: move a grey-level threshold and watch the mask and its Dice change.

A thin ipywidgets interface over two pure functions that the tests check:

* :func:`threshold_scores` -- the mask ``image > t`` and its foreground scores against the truth;
* :func:`error_overlay` -- an RGB picture of a binary prediction: true positives green,
  false positives red, false negatives blue.

:func:`threshold_slider` returns an ``ipywidgets.VBox`` with ``.controls`` (the slider and
the "Otsu" button), ``.summary`` (HTML with the numbers), ``.picture`` (the figure as PNG)
and ``.refresh()``; end a cell on it to display it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..classical import _check_image, global_threshold, histogram, otsu_threshold
from ._explorer import explorer, html_table

__all__ = ["error_overlay", "threshold_scores", "threshold_slider"]

#: Colours of :func:`error_overlay`: true positive, false positive, false negative.
ERROR_COLOURS = {"tp": (0.20, 0.80, 0.30), "fp": (0.90, 0.20, 0.20), "fn": (0.20, 0.40, 1.00)}


def _target(target, shape) -> np.ndarray:
    target = np.asarray(target)
    if target.shape != shape:
        raise ValueError(f"target must have the image's shape {shape}, got {target.shape}")
    return target.astype(bool) if target.dtype != bool else target


def threshold_scores(image: np.ndarray, target: np.ndarray, threshold: float) -> tuple[np.ndarray, dict[str, float]]:
    """Threshold ``image`` and score the mask against ``target``.

    Args:
        image: ``(H, W)`` uint8 grey levels.
        target: ``(H, W)`` bool (or 0/1) true foreground.
        threshold: grey level; the mask is ``image > threshold``.

    Returns:
        ``(mask, scores)``: the ``(H, W)`` bool mask and ``{"threshold", "foreground", "dice", "iou",
        "precision", "recall"}``; ``foreground`` is the predicted fraction of pixels. Dice and IoU are 1
        when both masks are empty, precision is 1 when nothing is predicted, recall is 1 when nothing is true.
    """
    image = _check_image(image)
    target = _target(target, image.shape)
    mask = global_threshold(image, threshold)
    tp = int((mask & target).sum())
    fp = int((mask & ~target).sum())
    fn = int((~mask & target).sum())
    scores = {
        "threshold": float(threshold),
        "foreground": float(mask.mean()),
        "dice": 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn),
        "iou": 1.0 if tp + fp + fn == 0 else tp / (tp + fp + fn),
        "precision": 1.0 if tp + fp == 0 else tp / (tp + fp),
        "recall": 1.0 if tp + fn == 0 else tp / (tp + fn),
    }
    return mask, scores


def error_overlay(image: np.ndarray, pred: np.ndarray, target: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Colour a binary prediction's errors over a grey image.

    Args:
        image: ``(H, W)`` uint8.
        pred, target: ``(H, W)`` bool.
        alpha: opacity of the colours.

    Returns:
        ``(H, W, 3)`` float RGB in [0, 1]: TP green, FP red, FN blue, true negatives grey.
    """
    image = _check_image(image)
    pred = _target(pred, image.shape)
    target = _target(target, image.shape)
    grey = np.repeat((image.astype(np.float32) / 255.0)[..., None], 3, axis=-1)
    out = grey.copy()
    for key, where in (("tp", pred & target), ("fp", pred & ~target), ("fn", ~pred & target)):
        out[where] = (1 - alpha) * grey[where] + alpha * np.asarray(ERROR_COLOURS[key], np.float32)
    return out


def threshold_slider(image: np.ndarray, target: np.ndarray, initial: int | None = None):
    """A live threshold explorer: slider -> mask overlay, histogram with the threshold, Dice and IoU.

    Args:
        image: ``(H, W)`` uint8 grey image.
        target: ``(H, W)`` bool true foreground.
        initial: starting threshold (default: Otsu's).

    Returns:
        ``ipywidgets.VBox`` with ``.controls``, ``.summary``, ``.picture``, ``.refresh()``.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    image = _check_image(image)
    target = _target(target, image.shape)
    otsu = otsu_threshold(image)
    hist = histogram(image)
    slider = widgets.IntSlider(value=otsu if initial is None else int(initial), min=0, max=255, step=1,
                               description="threshold", continuous_update=False)
    button = widgets.Button(description=f"Otsu ({otsu})", tooltip="set the threshold to Otsu's")
    def render() -> tuple[str, Any]:
        mask, s = threshold_scores(image, target, slider.value)
        rows = [("threshold", f"{slider.value}"), ("foreground", f"{s['foreground']:.1%}"), ("Dice", f"{s['dice']:.3f}"),
                ("IoU", f"{s['iou']:.3f}"), ("precision", f"{s['precision']:.3f}"), ("recall", f"{s['recall']:.3f}")]
        text = html_table(rows) + "<small>green: right, red: false positive, blue: missed</small>"
        fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(8, 3.2))
        ax0.imshow(error_overlay(image, mask, target))
        ax0.set_title(f"image > {slider.value}")
        ax0.axis("off")
        ax1.bar(np.arange(256), hist, width=1.0, color="0.5")
        ax1.axvline(slider.value + 0.5, color="tab:red", label="threshold")
        ax1.axvline(otsu + 0.5, color="tab:green", linestyle="--", label="Otsu")
        ax1.set_yscale("log")
        ax1.set_xlabel("grey level")
        ax1.legend(fontsize=8)
        fig.tight_layout()
        return text, fig

    def to_otsu(_: Any) -> None:
        slider.value = otsu

    button.on_click(to_otsu)
    return explorer({"threshold": slider, "otsu": button}, render, figure_first=True)
