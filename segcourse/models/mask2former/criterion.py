"""Mask2Former's training loss: Hungarian matching, class cross-entropy, point-sampled mask BCE and Dice,
on the final prediction and on every auxiliary (per-layer) prediction.

For each prediction set: match queries to targets (:func:`~.matcher.match`), then

* class: cross-entropy over all ``B × Q`` queries, unmatched ones labelled "no object" (the last class),
  whose weight is ``no_object_weight`` (0.1) so the many empty queries do not swamp the few matched ones;
* masks: for matched pairs only, BCE and Dice on ``num_points`` importance-sampled points
  (:func:`~.losses.uncertain_points`), each summed over masks and divided by the number of target masks
  in the batch.

``total = Σ_sets (w_class · class + w_mask · mask + w_dice · dice)`` with the paper's weights 2, 5, 5.
Equal to Hugging Face's ``Mask2FormerLoss`` weighted as ``Mask2FormerForUniversalSegmentation.get_loss_dict``:
every term, every auxiliary term, the total and its gradients, on the same random points (same global seed).
One convention differs: for an image without targets the course draws no matching points, transformers
still draws ``torch.rand(1, P, 2)``; so with such an image in the batch the two use other random points
(the tests check that with that draw made by hand the losses are equal).

References:
    Cheng et al., CVPR 2022, https://arxiv.org/abs/2112.01527 (section 4, "Loss weights").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .losses import matched_dice_loss, sample_points, sigmoid_ce_loss, uncertain_points
from .matcher import match

__all__ = ["SetCriterion", "mask_losses"]


def mask_losses(mask_logits: torch.Tensor, target_masks: torch.Tensor, num_masks: float, *, num_points: int,
                oversample: float = 3.0, importance: float = 0.75,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BCE and Dice of matched masks on uncertain points.

    Args:
        mask_logits: ``(N, h, w)`` float, the matched predictions; target_masks: ``(N, H, W)`` float.
        num_masks: normaliser (target masks in the batch).

    Returns:
        ``(bce, dice)`` scalar tensors.
    """
    pred = mask_logits[:, None]                                             # (N, 1, h, w)
    with torch.no_grad():
        points = uncertain_points(pred, num_points, oversample, importance, generator=generator)  # (N, P, 2)
        labels = sample_points(target_masks[:, None].to(pred), points)[:, 0]                       # (N, P)
    logits = sample_points(pred, points)[:, 0]                              # (N, P)
    return sigmoid_ce_loss(logits, labels, num_masks), matched_dice_loss(logits, labels, num_masks)


class SetCriterion:
    """``criterion(outputs, targets) -> dict`` of named losses, ``"loss"`` their weighted sum.

    Args:
        num_classes: ``C`` (the models predict ``C + 1`` logits).
        num_points: points per mask for the matching cost and for the loss.
        w_class, w_mask, w_dice: loss (and matching-cost) weights.
        no_object_weight: cross-entropy weight of the "no object" class.
        aux: also apply the loss to ``outputs["aux"]`` (the per-layer predictions).
    """

    def __init__(self, num_classes: int, *, num_points: int = 1024, w_class: float = 2.0, w_mask: float = 5.0,
                 w_dice: float = 5.0, no_object_weight: float = 0.1, oversample: float = 3.0,
                 importance: float = 0.75, aux: bool = True):
        self.num_classes, self.num_points = num_classes, num_points
        self.w_class, self.w_mask, self.w_dice = w_class, w_mask, w_dice
        self.no_object_weight, self.oversample, self.importance, self.aux = no_object_weight, oversample, importance, aux

    def single(self, class_logits: torch.Tensor, mask_logits: torch.Tensor, targets: list[dict],
               num_masks: float) -> dict[str, torch.Tensor]:
        """Losses of one prediction set: ``class_logits (B, Q, C+1)``, ``mask_logits (B, Q, h, w)``."""
        indices = match(class_logits, mask_logits, targets, num_points=self.num_points,
                        w_class=self.w_class, w_mask=self.w_mask, w_dice=self.w_dice)
        b, q, _ = class_logits.shape
        target_classes = torch.full((b, q), self.num_classes, dtype=torch.int64, device=class_logits.device)
        for i, ((src, tgt), t) in enumerate(zip(indices, targets)):
            target_classes[i, src.to(class_logits.device)] = t["labels"][tgt.to(t["labels"].device)].to(class_logits.device)
        weight = torch.ones(self.num_classes + 1, device=class_logits.device)
        weight[-1] = self.no_object_weight
        loss_class = F.cross_entropy(class_logits.transpose(1, 2), target_classes, weight=weight)
        src_masks = torch.cat([mask_logits[i, src] for i, (src, _) in enumerate(indices)])          # (N, h, w)
        tgt_masks = torch.cat([t["masks"][tgt] for (_, tgt), t in zip(indices, targets)]).to(src_masks)  # (N, H, W)
        if len(src_masks) == 0:
            zero = mask_logits.sum() * 0.0
            loss_mask = loss_dice = zero
        else:
            loss_mask, loss_dice = mask_losses(src_masks, tgt_masks, num_masks, num_points=self.num_points,
                                               oversample=self.oversample, importance=self.importance)
        return {"class": loss_class, "mask": loss_mask, "dice": loss_dice}

    def __call__(self, outputs: dict, targets: list[dict]) -> dict[str, torch.Tensor]:
        num_masks = max(float(sum(len(t["labels"]) for t in targets)), 1.0)
        sets = [outputs] + (list(outputs.get("aux", [])) if self.aux else [])
        losses: dict[str, torch.Tensor] = {}
        total = 0.0
        for i, s in enumerate(sets):
            parts = self.single(s["class_logits"], s["mask_logits"], targets, num_masks)
            suffix = "" if i == 0 else f"_aux{i - 1}"
            for k, v in parts.items():
                losses[f"loss_{k}{suffix}"] = v
            total = total + self.w_class * parts["class"] + self.w_mask * parts["mask"] + self.w_dice * parts["dice"]
        losses["loss"] = total
        return losses
