"""Semantic and panoptic inference from mask classification (Mask2Former's ``semantic_inference`` and
``panoptic_inference``).

A model gives ``Q`` pairs (class distribution over ``C + 1`` with "no object" last, mask logits).

* **semantic**: ``einsum("qc,qhw->chw", softmax(class)[:, :C], sigmoid(mask))``: each pixel's score for
  class ``c`` sums, over queries, "the query is class c" × "the pixel is in the query's mask"; argmax over ``c``.
* **panoptic**: keep queries whose best class is not "no object" and whose score exceeds
  ``score_threshold``; give each pixel to the kept query with the highest ``score × mask probability``;
  drop a query that wins less than ``overlap_threshold`` of its own mask (prob >= 0.5), as the reference
  code does; a kept query's segment is the pixels it wins inside its own mask (it was mostly covered by others); stuff queries of one class merge into one segment.
  Pixels nobody wins are void.

References:
    Cheng et al., CVPR 2022, https://arxiv.org/abs/2112.01527; the reference code's
    ``MaskFormer.panoptic_inference`` (facebookresearch/Mask2Former, ``mask_former_model.py``).
"""

from __future__ import annotations

from collections.abc import Collection

import torch
import torch.nn.functional as F

__all__ = ["semantic_inference", "panoptic_inference", "VOID"]

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
                       overlap_threshold: float = 0.8, return_segments: bool = False):
    """A panoptic map ``(H, W, 2)`` int64 of ``(category_id, instance_id)`` from one image's query outputs.

    Args:
        class_logits: ``(Q, C + 1)``; mask_logits: ``(Q, h, w)``.
        things: the thing category ids (others are stuff: instance id 0, one segment per class).
        size: output ``(H, W)`` (masks are resized bilinearly first).
        score_threshold: keep queries whose best non-void class probability exceeds it.
        overlap_threshold: drop a query that keeps less than this fraction of its own mask.
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
        own = mask_probs[q] >= 0.5                                  # the query's own mask
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
