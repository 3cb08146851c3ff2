"""The loss explorer of lesson 06: loss and gradient against the predicted probability of the true class.

A pixel whose true class gets probability ``p_t`` contributes a loss and pushes its logit with a
gradient. The explorer draws both, for

* **cross-entropy**: ``-log p_t``; gradient ``1 - p_t`` -- never quite zero, so the millions of easy
  background pixels still add up;
* **focal loss** (``gamma`` slider): ``-(1 - p_t)^gamma log p_t`` -- easy pixels fall silent;
* **soft Dice** of an object of ``n`` pixels all predicted with ``p_t`` (object-size slider):
  loss ``(1 - p_t) / (1 + p_t)`` whatever ``n``, but each pixel's gradient is divided by ``n`` --
  a small object gets as much total push as a large one, which is why Dice helps rare classes.

The numbers come from :func:`loss_and_gradient`, which runs the course's own losses
(:mod:`segcourse.losses`) through autograd: the explorer is a thin UI over tested functions.
The gradient is taken with respect to the *logit margin* ``s = z_true - z_other`` of a two-class
softmax (``p_t = sigmoid(s)``), the quantity a network actually moves.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import torch

from ..losses import dice_loss, focal_loss
from ._explorer import explorer

__all__ = ["LOSSES", "loss_and_gradient", "loss_explorer", "loss_table"]

#: The losses the explorer draws.
LOSSES: tuple[str, ...] = ("ce", "focal", "dice")
_LABELS = {"ce": "cross-entropy", "focal": "focal", "dice": "soft Dice"}


def _check_probs(p_true) -> np.ndarray:
    p = np.atleast_1d(np.asarray(p_true, dtype=np.float64))
    if p.ndim != 1:
        raise ValueError(f"p_true must be a number or a 1-D array of probabilities, got shape {p.shape}")
    if np.any((p <= 0) | (p >= 1)) or np.any(~np.isfinite(p)):
        raise ValueError("p_true must lie strictly between 0 and 1 (the logit margin is infinite at 0 and 1), "
                         f"got values in [{p.min()}, {p.max()}]")
    return p


def loss_and_gradient(p_true, loss: str = "ce", *, gamma: float = 2.0, object_pixels: int = 1
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Loss of one pixel, and the size of its gradient, as a function of ``p_t``.

    Args:
        p_true: (P,) probabilities in (0, 1) of the true class (or a number).
        loss: ``"ce"``, ``"focal"`` or ``"dice"``.
        gamma: the focal loss's focusing parameter (``"focal"`` only).
        object_pixels: for ``"dice"``: the number ``n`` of pixels of the object, all predicted with ``p_t``
            (the loss does not depend on it; each pixel's gradient is divided by it).

    Returns:
        ``(loss, grad)``, each (P,) float64: the loss value (for Dice: of the object) and
        ``|d loss / d s|`` for one pixel, ``s = z_true - z_other`` its logit margin.

    Raises:
        ValueError: an unknown loss, probabilities outside (0, 1), ``gamma < 0`` or ``object_pixels < 1``.

    Closed forms (checked in the tests): CE ``-log p``, gradient ``1 - p``; focal with ``gamma = 0``
    equals CE; Dice ``(1 - p) / (1 + p)``, gradient ``2 p (1 - p) / ((1 + p)^2 n)``.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    if int(object_pixels) != object_pixels or object_pixels < 1:
        raise ValueError(f"object_pixels must be a positive integer, got {object_pixels}")
    p = _check_probs(p_true)
    n = int(object_pixels) if loss == "dice" else 1
    margin = torch.tensor(np.log(p / (1 - p)), dtype=torch.float64)          # (P,)
    s = margin[:, None, None].expand(-1, 1, n).clone().requires_grad_(True)  # (P, 1, n): one image per value
    logits = torch.stack([torch.zeros_like(s), s], dim=1)                     # (P, 2, 1, n), true class = 1
    target = torch.ones(len(p), 1, n, dtype=torch.long)
    if loss == "dice":
        # one Dice per image (object), foreground class only; dice_loss averages over the P images
        total = dice_loss(logits, target, reduce_batch=False, include_background=False) * len(p)  # sum over objects
        total.backward()
        with torch.no_grad():  # each object's own loss, for the curve
            single = torch.stack([dice_loss(logits[i:i + 1], target[i:i + 1], include_background=False)
                                  for i in range(len(p))])
        loss_values = single.numpy()
    else:
        kwargs = {"gamma": 0.0 if loss == "ce" else float(gamma)}
        per_pixel = focal_loss(logits, target, reduction="none", **kwargs)   # (P, 1, n)
        per_pixel.sum().backward()
        loss_values = per_pixel.detach()[:, 0, 0].numpy()
    grad = s.grad[:, 0, 0].abs().numpy()
    return loss_values.astype(np.float64), grad.astype(np.float64)


def loss_table(p_values=(0.1, 0.5, 0.9, 0.99), *, gamma: float = 2.0, object_pixels: int = 1) -> list[dict]:
    """Rows ``{"p_t", "ce", "focal", "dice", "ce_grad", "focal_grad", "dice_grad"}`` at a few probabilities."""
    p = _check_probs(p_values)
    rows = [{"p_t": float(v)} for v in p]
    for name in LOSSES:
        values, grads = loss_and_gradient(p, name, gamma=gamma, object_pixels=object_pixels)
        for row, v, g in zip(rows, values, grads):
            row[name], row[f"{name}_grad"] = float(v), float(g)
    return rows


def _figure(gamma: float, object_pixels: int, mark: float):
    import matplotlib.pyplot as plt

    p = np.linspace(0.01, 0.99, 197)
    fig, (ax_l, ax_g) = plt.subplots(1, 2, figsize=(8.5, 3.2))
    for name, colour in zip(LOSSES, ("tab:blue", "tab:orange", "tab:green")):
        values, grads = loss_and_gradient(p, name, gamma=gamma, object_pixels=object_pixels)
        label = _LABELS[name] + (f" (γ={gamma:g})" if name == "focal" else "") + (
            f" (n={object_pixels})" if name == "dice" else "")
        ax_l.plot(p, values, color=colour, label=label)
        ax_g.plot(p, grads, color=colour, label=label)
    for ax in (ax_l, ax_g):
        ax.axvline(mark, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("p_t (probability of the true class)")
    ax_l.set_ylim(0, 3)
    ax_l.set_title("loss")
    ax_g.set_title("|gradient| w.r.t. the pixel's logit margin")
    ax_g.set_yscale("log")
    ax_g.set_ylim(1e-5, 1.2)
    ax_l.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _summary(gamma: float, object_pixels: int, mark: float) -> str:
    row = loss_table([mark], gamma=gamma, object_pixels=object_pixels)[0]
    ratio = row["focal"] / row["ce"]
    cells = "".join(
        f"<tr><td style='padding-right:1em'>{html.escape(_LABELS[n])}</td><td><b>{row[n]:.4f}</b></td>"
        f"<td style='padding-left:1em'>{row[n + '_grad']:.2e}</td></tr>" for n in LOSSES)
    return (f"<p>at p_t = {mark:.2f}:</p><table><tr><th></th><th>loss</th><th>|grad|</th></tr>{cells}</table>"
            f"<p>focal / CE = {ratio:.4f} (that is (1 - p_t)^γ = {(1 - mark) ** gamma:.4f})</p>")


def loss_explorer(gamma: float = 2.0, object_pixels: int = 1, p_mark: float = 0.9):
    """An ipywidgets explorer: CE, focal (``gamma`` slider) and Dice (object-size slider) against ``p_t``.

    Args:
        gamma: initial focal ``gamma``.
        object_pixels: initial object size for the Dice curves.
        p_mark: initial probability at which the numbers are read out (slider).

    Returns:
        An ``ipywidgets.VBox`` with ``.controls`` (dict of the sliders), ``.summary`` (HTML numbers at
        ``p_mark``), ``.picture`` (the figure as a PNG ``ipywidgets.Image``) and ``.refresh()``.
    """
    import ipywidgets as widgets

    controls = {
        "gamma": widgets.FloatSlider(value=gamma, min=0.0, max=5.0, step=0.25, description="focal γ",
                                     continuous_update=False),
        "object_pixels": widgets.IntSlider(value=object_pixels, min=1, max=400, step=1, description="object px",
                                           continuous_update=False),
        "p_mark": widgets.FloatSlider(value=p_mark, min=0.01, max=0.99, step=0.01, description="read at p_t",
                                      continuous_update=False, readout_format=".2f"),
    }
    def render() -> tuple[str, Any]:
        g, n, mark = controls["gamma"].value, controls["object_pixels"].value, controls["p_mark"].value
        return _summary(g, n, mark), _figure(g, n, mark)

    return explorer(controls, render, figure_first=True)
