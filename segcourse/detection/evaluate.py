"""Instance predictions compared (Mask R-CNN's outputs, or lesson 01's watershed from
:func:`segcourse.classical.watershed_labels`), scored and drawn.

* :func:`to_label_map` -- torchvision predictions (soft ``(N, 1, H, W)`` masks, scores) -> one
  ``(H, W)`` instance-id map (a pixel claimed by several detections goes to the highest score);
* :func:`labels_to_prediction` -- an instance map -> a prediction dict that :func:`~segcourse.metrics.mask_ap`
  scores (every instance gets score 1: a method without scores has a single operating point);
* :func:`draw_instances` -- one picture: instances in distinct colours, boxes, scores, false
  positives (red outline) and missed ground truth (yellow outline) at a stated IoU.
"""

from __future__ import annotations

import numpy as np
import torch


def to_label_map(prediction: dict, score_thresh: float = 0.5, mask_threshold: float = 0.5) -> np.ndarray:
    """``(H, W)`` int32 instance ids (1 = highest score) from one torchvision prediction dict.

    Detections with ``score >= score_thresh`` are kept; each pixel goes to the highest-scoring kept
    detection whose mask there is ``> mask_threshold``.
    """
    masks = prediction["masks"]
    masks = masks.detach().cpu().numpy() if hasattr(masks, "detach") else np.asarray(masks)
    if masks.ndim == 4:
        masks = masks[:, 0]
    scores = np.asarray(prediction["scores"].detach().cpu() if hasattr(prediction["scores"], "detach")
                        else prediction["scores"], dtype=np.float64)
    h, w = masks.shape[-2:]
    labels = np.zeros((h, w), np.int32)
    order = np.argsort(-scores, kind="stable")
    next_id = 1
    for k in order:
        if scores[k] < score_thresh:
            break
        free = (masks[k] > mask_threshold) & (labels == 0)
        if free.sum() == 0:
            continue
        labels[free] = next_id
        next_id += 1
    return labels


def labels_to_prediction(labels: np.ndarray, scores: np.ndarray | None = None) -> dict:
    """An ``(H, W)`` instance map -> ``{"masks": (N, H, W) bool, "scores": (N,), "labels": (N,) ones}``."""
    ids = np.unique(labels)
    ids = ids[ids > 0]
    masks = labels[None] == ids[:, None, None]
    if scores is None:
        scores = np.ones(len(ids))
    return {"masks": torch.from_numpy(masks), "scores": torch.as_tensor(scores, dtype=torch.float32),
            "labels": torch.ones(len(ids), dtype=torch.int64)}


def draw_instances(ax, image, labels: np.ndarray, gt_labels: np.ndarray, boxes=None, scores=None,
                   iou_threshold: float = 0.5, title: str = "") -> dict:
    """Draw predicted instances (distinct colours), their boxes and scores, false positives and misses.

    Args:
        ax: a matplotlib axis.
        image: ``(3, H, W)`` float or ``(H, W, 3)`` uint8.
        labels: ``(H, W)`` predicted instance ids; gt_labels: ``(H, W)`` true ids.
        boxes, scores: optional ``(K, 4)`` ``xyxy`` boxes and ``(K,)`` scores, drawn as white
            rectangles labelled with their score.
        iou_threshold: the match rule of :func:`segcourse.metrics.match_instances`.

    Returns:
        the match counts ``{"tp", "fp", "fn"}``.
    """
    from matplotlib import patches
    from skimage.color import label2rgb
    from skimage.segmentation import find_boundaries

    from ..metrics.instances import match_instances

    img = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if img.ndim == 3 and img.shape[0] == 3 and img.shape[-1] != 3:
        img = np.moveaxis(img, 0, -1)
    img = img.astype(np.float64) / (255.0 if img.max() > 1.0 else 1.0)
    m = match_instances(labels, gt_labels, iou_threshold)
    ax.imshow(label2rgb(labels, image=img, bg_label=0, alpha=0.45, kind="overlay"))
    fp = np.isin(labels, m.unmatched_pred) & find_boundaries(labels, mode="inner")
    fn = np.isin(gt_labels, m.unmatched_gt) & find_boundaries(gt_labels, mode="inner")
    overlay = np.zeros((*labels.shape, 4))
    overlay[fp] = (1.0, 0.0, 0.0, 1.0)
    overlay[fn] = (1.0, 0.9, 0.0, 1.0)
    ax.imshow(overlay)
    if boxes is not None:
        for k, b in enumerate(np.asarray(boxes)):
            x1, y1, x2, y2 = (float(v) for v in b)
            ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=0.6, ec="white"))
            if scores is not None:
                ax.text(x1, y1, f"{float(scores[k]):.2f}", color="white", fontsize=5, va="bottom")
    ax.set_title(title or f"TP {m.tp}  FP {m.fp} (red)  missed {m.fn} (yellow)", fontsize=8)
    ax.axis("off")
    return {"tp": m.tp, "fp": m.fp, "fn": m.fn}
