"""Point-sampled mask losses of Mask2Former: sampling, pairwise costs, and the uncertainty-based points.

Masks are compared on ``P`` sampled points instead of every pixel: the loss of ``N`` masks costs
``N × P`` values instead of ``N × H × W`` (Mask2Former uses ``P = 112 × 112 = 12544`` on 1024² images: about
3× less memory). Points live in ``[0, 1]²`` normalised ``(x, y)`` coordinates, so a prediction at stride 4
and a target at full resolution are sampled at the same places (bilinearly, ``align_corners=False``).

For the matching cost, points are uniform. For the loss, they follow PointRend's importance sampling:
draw ``k·P`` uniform candidates, keep the ``β·P`` most *uncertain* (logit closest to 0, uncertainty
``-|logit|``) and add ``(1 - β)·P`` fresh uniform points (Mask2Former: ``k = 3``, ``β = 0.75``).

Every function equals its namesake in Hugging Face ``transformers.models.mask2former.modeling_mask2former``
(``sample_point``, ``pair_wise_sigmoid_cross_entropy_loss``, ``pair_wise_dice_loss``,
``sigmoid_cross_entropy_loss``, ``dice_loss``, ``Mask2FormerLoss.sample_points_using_uncertainty``) on the same
inputs and the same random points (the tests check it); Dice uses their ``+1`` smoothing on both sides.

References:
    Cheng et al., "Masked-attention Mask Transformer for Universal Image Segmentation", CVPR 2022,
    https://arxiv.org/abs/2112.01527 (section 3.3, "Improving training efficiency").
    Kirillov, Wu, He, Girshick, "PointRend: Image Segmentation as Rendering", CVPR 2020,
    https://arxiv.org/abs/1912.08193.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["sample_points", "pairwise_sigmoid_ce", "pairwise_dice", "sigmoid_ce_loss", "matched_dice_loss",
           "uncertain_points"]


def sample_points(maps: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear values of ``maps (N, C, H, W)`` at ``points (N, P, 2)`` in ``[0, 1]²`` ``(x, y)`` -> ``(N, C, P)``."""
    if maps.ndim != 4 or points.ndim != 3 or points.shape[-1] != 2:
        raise ValueError(f"expected maps (N, C, H, W) and points (N, P, 2), got {tuple(maps.shape)} and "
                         f"{tuple(points.shape)}")
    grid = 2.0 * points[:, :, None] - 1.0                                 # (N, P, 1, 2) in [-1, 1]
    return F.grid_sample(maps, grid, align_corners=False)[..., 0]         # (N, C, P)


def pairwise_sigmoid_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of every prediction against every target, ``(Q, P), (K, P) -> (Q, K)``.

    ``BCE(x, t) = t·softplus(-x) + (1 - t)·softplus(x)``, so the pairwise matrix is two matrix products.
    """
    p = logits.shape[1]
    pos = F.softplus(-logits) / p                                          # (Q, P): loss if the target is 1
    neg = F.softplus(logits) / p                                           # (Q, P): loss if the target is 0
    return pos @ targets.T + neg @ (1 - targets).T                         # (Q, K)


def pairwise_dice(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``1 - (2|x∩t| + 1) / (|x| + |t| + 1)`` of every prediction against every target, ``(Q, P), (K, P) -> (Q, K)``."""
    probs = logits.sigmoid()
    inter = 2 * probs @ targets.T                                          # (Q, K)
    total = probs.sum(-1)[:, None] + targets.sum(-1)[None, :]              # (Q, K)
    return 1 - (inter + 1) / (total + 1)


def sigmoid_ce_loss(logits: torch.Tensor, targets: torch.Tensor, num_masks: float) -> torch.Tensor:
    """Matched pairs' mean BCE over points, summed over masks, divided by ``num_masks``: ``(N, P), (N, P) -> ()``."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(1).sum() / num_masks


def matched_dice_loss(logits: torch.Tensor, targets: torch.Tensor, num_masks: float) -> torch.Tensor:
    """Matched pairs' Dice loss (``+1`` smoothing) summed over masks, divided by ``num_masks``: ``(N, P) -> ()``.

    Hugging Face's ``dice_loss`` in Mask2Former; named apart from :func:`segcourse.losses.dice_loss`, the
    multi-class soft Dice of lesson 06 (``(N, C, H, W)`` logits against ``(N, H, W)`` labels).
    """
    probs = logits.sigmoid()
    inter = 2 * (probs * targets).sum(-1)
    total = probs.sum(-1) + targets.sum(-1)
    return (1 - (inter + 1) / (total + 1)).sum() / num_masks


def uncertain_points(mask_logits: torch.Tensor, num_points: int, oversample: float = 3.0,
                     importance: float = 0.75, generator: torch.Generator | None = None) -> torch.Tensor:
    """PointRend's importance sampling: ``mask_logits (N, 1, H, W)`` -> points ``(N, num_points, 2)`` in ``[0, 1]²``.

    Draws ``int(num_points * oversample)`` uniform candidates per mask, keeps the
    ``int(importance * num_points)`` with the highest uncertainty ``-|logit|``, then appends uniform points.
    The two ``torch.rand`` calls come in the order Hugging Face's implementation makes them, so with the
    same global seed (``generator=None``) both return the same points.
    """
    n = mask_logits.shape[0]
    candidates = torch.rand(n, int(num_points * oversample), 2, device=mask_logits.device, generator=generator)
    uncertainty = -sample_points(mask_logits, candidates)[:, 0].abs()     # (N, kP)
    k = int(importance * num_points)
    idx = uncertainty.topk(k, dim=1).indices                               # (N, βP)
    chosen = torch.gather(candidates, 1, idx[..., None].expand(-1, -1, 2))  # (N, βP, 2)
    if num_points - k > 0:
        fresh = torch.rand(n, num_points - k, 2, device=mask_logits.device, generator=generator)
        chosen = torch.cat([chosen, fresh], 1)
    return chosen
