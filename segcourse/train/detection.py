"""Training detectors (Mask R-CNN) through the same engine as segmentation models.

torchvision's detection models have a different contract from a segmentation network:

* in ``train()`` mode, ``model(images, targets)`` returns a **dict of losses**
  (``loss_classifier``, ``loss_box_reg``, ``loss_mask``, ``loss_objectness``, ``loss_rpn_box_reg``);
* in ``eval()`` mode, ``model(images)`` returns one dict of predictions per image;
* ``images`` is a *list* of ``(3, H, W)`` float tensors (sizes may differ) and ``targets`` a
  list of dicts: ``boxes`` (FloatTensor[K, 4], ``[x1, y1, x2, y2]`` with ``0 <= x1 < x2 <= W``),
  ``labels`` (Int64Tensor[K], 0 is background), ``masks`` (UInt8Tensor[K, H, W]).

:class:`DetectionTask` adapts that contract to :func:`segcourse.train.fit`, so progress bars,
mixed precision, gradient accumulation and clipping, checkpoints, resume, early stopping,
DDP and the history are shared::

    history = fit(model, train_loader, val_loader, task=DetectionTask(), epochs=10)

The history records ``train_loss`` (the sum) and each component (``train_loss_mask``...),
``val_loss`` and its components, plus whatever ``metric_fn`` returns (e.g. COCO mask AP from
:func:`segcourse.metrics.mask_ap`) under ``val_<name>``. Build loaders with
``collate_fn=detection_collate`` (a batch is a tuple of lists, not a stacked tensor).

References:
    He et al., "Mask R-CNN", ICCV 2017, https://arxiv.org/abs/1703.06870
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn

from . import distributed as ddp
from .amp import Precision, autocast
from .history import monitor_mode
from .progress import progress_bar


def detection_collate(batch):
    """``[(image, target), ...]`` -> ``(images list, targets list)``: images of different sizes cannot be stacked."""
    return tuple(zip(*batch))


class _FrozenBatchNormForValidation:
    """Context: the model in ``train()`` mode (so it returns losses) but every BatchNorm in ``eval()``
    (so validation batches do not change the running statistics)."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self):
        self.was_training = self.model.training
        self.model.train()
        for module in self.model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self.model

    def __exit__(self, *exc):
        self.model.train(self.was_training)
        return False


class DetectionTask:
    """How :func:`~segcourse.train.fit` runs a batch of a torchvision-style detection model
    (a :class:`~segcourse.train.tasks.Task`).

    Args:
        metric_fn: optional ``metric_fn(model, loader, device) -> dict`` of scores computed on the
            validation loader after the validation loss (e.g. mask AP); keys get the ``val_`` prefix.
        monitor: the key ``fit`` monitors when its own ``monitor`` is unset: ``"val_loss"`` unless you
            choose, e.g., ``"val_mask_ap"`` (its direction follows the name: ``...loss`` is minimised).
    """

    def __init__(self, metric_fn: Callable[..., dict] | None = None, monitor: str = "val_loss"):
        self.metric_fn = metric_fn
        self.monitor = monitor
        self.mode: Literal["min", "max"] = monitor_mode(monitor)

    # -- the batch ---------------------------------------------------------------------------------
    def to_device(self, batch, device: torch.device, precision: Precision):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError("a detection loader must yield (images, targets); build it with "
                            "collate_fn=segcourse.train.detection.detection_collate")
        images, targets = batch
        if isinstance(images, torch.Tensor):
            images = list(images)
        non_blocking = device.type == "cuda"
        images = [img.to(device, non_blocking=non_blocking) for img in images]
        moved = []
        for t in targets:
            if not isinstance(t, dict) or "boxes" not in t or "labels" not in t:
                got = type(t).__name__ + (f" with keys {sorted(t)}" if isinstance(t, dict) else "")
                raise TypeError("each detection target must be a dict with 'boxes' (K, 4) [x1, y1, x2, y2], "
                                f"'labels' (K,) int64 and, for Mask R-CNN, 'masks' (K, H, W) uint8; got {got}")
            moved.append({k: v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v
                          for k, v in t.items()})
        return images, moved

    def batch_size(self, batch) -> int:
        return len(batch[0])

    def training_loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, targets = batch
        losses = model(images, targets)
        if not isinstance(losses, dict):
            raise TypeError("a detection model in train mode must return a dict of losses, "
                            f"got {type(losses).__name__}")
        return sum(losses.values()), {k: v.detach() for k, v in losses.items()}

    # -- validation --------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model, loader, *, device, precision, progress, dist_info, examples: int = 0,
                 desc="val") -> dict[str, Any]:
        """The mean of each loss over ``loader`` (BatchNorm frozen), then ``metric_fn``'s scores;
        ``examples`` is ignored (a detector's predictions are not class maps to show)."""
        sums: dict[str, torch.Tensor] = {}
        count = torch.zeros((), dtype=torch.float64, device=device)
        with _FrozenBatchNormForValidation(model):
            for batch in progress_bar(loader, desc=desc, progress=progress):  # iterates the loader once
                batch = self.to_device(batch, device, precision)
                n = self.batch_size(batch)
                with autocast(precision, device):
                    loss, parts = self.training_loss(model, batch)
                for key, value in {"loss": loss.detach(), **parts}.items():
                    sums[key] = sums.get(key, torch.zeros((), dtype=torch.float64, device=device)) + value.double() * n
                count += n
        keys = sorted(sums)
        if dist_info.enabled:  # every rank must reduce the same keys in the same order
            stacked = torch.stack([sums[k] for k in keys] + [count])
            ddp.all_reduce_sum(stacked, dist_info)
            sums, count = dict(zip(keys, stacked[:-1])), stacked[-1]
        scores = {k: (v / count.clamp(min=1)).item() for k, v in sums.items()}
        if self.metric_fn is not None:
            was_training = model.training
            model.eval()
            try:
                extra = self.metric_fn(model, loader, device)
            finally:
                model.train(was_training)
            scores.update({k: float(v) for k, v in extra.items()})
        scores["images"] = int(count.item())
        return scores
