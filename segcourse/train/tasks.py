"""What :func:`~segcourse.train.fit` needs to know about a kind of model: a :class:`Task`.

The loop in :mod:`segcourse.train.epoch` and :func:`~segcourse.train.fit` never looks inside a batch
or a model's output: a task moves a batch to the device, computes its loss, and scores a
validation loader. Three tasks ship with the course:

* :class:`SegmentationTask` (here) -- ``(images, target)`` batches, a ``loss_fn(logits, target)``,
  validation scores from one confusion matrix pooled over the whole loader; monitors ``val_miou``;
* :class:`~segcourse.train.detection.DetectionTask` -- torchvision detectors (Mask R-CNN) that
  return a dict of losses; monitors ``val_loss``;
* :class:`~segcourse.models.mask2former.train.Mask2FormerTask` -- Mask2Former and its set
  criterion; monitors ``val_loss``.

Conventions (the course glossary): a segmentation loader yields ``(images, target)`` with ``images``
float ``(N, 3, H, W)`` and ``target`` int64 ``(N, H, W)`` class ids, :data:`~segcourse.IGNORE_INDEX`
marking pixels to skip. The model returns ``logits`` ``(N, C, H, W)``; ``C = 1`` means a binary
model (foreground probability = ``sigmoid(logits)``, prediction = ``logits > 0``) evaluated as
two classes, background and foreground.

References:
    Long et al., "Fully Convolutional Networks for Semantic Segmentation" (pixel accuracy, mean accuracy,
    mean IoU and frequency-weighted IoU from one confusion matrix), https://arxiv.org/abs/1411.4038
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from ..constants import IGNORE_INDEX
from ..metrics import ConfusionMatrix, logits_to_pred, scores_from_confusion
from ..models.outputs import model_logits
from . import distributed as ddp
from .amp import Precision, autocast, to_device
from .progress import progress_bar


@runtime_checkable
class Task(Protocol):
    """How :func:`~segcourse.train.fit` runs one kind of model.

    Attributes:
        monitor: the record key ``fit`` monitors when its ``monitor`` option is left unset
            (``"val_miou"`` for segmentation, ``"val_loss"`` for a detector).
        mode: that key's direction, ``"max"`` (a score) or ``"min"`` (a loss).
    """

    monitor: str
    mode: Literal["min", "max"]

    def to_device(self, batch: Any, device: torch.device, precision: Precision) -> Any:
        """The loader's batch, checked and on ``device``."""

    def batch_size(self, batch: Any) -> int:
        """Images in ``batch`` (the weight of its loss in the epoch's mean)."""

    def training_loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Forward and loss: ``(the loss to minimise, its named parts for the history (may be empty))``."""

    def evaluate(self, model: nn.Module, loader: Any, *, device: torch.device, precision: Precision,
                 progress: bool, dist_info: ddp.DistInfo, examples: int = 0) -> dict[str, Any]:
        """Validation scores over ``loader`` (``fit`` records each under ``val_<name>``). A task that can
        show predictions returns ``scores["examples"]``, the first ``examples`` ``(images, target, pred)``."""


# ---------------------------------------------------------------------------------------------
# semantic segmentation
# ---------------------------------------------------------------------------------------------


def loss_ignore_index(loss_fn: Callable | None) -> int | None:
    """The target value ``loss_fn`` skips, where it says (``None`` where it does not).

    ``torch.nn.CrossEntropyLoss`` and ``NLLLoss`` and the course's loss modules (:mod:`segcourse.losses`)
    keep it as ``loss_fn.ignore_index``.
    """
    value = getattr(loss_fn, "ignore_index", None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def resolve_ignore_index(loss_fn: Callable | None, ignore_index: int | None) -> int:
    """The one target value both the loss and the metrics skip.

    ``ignore_index=None``: the loss's own (see :func:`loss_ignore_index`), else :data:`IGNORE_INDEX`.
    An explicit value must be the loss's: fit cannot change what a loss does, so a loss that would
    train on the pixels the metrics skip (or one that does not say which it skips) is refused.
    """
    from_loss = loss_ignore_index(loss_fn)
    if ignore_index is None:
        return IGNORE_INDEX if from_loss is None else from_loss
    if not isinstance(ignore_index, int) or isinstance(ignore_index, bool):
        raise TypeError(f"ignore_index must be an int or None, got {ignore_index!r}")
    if loss_fn is None:
        return ignore_index
    if from_loss is None:
        raise ValueError(f"ignore_index={ignore_index} was given but loss_fn ({type(loss_fn).__name__}) does not say "
                         "which target value it skips, so it may train on those pixels: build the loss with "
                         f"ignore_index={ignore_index} as an attribute (e.g. nn.CrossEntropyLoss(ignore_index="
                         f"{ignore_index})), or leave fit's ignore_index unset")
    if from_loss != ignore_index:
        raise ValueError(f"ignore_index={ignore_index} but loss_fn skips target value {from_loss}: the loss would train "
                         f"on the pixels the metrics skip; build the loss with ignore_index={ignore_index} "
                         f"(e.g. nn.CrossEntropyLoss(ignore_index={ignore_index}))")
    return ignore_index


def check_target(target: torch.Tensor, logits: torch.Tensor | None = None) -> None:
    """A clear error for a target that is not ``(N, H, W)`` integer class ids matching ``logits``."""
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor of class ids, got {type(target).__name__}")
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise TypeError(f"target must hold integer class ids (int64), got dtype {target.dtype}; "
                        "convert it with target.long()")
    if target.dim() != 3:
        hint = " (squeeze the channel dimension: target[:, 0])" if target.dim() == 4 and target.shape[1] == 1 else ""
        raise ValueError(f"target must be (N, H, W) class ids, got shape {tuple(target.shape)}{hint}")
    if logits is not None and (logits.shape[0] != target.shape[0] or logits.shape[2:] != target.shape[1:]):
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} disagree: "
                         "expected logits (N, C, H, W) and target (N, H, W) with the same N, H, W")


def summarize_confusion(cm) -> dict[str, Any]:
    """The scores :func:`~segcourse.train.evaluate` reports, from one pooled confusion matrix (rows = truth).

    :func:`segcourse.metrics.scores_from_confusion` does the arithmetic (classes absent from
    truth and prediction get NaN and are left out of the means); this turns its per-class
    tensors into lists, so that a history record is plain JSON.

    Returns:
        dict with ``pixel_accuracy``, ``mean_accuracy``, ``miou``, ``fwiou``, ``dice`` (mean Dice
        over classes, like ``miou``) floats and ``iou_per_class``, ``dice_per_class``,
        ``precision_per_class``, ``recall_per_class`` lists.
    """
    s = scores_from_confusion(cm)
    out = {k: float(s[k]) for k in ("pixel_accuracy", "mean_accuracy", "miou", "fwiou")}
    out["dice"] = _nanmean(s["dice"])
    for key in ("iou", "dice", "precision", "recall"):
        out[f"{key}_per_class"] = [float(v) for v in torch.as_tensor(s[key]).reshape(-1)]
    return out


def _nanmean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


class SegmentationTask:
    """Semantic segmentation: ``(images, target)`` batches, ``loss_fn(logits, target)``, pooled-confusion scores.

    Args:
        loss_fn: ``loss_fn(logits, target) -> scalar`` (``None``: validation reports no loss, and
            training is refused).
        num_classes: classes of the validation confusion matrix (default: from the model's output).
        ignore_index: the target value the loss and the metrics skip (see :func:`resolve_ignore_index`).
    """

    monitor = "val_miou"
    mode: Literal["min", "max"] = "max"

    def __init__(self, loss_fn: Callable | None, num_classes: int | None = None, ignore_index: int | None = None):
        self.loss_fn = loss_fn
        self.num_classes = num_classes
        self.ignore_index = resolve_ignore_index(loss_fn, ignore_index)

    def to_device(self, batch, device: torch.device, precision: Precision):
        if isinstance(batch, Mapping):  # dict-style datasets: {"image": ..., "mask": ...}
            batch = (_first_key(batch, ("image", "images")), _first_key(batch, ("mask", "masks", "target")))
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            length = f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""
            raise TypeError("a segmentation loader must yield (images, target) pairs; "
                            f"got {type(batch).__name__}{length}")
        images, target = batch[0], batch[1]
        if not isinstance(images, torch.Tensor) or not images.is_floating_point():
            got = getattr(images, "dtype", type(images).__name__)
            raise TypeError(f"images must be a float tensor (N, 3, H, W), got {got}; "
                            "convert uint8 images with .float() / 255")
        if isinstance(target, torch.Tensor) and target.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32):
            target = target.long()  # masks often arrive as uint8; losses and metrics want int64 class ids
        return to_device(images, device, precision), to_device(target, device, precision)

    def batch_size(self, batch) -> int:
        return int(batch[0].shape[0])

    def training_loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.loss_fn is None:
            raise TypeError("training a segmentation model needs loss_fn=..., "
                            "e.g. torch.nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)")
        images, target = batch
        logits = model_logits(model(images))
        return self.loss_fn(logits, target), {}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader, *, device: torch.device, precision: Precision, progress: bool,
                 dist_info: ddp.DistInfo, examples: int = 0, desc: str = "val") -> dict[str, Any]:
        """The scores of :func:`~segcourse.train.evaluate`, on every rank's share of ``loader`` added up;
        ``examples > 0`` adds ``scores["examples"]``, the first batch's ``(images, target, pred)`` cut to
        that many images, for the TensorBoard logger."""
        was_training = model.training
        model.eval()
        cm = None
        total_loss = torch.zeros((), dtype=torch.float64, device=device)
        images_seen = torch.zeros((), dtype=torch.float64, device=device)
        kept = None  # the first batch's (images, target, pred), when examples > 0
        try:
            for batch in progress_bar(loader, desc=desc, progress=progress):
                images, target = self.to_device(batch, device, precision)
                with autocast(precision, device):
                    logits = model_logits(model(images))
                check_target(target, logits)
                if cm is None:  # the number of classes is known once the model has spoken
                    cm = ConfusionMatrix(self.num_classes or max(2, logits.shape[1]), ignore_index=self.ignore_index)
                if self.loss_fn is not None:
                    total_loss += self.loss_fn(logits, target).double() * images.shape[0]
                pred = logits_to_pred(logits.float())
                cm.update(pred, target)  # pooled over the whole loader
                if examples and kept is None:
                    kept = tuple(t[:examples].detach().cpu() for t in (images, target, pred))
                images_seen += images.shape[0]
        finally:
            model.train(was_training)
        if cm is None:
            if self.num_classes is None:
                raise ValueError("the evaluation loader yielded no batches and num_classes was not given")
            cm = ConfusionMatrix(self.num_classes, ignore_index=self.ignore_index)
        num_classes = cm.num_classes
        cm = cm.compute().to(device)  # (C, C) int64, rows = truth, columns = prediction
        # DDP: every rank evaluated its own share; add the matrices and sums up
        ddp.all_reduce_sum(cm, dist_info)
        ddp.all_reduce_sum(total_loss, dist_info)
        ddp.all_reduce_sum(images_seen, dist_info)
        scores = summarize_confusion(cm)
        if num_classes == 2:
            scores["fg_iou"] = scores["iou_per_class"][1]
            scores["fg_dice"] = scores["dice_per_class"][1]
        scores["confusion"] = cm.cpu().tolist()
        scores["images"] = int(images_seen.item())
        if self.loss_fn is not None:
            scores["loss"] = total_loss.item() / max(images_seen.item(), 1)
        if kept is not None:
            scores["examples"] = kept
        return scores


def _first_key(batch: Mapping, keys: tuple[str, ...]):
    for key in keys:
        if key in batch:
            return batch[key]
    raise TypeError(f"a dict batch needs one of the keys {keys}; it has {list(batch)}")
