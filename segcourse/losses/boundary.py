"""Boundary loss (Kervadec et al.): a distance-weighted integral over the predicted region.

For each foreground class ``k`` the *target* is turned once into a signed distance map ``phi_k``:
negative inside the object (minus the distance to the boundary), positive outside (the distance
to the object). The loss is the mean of ``softmax(logits)_k * phi_k``: probability mass placed far
outside the object costs in proportion to how far it is, mass inside the object lowers the loss.
The distance maps depend only on the target, so they are computed with SciPy (no gradient is
needed through them); the gradient flows through the softmax probabilities.

The loss is *not* zero at a perfect prediction: its minimum, reached when the predicted
region equals the object, is ``mean(phi_k over the object) <= 0``. The paper therefore adds it
to a regional loss (Dice/CE), with a weight that grows during training.

**The classic bug.** One of the course's source articles computes a "boundary loss" from
``logits.argmax(1)``: argmax is piecewise constant, so that loss has no gradient at all
(``requires_grad`` is False, or every gradient is zero); training with it changes nothing. Lesson 06
demonstrates it; this module gives the version that learns.

References:
    H. Kervadec, J. Bouchtiba, C. Desrosiers, E. Granger, J. Dolz, I. Ben Ayed, "Boundary loss for highly
    unbalanced segmentation", MIDL 2019 / Medical Image Analysis 2021, https://arxiv.org/abs/1812.07032
    (reference code: github.com/LIVIAETS/boundary-loss, ``one_hot2dist`` and ``SurfaceLoss``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

from ..constants import IGNORE_INDEX
from ._checks import check_multiclass


def signed_distance_map(mask: np.ndarray) -> np.ndarray:
    """Signed Euclidean distance map of one binary mask, as in the paper's reference code.

    ``phi = d_out * (1 - mask) - (d_in - 1) * mask``: outside the object, the distance to the nearest
    object pixel; inside, minus (the distance to the nearest background pixel - 1), so object pixels on
    the boundary get 0. An empty mask gives all zeros (no boundary to pull towards).

    Args:
        mask: (H, W) (or any-D) bool / {0, 1}.

    Returns:
        float64 array of the same shape.
    """
    pos = np.asarray(mask).astype(bool)
    if not pos.any():
        return np.zeros(pos.shape, dtype=np.float64)
    neg = ~pos
    d_out = ndimage.distance_transform_edt(neg)       # distance of each background pixel to the object
    d_in = ndimage.distance_transform_edt(pos)        # distance of each object pixel to the background
    return d_out * neg - (d_in - 1.0) * pos


def signed_distance_maps(target, num_classes: int, *, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Signed distance maps of every class of every image of a target batch.

    Ignored pixels count as "not class k" when the maps are computed (the loss then leaves them out).

    Args:
        target: (N, H, W) int64 tensor or array.
        num_classes: C.
        ignore_index: label of ignored pixels.

    Returns:
        (N, C, H, W) float32 tensor on the target's device; usually computed once per mask
        in the dataset (it is a CPU transform) and passed to :func:`boundary_loss` as ``dist_maps``.
    """
    device = target.device if isinstance(target, torch.Tensor) else torch.device("cpu")
    t = target.detach().cpu().numpy() if isinstance(target, torch.Tensor) else np.asarray(target)
    if t.ndim < 2:
        raise ValueError(f"signed_distance_maps: target must be (N, H, W), got shape {t.shape}")
    out = np.zeros((t.shape[0], num_classes, *t.shape[1:]), dtype=np.float32)
    for n in range(t.shape[0]):
        for k in range(num_classes):
            out[n, k] = signed_distance_map(t[n] == k)
    return torch.from_numpy(out).to(device)


def boundary_loss(logits: torch.Tensor, target: torch.Tensor, *, dist_maps: torch.Tensor | None = None,
                  classes: Sequence[int] | None = None, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Kervadec et al.'s boundary loss: mean of ``softmax(logits)_k * phi_k`` over images, classes and pixels.

    Args:
        logits: (N, C, H, W) float.
        target: (N, H, W) int64 in ``[0, C)`` or ``ignore_index``.
        dist_maps: (N, C, H, W) signed distance maps of ``target`` (from :func:`signed_distance_maps`);
            computed here from ``target`` when None (a CPU round trip: precompute them in the data pipeline
            for speed).
        classes: class ids scored (default: every class but 0, the background, as in the paper's ``idc=[1]``).
        ignore_index: pixels left out of the mean.

    Returns:
        A scalar tensor (negative when the prediction sits inside the objects); gradients flow
        through the probabilities only. 0 with a zero gradient when every pixel is ignored.

    Reference convention:
        the paper's ``SurfaceLoss``: ``einsum("bkwh,bkwh->bkwh", probs[:, idc], dist[:, idc]).mean()``
        with ``one_hot2dist`` maps; with ignored pixels the mean is over the valid ones.
    """
    valid = check_multiclass(logits, target, ignore_index, "boundary_loss")
    num_classes = logits.shape[1]
    if classes is None:
        classes = list(range(1, num_classes)) if num_classes > 1 else [0]
    classes = [int(c) for c in classes]
    if not classes or any(not 0 <= c < num_classes for c in classes):
        raise ValueError(f"boundary_loss: classes must be a non-empty list of ids in [0, {num_classes}), got {classes}")
    if dist_maps is None:
        dist_maps = signed_distance_maps(target, num_classes, ignore_index=ignore_index)
    if tuple(dist_maps.shape) != tuple(logits.shape):
        raise ValueError(f"boundary_loss: dist_maps must be (N, C, H, W) = {tuple(logits.shape)}, got {tuple(dist_maps.shape)}")
    probs = logits.softmax(dim=1)[:, classes]                            # (N, K, H, W)
    phi = dist_maps[:, classes].to(device=logits.device, dtype=logits.dtype)
    weighted = probs * phi * valid.unsqueeze(1)
    return weighted.sum() / (valid.sum() * len(classes)).clamp_min(1)
