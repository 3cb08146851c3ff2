"""pycocotools' COCOeval(iouType="segm") on torchvision-format predictions and targets (test helper, shared by tests/metrics and tests/detection)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def _ground_truth(preds, targets) -> COCO:
    """The targets as an indexed pycocotools ground truth (RLE masks; ``bbox`` and ``area`` from ``toBbox``/``area``)."""
    images, anns = [], []
    labels = sorted({int(x) for e in list(preds) + list(targets) for x in e["labels"]})
    for i, t in enumerate(targets):
        h, w = t["masks"].shape[-2:]
        images.append({"id": i, "height": int(h), "width": int(w)})
        for m, lab in zip(t["masks"], t["labels"]):
            rle = mask_utils.encode(np.asfortranarray(np.asarray(m, np.uint8)))
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(lab), "segmentation": rle,
                         "area": float(mask_utils.area(rle)), "bbox": list(mask_utils.toBbox(rle)), "iscrowd": 0})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": c} for c in labels]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def coco_segm(preds, targets, threshold=0.5):
    """pycocotools on torchvision-format lists (soft prediction masks thresholded at ``> threshold``)."""
    gt, dets = _ground_truth(preds, targets), []
    for i, (p, t) in enumerate(zip(preds, targets)):
        h, w = t["masks"].shape[-2:]
        for m, s, lab in zip(p["masks"], p["scores"], p["labels"]):
            m = np.asarray(m).reshape(h, w)
            rle = mask_utils.encode(np.asfortranarray((m > threshold).astype(np.uint8)))
            dets.append({"image_id": i, "category_id": int(lab), "segmentation": rle, "score": float(s)})
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(dets) if dets else COCO()
        ev = COCOeval(gt, dt, iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[:3]


def coco_precision(preds, targets, iou_type="segm", area_rng=(0.0, 1e10), threshold=0.5):
    """pycocotools' ``COCOeval(iouType)`` accumulated ``precision[T, R, K]`` for one area range (maxDets 100).

    Boxes: the course's ``xyxy`` with continuous edges go to COCO as ``[x1, y1, x2 - x1, y2 - y1]`` for the
    detections; the ground truth's ``bbox`` is pycocotools' own ``toBbox`` of the mask.
    """
    gt, dets = _ground_truth(preds, targets), []
    for i, (p, t) in enumerate(zip(preds, targets)):
        h, w = t["masks"].shape[-2:]
        for k, (s, lab) in enumerate(zip(p["scores"], p["labels"])):
            if iou_type == "bbox":
                x1, y1, x2, y2 = (float(v) for v in p["boxes"][k])
                dets.append({"image_id": i, "category_id": int(lab), "bbox": [x1, y1, x2 - x1, y2 - y1],
                             "score": float(s)})
            else:
                m = np.asarray(p["masks"][k]).reshape(h, w)
                rle = mask_utils.encode(np.asfortranarray((m > threshold).astype(np.uint8)))
                dets.append({"image_id": i, "category_id": int(lab), "segmentation": rle, "score": float(s)})
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(dets) if dets else COCO()
        ev = COCOeval(gt, dt, iouType=iou_type)
        ev.params.areaRng = [list(area_rng)]
        ev.params.areaRngLbl = ["range"]
        ev.evaluate()
        ev.accumulate()
    return ev.eval["precision"][:, :, :, 0, 2]
