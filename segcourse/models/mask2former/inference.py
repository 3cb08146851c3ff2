"""Semantic and panoptic inference from mask classification (Mask2Former's ``semantic_inference`` and
``panoptic_inference``).

A model gives ``Q`` pairs (class distribution over ``C + 1`` with "no object" last, mask logits).

* **semantic**: ``einsum("qc,qhw->chw", softmax(class)[:, :C], sigmoid(mask))``: each pixel's score for
  class ``c`` sums, over queries, "the query is class c" × "the pixel is in the query's mask"; argmax over ``c``.
* **panoptic**: keep queries whose best class is not "no object" and whose score exceeds
  ``score_threshold``; give each pixel to the kept query with the highest ``score × mask probability``;
  drop a query that wins less than ``overlap_threshold`` of its own mask (prob >= ``mask_threshold``, 0.5 in
  the reference code), as the reference
  code does; a kept query's segment is the pixels it wins inside its own mask (it was mostly covered by others); stuff queries of one class merge into one segment.
  Pixels nobody wins are void.
* **per-pixel baseline** (:func:`panoptic_from_semantic`): a semantic map made panoptic without queries,
  every connected component of a thing class one instance; it scores what per-pixel classification
  gives for free, so PQ has a scale.

References:
    Cheng et al., CVPR 2022, https://arxiv.org/abs/2112.01527; the reference code's
    ``MaskFormer.panoptic_inference`` (facebookresearch/Mask2Former, ``mask_former_model.py``).
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["semantic_inference", "panoptic_inference", "query_verdicts", "thing_coverage", "panoptic_from_semantic",
           "VOID"]

#: Category id of void pixels in the panoptic maps :func:`panoptic_inference` returns.
VOID = -1


def _upsample(mask_logits: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    if size is None or tuple(mask_logits.shape[-2:]) == tuple(size):
        return mask_logits
    return F.interpolate(mask_logits[None], size=size, mode="bilinear", align_corners=False)[0]


def semantic_inference(class_logits: torch.Tensor, mask_logits: torch.Tensor,
                       size: tuple[int, int] | None = None) -> torch.Tensor:
    """Per-class scores ``(C, H, W)`` float from ``class_logits (Q, C+1)`` and ``mask_logits (Q, h, w)``.

    ``size`` resizes the masks first (bilinear); ``.argmax(0)`` gives the semantic map.

    Equal to ``transformers``' ``Mask2FormerImageProcessor.post_process_semantic_segmentation`` scores at
    ``size=(384, 384)`` (tested). Convention: the course (as the original code) resizes the mask *logits* to ``size`` and
    then combines them; transformers always resizes the masks to 384² (its preprocessing size), combines, then resizes the
    *class scores* to the target size, so at other sizes a few boundary pixels may differ (tested).
    """
    class_probs = class_logits.softmax(-1)[:, :-1]                  # (Q, C): "no object" dropped
    mask_probs = _upsample(mask_logits, size).sigmoid()             # (Q, H, W)
    return torch.einsum("qc,qhw->chw", class_probs, mask_probs)


def panoptic_inference(class_logits: torch.Tensor, mask_logits: torch.Tensor, things: Collection[int],
                       size: tuple[int, int] | None = None, *, score_threshold: float = 0.5,
                       overlap_threshold: float = 0.8, mask_threshold: float = 0.5, return_segments: bool = False):
    """A panoptic map ``(H, W, 2)`` int64 of ``(category_id, instance_id)`` from one image's query outputs.

    Args:
        class_logits: ``(Q, C + 1)``; mask_logits: ``(Q, h, w)``.
        things: the thing category ids (others are stuff: instance id 0, one segment per class).
        size: output ``(H, W)`` (masks are resized bilinearly first).
        score_threshold: keep queries whose best non-void class probability exceeds it.
        overlap_threshold: drop a query that keeps less than this fraction of its own mask.
        mask_threshold: a query's own mask is where its mask probability is >= this (0.5 in the paper);
            a won pixel outside the winner's own mask stays void.
        return_segments: also return ``[{"query", "category", "instance", "score", "area"}]``.

    Returns:
        ``(H, W, 2)`` int64; void pixels are ``(VOID, 0)`` (pass ``allow_unknown_preds_category=True`` to
        the PQ metric); thing instance ids are ``1, 2, ...`` per image.

    Follows the original code (``MaskFormer.panoptic_inference``). Equal to ``transformers``'
    ``post_process_panoptic_segmentation`` (``label_ids_to_fuse`` = the stuff classes) where their conventions
    coincide (tested on random class logits with masks of probability 0 or 1 covering the image at 384²). The
    differences, each tested: transformers

    * measures a query's own mask on score-weighted probabilities (``score · prob >= 0.5``, the course
      ``prob >= 0.5``), so a query of score ``s`` only owns pixels of probability ``>= 0.5 / s``;
    * gives a segment every pixel its query wins, also outside the query's mask (the course: void there);
    * drops a query whose kept fraction equals ``overlap_threshold`` (keeps it only when ``>``; the course
      drops it when ``<``);
    * after merging a query into an earlier stuff segment, reuses an id already given to the next new
      segment (two segments become one).

    Also (not tested): transformers resizes the masks to 384², then the *probabilities* to the target size
    (the course: the logits to ``size``), and returns segment ids, not ``(category, instance)`` pairs.
    """
    things = {int(t) for t in things}
    num_classes = class_logits.shape[-1] - 1
    scores, labels = class_logits.softmax(-1).max(-1)               # (Q,), (Q,)
    mask_probs = _upsample(mask_logits, size).sigmoid()             # (Q, H, W)
    keep = (labels != num_classes) & (scores > score_threshold)
    h, w = mask_probs.shape[-2:]
    out = torch.zeros(h, w, 2, dtype=torch.int64)
    out[..., 0] = VOID
    segments: list[dict] = []
    kept = torch.nonzero(keep).flatten()
    if len(kept) == 0:
        return (out, segments) if return_segments else out
    prob = scores[kept, None, None] * mask_probs[kept]              # (Q', H, W)
    winner = prob.argmax(0)                                         # (H, W): index into kept
    stuff_segment: dict[int, dict] = {}
    next_instance = 1
    for j, q in enumerate(kept.tolist()):
        cat = int(labels[q])
        own = mask_probs[q] >= mask_threshold                       # the query's own mask
        won = winner == j                                           # the pixels it wins
        pixels = won & own
        if own.sum() == 0 or pixels.sum() == 0 or won.sum() / own.sum() < overlap_threshold:
            continue                                                # mostly covered by better queries
        if cat in stuff_segment:                                    # a second query of the same stuff class
            stuff_segment[cat]["area"] += int(pixels.sum())
            out[pixels] = torch.tensor([cat, 0])
            continue
        instance = 0
        if cat in things:
            instance, next_instance = next_instance, next_instance + 1
        out[pixels] = torch.tensor([cat, instance])
        seg = {"query": q, "category": cat, "instance": instance, "score": float(scores[q]), "area": int(pixels.sum())}
        segments.append(seg)
        if cat not in things:
            stuff_segment[cat] = seg
    return (out, segments) if return_segments else out


def query_verdicts(class_logits: torch.Tensor, mask_logits: torch.Tensor, things: Collection[int],
                   size: tuple[int, int] | None = None, *, score_threshold: float = 0.5,
                   overlap_threshold: float = 0.8, mask_threshold: float = 0.5) -> list[dict]:
    """Why each query did or did not become a segment in :func:`panoptic_inference` (same arguments).

    Returns:
        one dict per query, in query order: ``{"query", "category", "score", "own_area", "won_fraction",
        "verdict"}``; ``category`` is the best real class (never "no object"), ``score`` its probability,
        ``own_area`` the pixels of the query's own mask (prob >= ``mask_threshold``), ``won_fraction`` the
        pixels it wins anywhere in the argmax over kept queries divided by ``own_area``, the ratio the overlap
        threshold is compared with (as in the reference code: it can exceed 1; NaN when not kept or empty).
        ``verdict``: ``"no object"`` (the "no object" class is its best), ``"low score"`` (score <=
        ``score_threshold``), ``"empty mask"``, ``"covered"`` (wins less than ``overlap_threshold`` of its
        own mask, or none of it) or ``"kept"`` (it gives a segment, or joins its stuff class's segment).
    """
    num_classes = class_logits.shape[-1] - 1
    probs = class_logits.softmax(-1)
    scores, labels = probs.max(-1)
    best_real = probs[:, :-1].argmax(-1)
    mask_probs = _upsample(mask_logits, size).sigmoid()
    keep = (labels != num_classes) & (scores > score_threshold)
    kept = torch.nonzero(keep).flatten().tolist()
    winner = (scores[kept, None, None] * mask_probs[kept]).argmax(0) if kept else None
    out = []
    for q in range(len(class_logits)):
        own = mask_probs[q] >= mask_threshold
        row = {"query": q, "category": int(best_real[q]), "score": float(probs[q, best_real[q]]),
               "own_area": int(own.sum()), "won_fraction": math.nan}
        if labels[q] == num_classes:
            row["verdict"] = "no object"
        elif not keep[q]:
            row["verdict"] = "low score"
        elif row["own_area"] == 0:
            row["verdict"] = "empty mask"
        else:
            won = winner == kept.index(q)
            row["won_fraction"] = float(won.sum() / own.sum())
            row["verdict"] = ("covered" if (won & own).sum() == 0 or row["won_fraction"] < overlap_threshold
                              else "kept")
        out.append(row)
    return out


def thing_coverage(mask_logits: torch.Tensor, panoptic, things: Collection[int], size: tuple[int, int] | None = None,
                   *, mask_threshold: float = 0.5) -> list[dict]:
    """For every ground-truth thing of one image, the best IoU that any query's own mask reaches with it.

    A diagnostic of the masks, before classes and inference: a thing whose ``best_iou`` is at most 0.5 cannot
    become a true positive whatever the score and overlap thresholds are.

    Args:
        mask_logits: ``(Q, h, w)`` one image's mask logits; resized to ``size`` (bilinear) when given.
        panoptic: ``(H, W, 2)`` int ground truth (array or tensor) at that size.
        things: thing category ids.
        mask_threshold: a query's own mask is where its probability is >= this.

    Returns:
        ``[{"category", "instance", "area", "best_iou", "query"}]``, things ordered by category then instance;
        ``query`` is the query reaching ``best_iou`` (whatever its predicted class).
    """
    own = (_upsample(mask_logits, size).sigmoid() >= mask_threshold).flatten(1).float()   # (Q, HW)
    pan = torch.as_tensor(np.asarray(panoptic))
    if tuple(pan.shape[:2]) != tuple(mask_logits.shape[-2:] if size is None else size) or pan.shape[-1] != 2:
        raise ValueError(f"panoptic must be (H, W, 2) at the masks' size, got {tuple(pan.shape)}")
    cat, inst = pan[..., 0].flatten(), pan[..., 1].flatten()
    rows = []
    for c in sorted(int(t) for t in things):
        for i in torch.unique(inst[cat == c]).tolist():
            target = ((cat == c) & (inst == i)).float()
            inter = own @ target
            iou = inter / (own.sum(1) + target.sum() - inter).clamp(min=1)
            q = int(iou.argmax())
            rows.append({"category": c, "instance": int(i), "area": int(target.sum()), "best_iou": float(iou[q]),
                         "query": q})
    return rows


def panoptic_from_semantic(semantic, things: Collection[int], *, connectivity: int = 1,
                           min_area: int = 1) -> torch.Tensor:
    """A per-pixel baseline: semantic maps made panoptic by splitting each thing class into connected components.

    Args:
        semantic: ``(H, W)`` or ``(N, H, W)`` int class map (tensor or array).
        things: thing category ids; every other class is stuff (instance id 0).
        connectivity: 1 (4-neighbours) or 2 (8-neighbours), as ``scipy.ndimage.generate_binary_structure``.
        min_area: components smaller than this many pixels become void (``VOID``).

    Returns:
        ``(..., H, W, 2)`` int64 ``(category_id, instance_id)``; thing instance ids ``1, 2, ...`` per image.
        Two touching objects of one class come out as one segment: what instance-aware models add.
    """
    from scipy import ndimage

    sem = semantic.detach().cpu().numpy() if isinstance(semantic, torch.Tensor) else np.asarray(semantic)
    if sem.ndim not in (2, 3) or np.issubdtype(sem.dtype, np.floating):
        raise ValueError(f"semantic must be an integer (H, W) or (N, H, W) map, got {sem.dtype} {sem.shape}")
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 or 2, got {connectivity}")
    batch = sem[None] if sem.ndim == 2 else sem
    structure = ndimage.generate_binary_structure(2, connectivity)
    out = np.zeros((*batch.shape, 2), np.int64)
    for b, img in enumerate(batch):
        out[b, ..., 0] = img
        next_id = 1
        for c in sorted(int(t) for t in things):
            labels, n = ndimage.label(img == c, structure=structure)
            for k in range(1, n + 1):
                comp = labels == k
                if comp.sum() < min_area:
                    out[b][comp] = (VOID, 0)
                else:
                    out[b][comp] = (c, next_id)
                    next_id += 1
    return torch.from_numpy(out[0] if sem.ndim == 2 else out)
