"""The loss Segment Anything trains with: focal + Dice on the best of the masks, MSE on the predicted IoU.

For a prompt the decoder returns ``K`` masks (whole, part, subpart) and ``K`` predicted IoUs. SAM's rule
(Kirillov et al. 2023, Section 3 and Appendix A): the mask loss is a linear combination of focal and Dice
loss in the ratio 20 : 1, and with several masks only the *lowest* of the ``K`` mask losses is
back-propagated -- so a mask token is free to specialise (whole or part) instead of being pulled to the
average of the valid answers. The IoU head is trained with the mean-squared error between its
prediction and the actual IoU of the (thresholded) mask with the ground truth.

Conventions: the focal loss is torchvision's ``sigmoid_focal_loss`` (``alpha = 0.25``, ``gamma = 2``)
averaged over the pixels of each mask; the Dice loss is ``1 - (2 sum(p t) + 1) / (sum p + sum t + 1)``
per mask (the smoothed form of Hugging Face ``transformers``' ``dice_loss``, which Mask2Former and SAM
reimplementations use); both are checked in ``tests/losses/test_promptable.py``. The IoU target is
computed without gradient. One choice that SAM's paper leaves open: the MSE is taken on every one of the
``K`` IoU predictions, not only the chosen mask's, since picking among the ``K`` masks is exactly what
the IoU head is for.

Shapes: ``mask_logits`` float ``(B, K, H, W)``, ``iou_pred`` float ``(B, K)``, ``target`` ``(B, H, W)``
of 0/1 (bool, int or float). Returns a dict of float scalars ``loss`` (the total), ``focal``, ``dice``,
``iou_mse``, and ``best`` int64 ``(B,)``, the index of the mask that was trained.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

FOCAL_WEIGHT, DICE_WEIGHT, IOU_WEIGHT = 20.0, 1.0, 1.0


def per_mask_focal(logits: torch.Tensor, target: torch.Tensor, *, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal loss averaged over each mask's pixels: ``(B, K, H, W)`` x2 -> float ``(B, K)``."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.flatten(2).mean(-1)


def per_mask_dice(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Smoothed soft Dice loss of each mask: ``(B, K, H, W)`` x2 -> float ``(B, K)``."""
    p = torch.sigmoid(logits).flatten(2)
    t = target.flatten(2)
    return 1 - (2 * (p * t).sum(-1) + smooth) / (p.sum(-1) + t.sum(-1) + smooth)


def mask_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of each mask thresholded at logit 0 with the target: float ``(B, K)``; two empty masks give 1."""
    pred = (logits > 0).flatten(2)
    t = target.flatten(2) > 0.5
    inter = (pred & t).sum(-1).float()
    union = (pred | t).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def sam_loss(mask_logits: torch.Tensor, iou_pred: torch.Tensor, target: torch.Tensor, *,
             focal_weight: float = FOCAL_WEIGHT, dice_weight: float = DICE_WEIGHT, iou_weight: float = IOU_WEIGHT) -> dict:
    """SAM's training loss (see the module docstring for the rule, shapes and conventions)."""
    if mask_logits.ndim != 4 or iou_pred.shape != mask_logits.shape[:2]:
        raise ValueError(f"mask_logits must be (B, K, H, W) and iou_pred (B, K); got {tuple(mask_logits.shape)} and {tuple(iou_pred.shape)}")
    if target.shape[-2:] != mask_logits.shape[-2:] or target.shape[0] != mask_logits.shape[0]:
        raise ValueError(f"target must be (B, H, W) = {(mask_logits.shape[0], *mask_logits.shape[-2:])}, got {tuple(target.shape)}")
    t = target.reshape(target.shape[0], 1, *target.shape[-2:]).to(mask_logits.dtype).expand_as(mask_logits)
    focal, dice = per_mask_focal(mask_logits, t), per_mask_dice(mask_logits, t)
    per_mask = focal_weight * focal + dice_weight * dice                    # (B, K)
    best = per_mask.detach().argmin(dim=1)
    rows = torch.arange(len(best), device=best.device)
    with torch.no_grad():
        iou = mask_iou(mask_logits, t)
    iou_mse = F.mse_loss(iou_pred, iou)
    mask_loss = per_mask[rows, best].mean()
    return {"loss": mask_loss + iou_weight * iou_mse, "focal": focal[rows, best].mean(), "dice": dice[rows, best].mean(),
            "iou_mse": iou_mse, "best": best}
