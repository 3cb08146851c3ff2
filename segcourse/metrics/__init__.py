"""Segmentation metrics written by hand, each equal to the implementation the field trusts.

* :mod:`~segcourse.metrics.confusion` -- ``confusion_matrix``, the streaming ``ConfusionMatrix``,
  ``scores_from_confusion`` (pixel accuracy, mean accuracy, IoU/mIoU, FWIoU, Dice, precision,
  recall); mIoU equals torchmetrics' ``MulticlassJaccardIndex(average="macro")`` on pooled data.
* :mod:`~segcourse.metrics.boundary` -- ``boundary_iou`` (Cheng et al.'s reference code),
  ``hausdorff_distance``, ``average_surface_distance``, ``surface_dice`` (equal to MONAI's).
* :mod:`~segcourse.metrics.mask_ap` -- ``mask_ap``, COCO mask AP equal to pycocotools' COCOeval.
* :mod:`~segcourse.metrics.panoptic` -- ``panoptic_quality`` (PQ, SQ, RQ) equal to COCO panopticapi's
  ``pq_compute`` (default) or to torchmetrics' (``void_handling="torchmetrics"``).
* :mod:`~segcourse.metrics.instances` -- ``match_instances``, ``instance_f1`` (instance matching
  for the classical lessons).
* :mod:`~segcourse.metrics.objects` -- ``object_recall``: per-object recall of small and large objects,
  per class and class-agnostic (a diagnostic, lesson 05).
* :mod:`~segcourse.metrics.threshold` -- ``binary_scores``, ``threshold_sweep``, ``best_threshold``: binary
  scores and the choice of a threshold on a probability map (the lesson-07 threshold explorer).
* :mod:`~segcourse.metrics.per_case` -- ``per_case_dice``: per-image Dice with an explicit empty-case policy.

The demonstration scenarios of lesson 07 (fake predictions, deliberately wrong formulas) are in
:mod:`segcourse.teaching.demos`.

Everything takes class ids (not logits): use :func:`logits_to_pred` first.
"""

from .boundary import average_surface_distance, boundary_iou, hausdorff_distance, mean_boundary_iou, surface_dice
from .confusion import ConfusionMatrix, confusion_matrix, logits_to_pred, scores_from_confusion
from .instances import instance_f1, match_instances
from .mask_ap import mask_ap
from .objects import object_recall
from .panoptic import panoptic_quality

__all__ = [
    "ConfusionMatrix",
    "average_surface_distance",
    "boundary_iou",
    "confusion_matrix",
    "hausdorff_distance",
    "instance_f1",
    "logits_to_pred",
    "mask_ap",
    "match_instances",
    "mean_boundary_iou",
    "object_recall",
    "panoptic_quality",
    "scores_from_confusion",
    "surface_dice",
]

