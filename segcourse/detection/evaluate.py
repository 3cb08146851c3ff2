"""Instance predictions compared (Mask R-CNN's outputs, or lesson 01's watershed from
:func:`segcourse.classical.watershed_labels`), scored and drawn.

* :func:`to_label_map` -- torchvision predictions (soft ``(N, 1, H, W)`` masks, scores) -> one
  ``(H, W)`` instance-id map (a pixel claimed by several detections goes to the highest score);
* :func:`labels_to_prediction` -- an instance map -> a prediction dict that :func:`~segcourse.metrics.mask_ap`
  scores (with the scores given, e.g. :func:`contrast_scores`; without, every instance gets score 1, and
  the AP of such tied scores depends on the order of the images);
* :func:`contrast_scores` -- a confidence for the instances of a method without scores (lesson 01's
  watershed): how far above Otsu's threshold each instance's mean grey level is;
* :func:`pooled_instance_f1` -- instance precision, recall and F1 from TP, FP, FN summed over a dataset
  (not a mean of per-image F1s, which weighs an image with two nuclei like one with twenty);
* :func:`crop_and_paste_ceiling` -- the best mask AP a 28 x 28 mask head can reach: the true masks at the
  true boxes, through the head's crop and paste;
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


def contrast_scores(image, labels: np.ndarray) -> np.ndarray:
    """A score in ``(0, 1)`` per instance of ``labels``: how clearly its pixels pass the threshold.

    ``sigmoid((mean grey inside the instance - Otsu's threshold) / 16)`` on the image's grey levels
    (channel mean, 0..255), Otsu's threshold being the one lesson 01's watershed pipeline applies
    (:func:`segcourse.classical.watershed_labels`). A dim speck that barely passes the threshold scores
    near 0.5, a bright nucleus near 1: a ranking, so that AP is computed on a curve rather than on
    tied scores. The scale 16 only spreads the values; the ranking (all AP sees) does not depend on it.

    Args:
        image: ``(H, W, 3)`` uint8, or ``(3, H, W)`` float in [0, 1].
        labels: ``(H, W)`` int instance ids, 0 = background.

    Returns:
        ``(N,)`` float64, one per id in ``np.unique(labels)[1:]`` (the order of :func:`labels_to_prediction`).
    """
    from scipy import ndimage

    from ..classical import otsu_threshold, to_uint8

    img = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if img.ndim == 3 and img.shape[0] == 3 and img.shape[-1] != 3:
        img = np.moveaxis(img, 0, -1) * 255.0
    grey = to_uint8(img.mean(axis=-1))
    ids = np.unique(labels)
    ids = ids[ids > 0]
    if len(ids) == 0:
        return np.zeros(0)
    means = np.asarray(ndimage.mean(grey.astype(np.float64), labels, ids))
    return 1.0 / (1.0 + np.exp(-(means - float(otsu_threshold(grey))) / 16.0))


def pooled_instance_f1(preds, targets, iou_threshold: float = 0.5) -> dict:
    """Instance precision, recall and F1 over a dataset from TP, FP and FN summed over its images.

    Args:
        preds, targets: sequences of ``(H, W)`` integer instance maps (0 = background), paired by image.
        iou_threshold: the match rule of :func:`segcourse.metrics.match_instances`.

    Returns:
        ``{"precision", "recall", "f1", "tp", "fp", "fn"}``; precision/recall/F1 are 1.0 when there is
        nothing to find and nothing found, as :func:`~segcourse.metrics.instance_f1`.
    """
    from ..metrics.instances import InstanceMatch, match_instances

    if len(preds) != len(targets):
        raise ValueError(f"preds and targets must be paired by image, got {len(preds)} and {len(targets)}")
    pooled = InstanceMatch([], [], [], iou_threshold)            # the per-image matches, concatenated
    for p, t in zip(preds, targets):
        m = match_instances(p, t, iou_threshold)
        pooled.pairs += m.pairs
        pooled.unmatched_pred += m.unmatched_pred
        pooled.unmatched_gt += m.unmatched_gt
        pooled.num_pred, pooled.num_gt = pooled.num_pred + m.num_pred, pooled.num_gt + m.num_gt
    return {"precision": pooled.precision, "recall": pooled.recall, "f1": pooled.f1,
            "tp": pooled.tp, "fp": pooled.fp, "fn": pooled.fn}


def crop_and_paste_ceiling(targets, size: int = 28, box_offset: float = 0.0) -> list[dict]:
    """The predictions a perfect Mask R-CNN would make, through its ``size x size`` mask head.

    Each true mask is cropped at its true box into ``size x size`` (``roi_heads.project_masks_on_boxes``:
    RoIAlign, ``aligned=False``), pasted back at the same box (``paste_masks_in_image``) and thresholded
    at 0.5 -- what the mask head's crop-and-paste keeps of an object even when the box, the class and
    the ``size x size`` mask are all exactly right. Each detection's score is its IoU with its own object:
    an oracle that also ranks perfectly, so :func:`~segcourse.metrics.mask_ap` of these predictions is the
    highest mask AP the head can reach on these images (per threshold ``t``: the share of objects whose
    round trip keeps IoU >= t).

    Args:
        targets: torchvision targets (``boxes (N, 4)`` xyxy, ``masks (N, H, W)``, ``labels (N,)``).
        size: the mask head's resolution (28 in Mask R-CNN).
        box_offset: added to ``x2, y2`` before the crop and paste: 0 uses the boxes as given (the course's
            continuous edges), -1 the pixel indices of ``masks_to_boxes`` -- to compare the two conventions.

    Returns:
        one dict per image: ``boxes`` (the true boxes), ``masks`` ``(N, H, W)`` bool, ``scores`` ``(N,)``
        float32, ``labels``.
    """
    from torchvision.models.detection.roi_heads import paste_masks_in_image, project_masks_on_boxes

    out = []
    for t in targets:
        masks, boxes, labels = t["masks"], t["boxes"].float(), t["labels"]
        h, w = masks.shape[-2:]
        if len(masks) == 0:
            out.append({"boxes": boxes, "masks": torch.zeros((0, h, w), dtype=torch.bool),
                        "scores": torch.zeros(0), "labels": labels})
            continue
        crop_boxes = boxes + torch.tensor([0.0, 0.0, box_offset, box_offset])
        small = project_masks_on_boxes(masks, crop_boxes, torch.arange(len(masks)), size)      # (N, size, size)
        back = paste_masks_in_image(small[:, None], crop_boxes, (h, w))[:, 0] > 0.5            # (N, H, W)
        truth = masks.bool()
        iou = (back & truth).flatten(1).sum(1) / (back | truth).flatten(1).sum(1).clamp(min=1)
        out.append({"boxes": boxes, "masks": back, "scores": iou.float(), "labels": labels})
    return out
