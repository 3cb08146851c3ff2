"""Four ipywidgets explorers for lesson 07 (metrics).

Each is a thin user interface over pure functions of :mod:`segcourse.metrics.threshold` and
:mod:`segcourse.teaching.demos` (which the tests check); the widget only reads its controls, calls them, and draws:

* :func:`threshold_explorer`   -- a probability map, a threshold slider: live overlay, precision,
  recall, IoU, Dice, and the precision-recall curve with the current point;
* :func:`perturbation_explorer` -- shift / dilate / erode / delete objects of a prediction and
  watch mIoU, Boundary IoU and HD95 respond differently;
* :func:`imbalance_explorer`   -- pixel accuracy vs mIoU vs Dice as the foreground shrinks;
* :func:`panoptic_explorer`    -- damage the things of a panoptic map: which segments match at
  IoU > 0.5, and SQ, RQ, PQ.

Every explorer returns an ``ipywidgets.VBox``; display it by ending a cell on it. The box has a
``.summary`` (``ipywidgets.HTML`` with the current numbers), a ``.picture`` (``ipywidgets.Image``,
the current figure as PNG), a ``.controls`` dict of its input widgets and a ``.refresh()`` method
(called on every change).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Collection, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np

from ..metrics.panoptic import match_segments, panoptic_quality
from ..metrics.threshold import binary_scores, threshold_sweep
from ..teaching.demos import PERTURBATIONS, imbalance_scores, perturb_mask, perturb_panoptic, perturbation_scores
from ._explorer import explorer

__all__ = ["imbalance_explorer", "panoptic_colours", "panoptic_explorer", "perturbation_explorer", "threshold_explorer"]


def _class_colours(palette: Sequence[Sequence[int]] | None, n: int) -> np.ndarray:
    """``(max(n, len(palette)), 3)`` float RGB per category id: the palette (0-255), else ``tab10`` repeated."""
    from matplotlib import colormaps

    base = np.asarray(palette if palette is not None else colormaps["tab10"].colors, dtype=np.float64)
    base = base / 255.0 if palette is not None else base
    return base[np.arange(max(n, len(base))) % len(base)]


#: Shades of a class colour for its instances, as (hue shift, saturation, value): well apart from each other.
_SHADES = ((0.0, 1.0, 0.6), (0.0, 0.45, 1.0), (0.04, 1.0, 1.0), (-0.04, 0.9, 0.35), (0.0, 0.25, 0.75),
           (0.03, 0.7, 0.8), (-0.03, 0.6, 0.5), (0.0, 0.8, 0.9))


def panoptic_colours(panoptic: Any, things: Collection[int], palette: Sequence[Sequence[int]] | None = None,
                     reference: Any = None) -> np.ndarray:
    """An RGB picture of a panoptic map: stuff in its class colour, every thing instance in its own shade.

    As panoptic figures do (Detectron2's visualiser jitters the class colour per instance), two cars
    are two shades of the car colour, so touching instances of one class can be told apart while the
    class stays recognisable. Instances of a class are ranked by id over ``reference`` and ``panoptic``
    together and take the shades in that order, so drawing a prediction with ``reference=ground
    truth`` gives a segment that keeps its ground-truth id the same shade in both pictures.

    Args:
        panoptic: ``(H, W, 2)`` int (category_id, instance_id).
        things: category ids that have instances.
        palette: RGB (0-255) per category id; default matplotlib's ``tab10``.
        reference: optional second ``(H, W, 2)`` map whose ids fix the shades (default: ``panoptic``).

    Returns:
        ``(H, W, 3)`` float64 in [0, 1].
    """
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv

    def as_map(x: Any, name: str) -> np.ndarray:
        arr = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x).astype(np.int64)
        if arr.ndim != 3 or arr.shape[-1] != 2:
            raise ValueError(f"{name} must be one (H, W, 2) map of (category, instance), got shape {arr.shape}")
        return arr

    pan = as_map(panoptic, "panoptic")
    ref = pan if reference is None else as_map(reference, "reference")
    cat, inst = pan[..., 0], pan[..., 1]
    base = _class_colours(palette, max(int(cat.max()), int(ref[..., 0].max())) + 1)
    rgb = base[np.clip(cat, 0, None)]
    for c in sorted({int(t) for t in things}):
        ids = np.union1d(ref[..., 1][ref[..., 0] == c], inst[cat == c])
        h = rgb_to_hsv(base[c])[0]
        for rank, k in enumerate(ids):
            dh, sat, val = _SHADES[rank % len(_SHADES)]
            rgb[(cat == c) & (inst == k)] = hsv_to_rgb([(h + dh) % 1.0, sat, val])
    return rgb


def _fmt(x: float) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def _table(rows: Sequence[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><td style='padding-right:1em'>{html.escape(k)}</td><td><b>{_fmt(v)}</b></td></tr>"
                    for k, v in rows)
    return f"<table class='segcourse-metrics'>{cells}</table>"


def _assemble(controls: dict[str, widgets.Widget], render: Callable[[], tuple[str, Any]]) -> widgets.VBox:
    """Controls on top, a numbers table and a figure below (see :func:`segcourse.widgets._explorer.explorer`)."""
    return explorer(controls, render)


def _as_image(image: Any) -> np.ndarray | None:
    if image is None:
        return None
    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)
    return arr


def threshold_explorer(probs: Any, target: Any, image: Any = None, initial: float = 0.5) -> widgets.VBox:
    """Threshold a probability map live.

    Args:
        probs: ``(H, W)`` float foreground probabilities; target: ``(H, W)`` bool mask.
        image: optional ``(H, W, 3)`` image drawn under the overlay.
        initial: starting threshold.
    """
    import matplotlib.pyplot as plt

    probs = np.asarray(probs.detach().cpu() if hasattr(probs, "detach") else probs, dtype=np.float64)
    target = np.asarray(target.detach().cpu() if hasattr(target, "detach") else target).astype(bool)
    sweep = threshold_sweep(probs, target)
    img = _as_image(image)
    slider = widgets.FloatSlider(value=initial, min=0.0, max=1.0, step=0.01, description="threshold",
                                 continuous_update=False, readout_format=".2f")

    def render() -> tuple[str, Any]:
        t = slider.value
        pred = probs >= t
        s = binary_scores(pred, target)
        text = _table([("precision", s["precision"]), ("recall", s["recall"]), ("IoU", s["iou"]),
                       ("Dice", s["dice"]), ("FP pixels", s["fp"]), ("FN pixels", s["fn"])])
        fig, axes = plt.subplots(1, 2, figsize=(7, 3.2))
        base = img if img is not None else probs
        axes[0].imshow(base, cmap="gray")
        colour = np.zeros((*pred.shape, 4))
        colour[pred & target] = (0.1, 0.8, 0.1, 0.55)   # TP green
        colour[pred & ~target] = (0.9, 0.1, 0.1, 0.65)  # FP red
        colour[~pred & target] = (0.1, 0.3, 1.0, 0.65)  # FN blue
        axes[0].imshow(colour)
        axes[0].set_title(f"t = {t:.2f}: TP green, FP red, FN blue", fontsize=9)
        axes[0].axis("off")
        axes[1].plot(sweep["recall"], sweep["precision"], lw=1.5)
        axes[1].plot([s["recall"]], [s["precision"]], "o", color="crimson")
        axes[1].set_xlabel("recall")
        axes[1].set_ylabel("precision")
        axes[1].set_xlim(0, 1.02)
        axes[1].set_ylim(0, 1.02)
        axes[1].set_title("precision-recall curve", fontsize=9)
        fig.tight_layout()
        return text, fig

    return _assemble({"threshold": slider}, render)


def perturbation_explorer(target: Any, image: Any = None) -> widgets.VBox:
    """Damage a perfect prediction and compare region and boundary metrics.

    Args:
        target: ``(H, W)`` bool ground-truth mask (the prediction starts as a copy of it).
        image: optional image drawn under the masks.
    """
    import matplotlib.pyplot as plt

    target = np.asarray(target.detach().cpu() if hasattr(target, "detach") else target).astype(bool)
    img = _as_image(image)
    kind = widgets.Dropdown(options=list(PERTURBATIONS), value="shift", description="damage")
    amount = widgets.IntSlider(value=1, min=0, max=8, description="amount", continuous_update=False)

    def render() -> tuple[str, Any]:
        pred = perturb_mask(target, kind.value, int(amount.value))
        s = perturbation_scores(pred, target)
        text = _table([("IoU (object)", s["iou"]), ("mIoU", s["miou"]), ("Dice", s["dice"]),
                       ("Boundary IoU", s["boundary_iou"]), ("HD95 (pixels)", s["hd95"])])
        fig, ax = plt.subplots(figsize=(3.4, 3.4))
        if img is not None:
            ax.imshow(img, cmap="gray")
        colour = np.zeros((*target.shape, 4))
        colour[target & pred] = (0.1, 0.8, 0.1, 0.5)
        colour[pred & ~target] = (0.9, 0.1, 0.1, 0.7)
        colour[~pred & target] = (0.1, 0.3, 1.0, 0.7)
        ax.imshow(colour)
        ax.set_title(f"{kind.value} x{amount.value}: extra red, missing blue", fontsize=9)
        ax.axis("off")
        fig.tight_layout()
        return text, fig

    return _assemble({"kind": kind, "amount": amount}, render)


def imbalance_explorer(size: int = 128, error_pixels: int = 1) -> widgets.VBox:
    """Pixel accuracy, mIoU and Dice of three fixed predictors as the foreground fraction shrinks."""
    import matplotlib.pyplot as plt

    exponent = widgets.FloatSlider(value=-1.0, min=-3.0, max=-0.3, step=0.1, description="log10 fg",
                                   continuous_update=False, readout_format=".1f")
    fractions = 10 ** np.linspace(-3, -0.3, 28)
    curves = [imbalance_scores(float(f), size, error_pixels) for f in fractions]

    def render() -> tuple[str, Any]:
        f = 10 ** exponent.value
        s = imbalance_scores(float(f), size, error_pixels)
        rows = [("foreground fraction", s["perfect"]["foreground_fraction"])]
        for name in ("all background", "boundary error"):
            rows += [(f"{name}: pixel accuracy", s[name]["pixel_accuracy"]), (f"{name}: mIoU", s[name]["miou"]),
                     (f"{name}: Dice", s[name]["dice"])]
        fig, axes = plt.subplots(1, 2, figsize=(7.5, 3), sharey=True)
        for ax, name in zip(axes, ("all background", "boundary error")):
            for key, style in (("pixel_accuracy", "-"), ("miou", "--"), ("dice", ":")):
                ax.semilogx(fractions, [c[name][key] for c in curves], style, label=key)
            ax.axvline(s["perfect"]["foreground_fraction"], color="grey", lw=0.8)
            ax.set_title(f"predictor: {name}", fontsize=9)
            ax.set_xlabel("foreground fraction")
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        return _table(rows), fig

    return _assemble({"log10_fraction": exponent}, render)


def panoptic_explorer(target: Any, things: Collection[int], stuffs: Collection[int],
                      palette: Sequence[Sequence[int]] | None = None,
                      class_names: Sequence[str] | None = None) -> widgets.VBox:
    """Damage the things of a panoptic ground truth; see the matches at IoU > 0.5 and SQ/RQ/PQ.

    Stuff is drawn in its class colour, each thing instance in its own shade of its class colour
    (:func:`panoptic_colours`), with white lines between segments.

    Args:
        target: ``(H, W, 2)`` (category_id, instance_id) map of one image.
        things, stuffs: category ids.
        palette: RGB per category id for the drawing (optional).
        class_names: name per category id, for a legend under the pictures (optional).
    """
    import matplotlib.pyplot as plt

    target = np.asarray(target.detach().cpu() if hasattr(target, "detach") else target).astype(np.int64)
    shift = widgets.IntSlider(value=0, min=0, max=10, description="shift things", continuous_update=False)
    drop = widgets.IntSlider(value=0, min=0, max=5, description="drop smallest", continuous_update=False)
    spurious = widgets.IntSlider(value=0, min=0, max=4, description="add spurious", continuous_update=False)
    things_l, stuffs_l = sorted(things), sorted(stuffs)

    def draw(ax: Any, pan: np.ndarray, title: str) -> None:
        cat, inst = pan[..., 0], pan[..., 1]
        rgb = panoptic_colours(pan, things_l, palette, reference=target)
        edges = np.zeros(cat.shape, bool)
        key = cat * 1000 + inst
        edges[:-1] |= key[:-1] != key[1:]
        edges[:, :-1] |= key[:, :-1] != key[:, 1:]
        rgb[edges] = 1.0
        ax.imshow(rgb, interpolation="nearest", aspect="equal")
        ax.set_title(title, fontsize=9)
        ax.axis("off")

    def render() -> tuple[str, Any]:
        pred = perturb_panoptic(target, things_l, shift=int(shift.value), drop=int(drop.value),
                                spurious=int(spurious.value))
        pq = panoptic_quality(pred, target, things, stuffs)
        pairs = [p for p in match_segments(pred, target, things, stuffs) if p["category"] in things_l]
        tp = sum(pq["per_class"][c]["tp"] for c in things_l)
        fp = sum(pq["per_class"][c]["fp"] for c in things_l)
        fn = sum(pq["per_class"][c]["fn"] for c in things_l)
        rows = [("PQ", pq["pq"]), ("SQ", pq["sq"]), ("RQ", pq["rq"]), ("PQ things", pq["pq_things"]),
                ("things TP / FP / FN", f"{tp} / {fp} / {fn}")]
        pair_rows = "".join(
            f"<tr><td style='padding:0 4px'>cat {p['category']}: pred #{p['pred_instance']} ↔ gt #{p['target_instance']}"
            f"</td><td style='padding:0 4px'>IoU {p['iou']:.2f} {'✓ match' if p['matched'] else '✗'}</td></tr>"
            for p in pairs)
        text = _table(rows) + f"<table style='font-size:85%; line-height:1.3'>{pair_rows}</table>"
        fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.8 if class_names else 3.4))
        draw(axes[0], target, "ground truth")
        draw(axes[1], pred, "prediction (same shade = same id)")
        if class_names:
            from matplotlib.patches import Patch

            base = _class_colours(palette, len(class_names))
            handles = [Patch(color=base[c], label=name + (" (shade per instance)" if c in things_l else ""))
                       for c, name in enumerate(class_names) if c in things_l or c in stuffs_l]
            fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=7, frameon=False)
            fig.tight_layout(rect=(0, 0.12, 1, 1))
        else:
            fig.tight_layout()
        return text, fig

    return _assemble({"shift": shift, "drop": drop, "spurious": spurious}, render)
