"""Hungarian matching of Mask2Former's queries to ground-truth segments (set prediction, as DETR).

For one image with ``Q`` queries and ``K`` target segments the cost of giving target ``k`` to query ``q`` is

    C[q, k] = w_class · (-p_q(c_k)) + w_mask · BCE(m_q, t_k) + w_dice · Dice(m_q, t_k)

with ``p_q`` the softmax class probabilities and the mask terms on ``P`` uniform random points shared by all
masks. ``scipy.optimize.linear_sum_assignment`` picks the ``min(Q, K)`` pairs of least total cost; the other
queries are trained to predict "no object". Matches Hugging Face's ``Mask2FormerHungarianMatcher``
(same cost, same NaN/inf policy: replaced by the largest float so such pairs are chosen last).

References:
    Cheng et al., CVPR 2022, https://arxiv.org/abs/2112.01527; Carion et al., "End-to-End Object Detection
    with Transformers" (DETR), ECCV 2020, https://arxiv.org/abs/2005.12872.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .losses import pairwise_dice, pairwise_sigmoid_ce, sample_points

__all__ = ["matching_cost", "hungarian", "match"]


@torch.no_grad()
def matching_cost(class_logits: torch.Tensor, mask_logits: torch.Tensor, labels: torch.Tensor,
                  masks: torch.Tensor, points: torch.Tensor, *, w_class: float = 2.0, w_mask: float = 5.0,
                  w_dice: float = 5.0) -> dict[str, torch.Tensor]:
    """The cost matrix of one image and its three pieces.

    Args:
        class_logits: ``(Q, C + 1)`` float; mask_logits: ``(Q, h, w)`` float.
        labels: ``(K,)`` int64 class ids; masks: ``(K, H, W)`` float/bool target masks (any resolution).
        points: ``(P, 2)`` float in ``[0, 1]²``, ``(x, y)``.
        w_class, w_mask, w_dice: weights (the paper's 2, 5, 5).

    Returns:
        dict ``class``, ``mask``, ``dice`` and ``total``, each ``(Q, K)`` float.
    """
    probs = class_logits.softmax(-1)                                           # (Q, C+1)
    cost_class = -probs[:, labels]                                              # (Q, K)
    q, k = mask_logits.shape[0], masks.shape[0]
    pred = sample_points(mask_logits[:, None], points[None].expand(q, -1, -1))[:, 0]            # (Q, P)
    target = sample_points(masks[:, None].to(pred), points[None].expand(k, -1, -1))[:, 0]       # (K, P)
    cost_mask, cost_dice = pairwise_sigmoid_ce(pred, target), pairwise_dice(pred, target)
    total = w_class * cost_class + w_mask * cost_mask + w_dice * cost_dice
    return {"class": cost_class, "mask": cost_mask, "dice": cost_dice, "total": total}


def hungarian(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Q, K)`` cost -> ``(query_idx, target_idx)`` int64 of the least-cost one-to-one assignment.

    Both have ``min(Q, K)`` entries, ``target_idx`` sorted by query; NaN/inf costs become the largest float.
    """
    big = torch.finfo(cost.dtype).max
    c = torch.nan_to_num(cost.detach().cpu(), nan=big, posinf=big, neginf=big)
    rows, cols = linear_sum_assignment(c.numpy())
    return torch.as_tensor(np.asarray(rows), dtype=torch.int64), torch.as_tensor(np.asarray(cols), dtype=torch.int64)


@torch.no_grad()
def match(class_logits: torch.Tensor, mask_logits: torch.Tensor, targets: list[dict], *, num_points: int = 1024,
          w_class: float = 2.0, w_mask: float = 5.0, w_dice: float = 5.0,
          generator: torch.Generator | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Match a batch: ``class_logits (B, Q, C+1)``, ``mask_logits (B, Q, h, w)``, ``targets`` a list of ``B`` dicts
    ``{"labels": (K,) int64, "masks": (K, H, W)}`` -> per image ``(query_idx, target_idx)``."""
    out = []
    for b, t in enumerate(targets):
        if len(t["labels"]) == 0:
            empty = torch.zeros(0, dtype=torch.int64)
            out.append((empty, empty))
            continue
        points = torch.rand(num_points, 2, device=mask_logits.device, generator=generator)
        cost = matching_cost(class_logits[b], mask_logits[b], t["labels"], t["masks"], points,
                             w_class=w_class, w_mask=w_mask, w_dice=w_dice)["total"]
        out.append(hungarian(cost))
    return out
