"""One pass over the data: :func:`train_one_epoch` (training), :func:`evaluate` (scores) and :func:`predict`.

1. :func:`train_one_epoch` -- for each batch: forward under autocast, loss, ``backward``
   (through a GradScaler for float16), every ``grad_accum_steps`` batches an optimizer step
   with optional gradient clipping and a step of the learning-rate schedule;
2. :func:`evaluate` -- the model in eval mode, no gradients, **one confusion matrix pooled
   over the whole validation set**, and the scores computed from it once at the end
   (averaging per-batch IoUs instead is a classic bug: a batch with two pixels of a class
   would weigh as much as one with two thousand). :class:`~segcourse.train.tasks.SegmentationTask`
   holds that loop, so :func:`~segcourse.train.fit`'s validation and this function are one code.

How a batch is moved, run and scored is the :class:`~segcourse.train.tasks.Task`'s business, so the
same epoch trains a segmentation network, Mask R-CNN and Mask2Former.

References:
    torchvision's segmentation reference training script (``train_one_epoch`` and ``evaluate`` there):
    https://github.com/pytorch/vision/tree/main/references/segmentation
    Pascanu et al., "On the difficulty of training recurrent neural networks" (gradient-norm clipping),
    https://arxiv.org/abs/1211.5063
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..config import get_device
from ..metrics import logits_to_pred
from ..models.outputs import model_logits
from . import distributed as ddp
from .amp import Precision, autocast, resolve_precision, to_device
from .progress import progress_bar
from .tasks import SegmentationTask, Task


def train_one_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, *, task: Task,
                    device: torch.device, precision: Precision, scaler: torch.amp.GradScaler,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                    grad_accum_steps: int = 1, clip_grad_norm: float | None = None, deadline: float | None = None,
                    progress: bool = True, desc: str = "train",
                    dist_info: ddp.DistInfo | None = None) -> dict[str, Any]:
    """One pass over ``loader``: forward, loss, backward, and an optimizer step every ``grad_accum_steps`` batches.

    Gradient accumulation divides each batch's loss by ``grad_accum_steps`` and steps once per
    ``grad_accum_steps`` batches, so it behaves like a batch that many times larger (except for
    BatchNorm, which still sees the small batches). A last, incomplete group is stepped too.

    Args:
        scheduler: a per-iteration LR scheduler (stepped after every optimizer step), or ``None``.
        deadline: a ``time.perf_counter()`` value; the epoch stops early after the batch that passes it
            (under DDP the ranks agree on that batch, so none is left waiting in ``backward``).
        dist_info: this process's place in a DDP run (default: a single process).

    Returns:
        dict with ``loss`` (mean over images), ``images``, ``steps``, ``seconds``, ``images_per_s``,
        ``stopped`` (the deadline was hit), ``components`` (mean of each named loss part, for
        models whose task reports several, e.g. Mask R-CNN).
    """
    dist_info = dist_info or ddp.DistInfo()
    model.train()
    optimizer.zero_grad(set_to_none=True)
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    components: dict[str, torch.Tensor] = {}
    images_seen = steps = 0
    pending = 0  # batches whose gradients are accumulated but not stepped yet
    stopped, i, unsynced = False, 0, False
    start = time.perf_counter()
    bar = progress_bar(loader, desc=desc, progress=progress)
    for i, batch in enumerate(bar):
        batch = task.to_device(batch, device, precision)
        n = task.batch_size(batch)
        # DDP averages gradients in backward(); while accumulating, skip that until the last batch
        sync = pending + 1 == grad_accum_steps or not hasattr(model, "no_sync")
        with contextlib.nullcontext() if sync else model.no_sync():
            with autocast(precision, device):  # forward and loss in mixed precision...
                loss, parts = task.training_loss(model, batch)
            scaler.scale(loss / grad_accum_steps).backward()  # ...backward outside autocast, as PyTorch advises
        pending, unsynced = pending + 1, not sync
        total_loss += loss.detach().double() * n
        for key, value in parts.items():  # loss components of multi-loss models (detection)
            components[key] = components.get(key, 0.0) + value.detach().double() * n
        images_seen += n
        if pending == grad_accum_steps:
            _optimizer_step(model, optimizer, scaler, clip_grad_norm, scheduler)
            pending, steps = 0, steps + 1
        if i % 10 == 0:  # reading the loss waits for the GPU, so only every 10 batches
            _check_finite(total_loss, i)
            if progress:
                bar.set_postfix(loss=f"{total_loss.item() / max(images_seen, 1):.4f}")
        if deadline is not None and ddp.any_rank(time.perf_counter() > deadline, device, dist_info):
            stopped = True
            break
    if pending:  # a last, incomplete accumulation group
        if unsynced:  # its gradients skipped DDP's averaging: average them by hand
            ddp.average_gradients(model, dist_info)
        _optimizer_step(model, optimizer, scaler, clip_grad_norm, scheduler)
        steps += 1
    bar.close()
    _check_finite(total_loss, i)
    seconds = time.perf_counter() - start
    return {"loss": total_loss.item() / max(images_seen, 1), "images": images_seen, "steps": steps,
            "components": {k: v.item() / max(images_seen, 1) for k, v in components.items()},
            "seconds": seconds, "images_per_s": images_seen / seconds if seconds > 0 else math.nan, "stopped": stopped}


def _check_finite(total_loss: torch.Tensor, batch_index: int) -> None:
    if not torch.isfinite(total_loss):
        raise FloatingPointError(f"the training loss became {total_loss.item()} by batch {batch_index}; lower the "
                                 "learning rate, check the targets (class ids < num_classes or ignore_index) and the "
                                 "inputs for NaN")


def _optimizer_step(model, optimizer, scaler, clip_grad_norm, scheduler) -> None:
    if clip_grad_norm is not None:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    if scheduler is not None:
        scheduler.step()


@torch.no_grad()
def evaluate(model: nn.Module, loader, num_classes: int | None = None, *, device="auto",
             loss_fn: Callable | None = None, ignore_index: int | None = None, amp="off",
             progress: bool = False) -> dict[str, Any]:
    """Scores of ``model`` on ``loader`` from one confusion matrix pooled over every pixel.

    Args:
        model: returns logits ``(N, C, H, W)``; ``C = 1`` is a binary model (``logits > 0``).
        loader: yields ``(images (N, 3, H, W) float, target (N, H, W) int64)``.
        num_classes: number of classes; default ``C`` (2 for a one-channel model).
        device: ``"auto"`` or a device string.
        loss_fn: if given, the mean loss per image is reported as ``loss``.
        ignore_index: target value left out of the confusion matrix and the loss (``None``: the loss's own,
            else :data:`~segcourse.IGNORE_INDEX`; see :func:`~segcourse.train.tasks.resolve_ignore_index`).
        amp: mixed precision for the forward pass (``"off"`` by default: exact float32 scores).

    Returns:
        dict with ``pixel_accuracy``, ``mean_accuracy``, ``miou``, ``fwiou``, ``dice`` (floats; means
        over classes present in truth or prediction), ``iou_per_class``, ``dice_per_class`` (lists),
        ``fg_iou``/``fg_dice`` (class 1, binary tasks only), ``confusion`` (nested list, rows = truth),
        ``images``, and ``loss`` when ``loss_fn`` is given.

    Raises:
        ValueError/TypeError: malformed batches (see the messages).

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> images, target = torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long)
        >>> model = torch.nn.Conv2d(3, 2, kernel_size=1)
        >>> with torch.no_grad():                                  # a model that always says class 0
        ...     _ = model.bias.copy_(torch.tensor([1.0, -1.0]))
        >>> scores = evaluate(model, DataLoader(TensorDataset(images, target)), num_classes=2, device="cpu")
        >>> scores["pixel_accuracy"], scores["miou"], scores["images"]  # mIoU over the classes present: class 0
        (1.0, 1.0, 2)
    """
    device = get_device(device) if isinstance(device, str) else device
    precision = resolve_precision(amp, "auto", device)
    model.to(device)
    task = SegmentationTask(loss_fn, num_classes, ignore_index)
    return task.evaluate(model, loader, device=device, precision=precision, progress=progress,
                         dist_info=ddp.DistInfo())



@torch.no_grad()
def predict(model: nn.Module, images, *, device="auto", batch_size: int = 16, amp="off") -> torch.Tensor:
    """Class ids for a stack of images (argmax, or ``logits > 0`` for a one-channel model).

    Args:
        model: returns logits ``(N, C, H, W)``.
        images: float tensor ``(N, 3, H, W)`` (or one image ``(3, H, W)``), preprocessed as in training.
        device: ``"auto"`` or a device string.
        batch_size: images per forward pass.

    Returns:
        ``(N, H, W)`` int64 on the CPU (``(H, W)`` for a single image).

    Raises:
        TypeError: ``images`` is not a float tensor.
        ValueError: ``images`` is not 3- or 4-dimensional, or ``batch_size < 1``.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a float torch.Tensor (N, 3, H, W), got {type(images).__name__}; "
                        "use torch.as_tensor(array).permute(0, 3, 1, 2).float() / 255 for uint8 (N, H, W, 3) arrays")
    if not images.is_floating_point():
        raise TypeError(f"images must be float (N, 3, H, W), got dtype {images.dtype}; convert with .float() / 255")
    single = images.dim() == 3
    if single:
        images = images.unsqueeze(0)
    if images.dim() != 4:
        raise ValueError(f"images must be (N, 3, H, W) or (3, H, W), got shape {tuple(images.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = get_device(device) if isinstance(device, str) else device
    precision = resolve_precision(amp, "auto", device)
    was_training = model.training
    model.to(device).eval()
    out = []
    try:
        for start in range(0, images.shape[0], batch_size):
            chunk = to_device(images[start:start + batch_size], device, precision)
            with autocast(precision, device):
                logits = model_logits(model(chunk))
            out.append(logits_to_pred(logits.float()).cpu())
    finally:
        model.train(was_training)
    pred = torch.cat(out)
    return pred[0] if single else pred
