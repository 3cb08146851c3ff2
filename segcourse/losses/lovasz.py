"""Lovász losses: a convex surrogate that optimises the Jaccard index (IoU) directly.

IoU is a set function of the mispredicted pixels, not a sum over pixels, so it has no
gradient. Berman et al. (2018) use its *Lovász extension*: sort the per-pixel errors in
decreasing order, and weight the i-th error by how much the Jaccard loss grows when the i-th
pixel is added to the set of errors (:func:`lovasz_grad`). The result is piecewise linear in
the errors, tight on binary predictions, and its gradient pushes on exactly the pixels that
cost IoU.

* :func:`lovasz_softmax_loss` -- errors ``|[t = c] - p_c|`` of the softmax probabilities, one
  extension per class, averaged over classes (by default those present in the target).
* :func:`lovasz_hinge_loss` -- binary: errors are hinge margins ``1 - x * sign`` of the logit.

References:
    M. Berman, A. Rannen Triki, M. B. Blaschko, "The Lovász-Softmax loss: A tractable surrogate for the
    optimization of the intersection-over-union measure in neural networks", CVPR 2018,
    https://arxiv.org/abs/1705.08790 (Algorithm 1; the authors' reference code is what
    segmentation_models_pytorch's ``LovaszLoss`` ships).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..constants import IGNORE_INDEX
from ._checks import check_binary, check_multiclass


def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss w.r.t. sorted errors (Berman et al., Alg. 1).

    Args:
        gt_sorted: (P,) float in {0, 1}: the ground truth of the pixels, ordered by decreasing error.

    Returns:
        (P,) weights ``J(1..i) - J(1..i-1)``, where ``J(1..i)`` is the Jaccard loss when the first ``i``
        pixels are the errors; they sum to the Jaccard loss of the fully wrong prediction.
    """
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)          # foreground pixels not yet counted as errors
    union = gts + (1.0 - gt_sorted).cumsum(0)         # foreground plus background errors so far
    jaccard = 1.0 - intersection / union
    if gt_sorted.numel() > 1:
        jaccard = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
    return jaccard


def _lovasz_softmax_flat(probs: torch.Tensor, labels: torch.Tensor, classes) -> torch.Tensor:
    """probs (P, C), labels (P,) -> scalar."""
    if probs.numel() == 0:
        return probs.sum() * 0.0
    num_classes = probs.shape[1]
    chosen = range(num_classes) if isinstance(classes, str) else classes
    losses = []
    for c in chosen:
        fg = (labels == c).to(probs.dtype)                                 # (P,)
        if classes == "present" and fg.sum() == 0:
            continue
        errors = (fg - probs[:, c]).abs()                                  # (P,)
        errors_sorted, perm = torch.sort(errors, descending=True)
        losses.append(torch.dot(errors_sorted, lovasz_grad(fg[perm])))
    if not losses:
        return probs.sum() * 0.0
    return torch.stack(losses).mean()


def lovasz_softmax_loss(logits: torch.Tensor, target: torch.Tensor, *, classes: str | Sequence[int] = "present",
                        per_image: bool = False, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Lovász-Softmax loss of softmax probabilities.

    Args:
        logits: (N, C, H, W) float.
        target: (N, H, W) int64 in ``[0, C)`` or ``ignore_index``.
        classes: ``"present"`` (average over the classes present in the target: a class absent from the
            target contributes nothing), ``"all"``, or a list of class ids.
        per_image: one loss per image then the mean (True), or one over the whole batch (False).
        ignore_index: pixels removed before sorting.

    Returns:
        A scalar tensor in [0, 1] (0 with a zero gradient when nothing is left to score).

    Reference convention:
        equals ``segmentation_models_pytorch.losses.LovaszLoss("multiclass", per_image=..., ignore_index=...)``
        (``classes="present"``), tested to 1e-5 with gradients.
    """
    valid = check_multiclass(logits, target, ignore_index, "lovasz_softmax_loss")
    if not (classes in ("present", "all") or (not isinstance(classes, str) and all(0 <= int(c) < logits.shape[1] for c in classes))):
        raise ValueError(f"lovasz_softmax_loss: classes must be 'present', 'all' or class ids in [0, {logits.shape[1]}), got {classes!r}")
    probs = logits.softmax(dim=1)
    num_classes = logits.shape[1]

    def flat(p, t, v):  # (n, C, ...) -> (P, C), (P,)
        p = p.movedim(1, -1).reshape(-1, num_classes)
        return p[v.reshape(-1)], t.reshape(-1)[v.reshape(-1)]

    if per_image:
        return torch.stack([_lovasz_softmax_flat(*flat(p[None], t[None], v[None]), classes)
                            for p, t, v in zip(probs, target, valid)]).mean()
    return _lovasz_softmax_flat(*flat(probs, target, valid), classes)


def _lovasz_hinge_flat(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """logits (P,), labels (P,) in {0, 1} -> scalar."""
    if labels.numel() == 0:
        return logits.sum() * 0.0
    signs = 2.0 * labels - 1.0
    errors = 1.0 - logits * signs                                          # hinge margins
    errors_sorted, perm = torch.sort(errors, descending=True)
    return torch.dot(F.relu(errors_sorted), lovasz_grad(labels[perm]))


def lovasz_hinge_loss(logits: torch.Tensor, target: torch.Tensor, *, per_image: bool = False,
                      ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Binary Lovász hinge loss of one logit channel.

    Args:
        logits: (N, 1, H, W) float (raw scores; the hinge works on the logit, not a probability).
        target: (N, H, W) or (N, 1, H, W) with 0, 1 or ``ignore_index``.
        per_image: one loss per image then the mean (True), or one over the whole batch (False).
        ignore_index: pixels removed before sorting.

    Returns:
        A scalar tensor >= 0.

    Reference convention:
        equals ``segmentation_models_pytorch.losses.LovaszLoss("binary", per_image=..., ignore_index=...)``.
    """
    target, valid = check_binary(logits, target, ignore_index, "lovasz_hinge_loss")
    if per_image:
        return torch.stack([_lovasz_hinge_flat(x[v], t[v]) for x, t, v in zip(logits, target, valid)]).mean()
    return _lovasz_hinge_flat(logits[valid], target[valid])
