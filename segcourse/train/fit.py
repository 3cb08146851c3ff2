"""The training engine: ``fit`` = ``train_one_epoch`` + ``evaluate``, repeated.

Read it top to bottom, like torchvision's ``references/segmentation/train.py``:

1. :func:`train_one_epoch` -- for each batch: forward under autocast, loss, ``backward``
   (through a GradScaler for float16), every ``grad_accum_steps`` batches an optimizer step
   with optional gradient clipping;
2. :func:`evaluate` -- the model in eval mode, no gradients, **one confusion matrix pooled
   over the whole validation set**, and the scores computed from it once at the end
   (averaging per-batch IoUs instead is a classic bug: a batch with two pixels of a class
   would weigh as much as one with two thousand);
3. :func:`fit` -- its options in one :class:`FitConfig`; the set-up (device, mixed precision,
   DDP, :func:`build_optimizer`, :func:`build_scheduler`, resume), the epoch loop, the history,
   checkpoints of the best model, early stopping, a time budget, each step a function below it.

Conventions (the course glossary): loaders yield ``(images, target)`` with ``images`` float
``(N, 3, H, W)`` and ``target`` int64 ``(N, H, W)`` class ids, :data:`~segcourse.IGNORE_INDEX`
marking pixels to skip. The model returns ``logits`` ``(N, C, H, W)``; ``C = 1`` means a binary
model (foreground probability = ``sigmoid(logits)``, prediction = ``logits > 0``) evaluated as
two classes, background and foreground.

Detection models that return a dict of losses train through the same loop with
``fit(..., task=DetectionTask())`` (see :mod:`segcourse.train.detection`).

References:
    torchvision's segmentation reference training script (the model of this file):
    https://github.com/pytorch/vision/tree/main/references/segmentation
    Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (AdamW, the default optimizer),
    https://arxiv.org/abs/1711.05101
    Chen et al., "DeepLab: ... Atrous Convolution, and Fully Connected CRFs" (the "poly" schedule),
    https://arxiv.org/abs/1606.00915
    Pascanu et al., "On the difficulty of training recurrent neural networks" (gradient-norm clipping),
    https://arxiv.org/abs/1211.5063
    Long et al., "Fully Convolutional Networks for Semantic Segmentation" (pixel accuracy, mean accuracy,
    mean IoU and frequency-weighted IoU from one confusion matrix), https://arxiv.org/abs/1411.4038
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import get_device, seed_everything
from ..constants import IGNORE_INDEX
from ..metrics import ConfusionMatrix, logits_to_pred, scores_from_confusion
from ..models.outputs import model_logits
from ..models.parameters import count_parameters
from . import distributed as ddp
from .amp import Precision, autocast, make_scaler, resolve_precision, to_device
from .history import History, is_better

# ---------------------------------------------------------------------------------------------
# Confusion matrix and scores
# ---------------------------------------------------------------------------------------------

def _check_target(target: torch.Tensor, logits: torch.Tensor | None = None) -> None:
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
    """The scores :func:`evaluate` reports, from one pooled confusion matrix (rows = truth).

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


# ---------------------------------------------------------------------------------------------
# One batch of a segmentation model
# ---------------------------------------------------------------------------------------------


class SegmentationTask:
    """How the engine runs a semantic-segmentation batch ``(images, target)``.

    The engine only calls these methods, so another kind of model (a detector returning a
    dict of losses) plugs into the same loop with its own task object.
    """

    def __init__(self, loss_fn: Callable | None, num_classes: int | None = None, ignore_index: int = IGNORE_INDEX):
        self.loss_fn = loss_fn
        self.num_classes = num_classes
        self.ignore_index = ignore_index

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

    def training_loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Forward and loss; returns ``(loss, extra logs)``."""
        images, target = batch
        logits = model_logits(model(images))
        return self.loss_fn(logits, target), {}

    def evaluate(self, model, loader, *, device, precision, progress, dist_info, desc="val",
                 examples: int = 0) -> dict[str, Any]:
        """The validation scores (see :func:`evaluate`); ``examples > 0`` adds ``scores["examples"]``,
        the first batch's ``(images, target, pred)`` cut to that many images, for the TensorBoard logger."""
        return _evaluate(model, loader, self.num_classes, loss_fn=self.loss_fn, ignore_index=self.ignore_index,
                         device=device, precision=precision, progress=progress, dist_info=dist_info, desc=desc,
                         examples=examples)


def _first_key(batch: Mapping, keys: tuple[str, ...]):
    for key in keys:
        if key in batch:
            return batch[key]
    raise TypeError(f"a dict batch needs one of the keys {keys}; it has {list(batch)}")


# ---------------------------------------------------------------------------------------------
# train_one_epoch
# ---------------------------------------------------------------------------------------------


def progress_bar(loader, *, desc: str, progress: bool = True):
    """A tqdm bar (a widget in JupyterLab, text elsewhere) over ``loader`` that iterates it exactly once.

    ``tqdm.auto``'s class calls ``iter()`` on a plain iterable in its constructor and the ``for`` loop
    calls it again, so ``tqdm(loader)`` would make a DataLoader start its worker processes, and draw
    its shuffling seed, twice per pass. Handing tqdm the iterator (and the length) avoids that.
    """
    from tqdm.auto import tqdm

    try:
        total = len(loader)
    except TypeError:  # an iterable without a length
        total = None
    return tqdm(iter(loader), total=total, desc=desc, leave=False, disable=not progress, dynamic_ncols=True)



def train_one_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, *, task, device: torch.device,
                    precision: Precision, scaler: torch.amp.GradScaler, scheduler=None,
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


# ---------------------------------------------------------------------------------------------
# evaluate / predict
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(model: nn.Module, loader, num_classes: int | None = None, *, device="auto",
             loss_fn: Callable | None = None, ignore_index: int = IGNORE_INDEX, amp="off",
             progress: bool = False) -> dict[str, Any]:
    """Scores of ``model`` on ``loader`` from one confusion matrix pooled over every pixel.

    Args:
        model: returns logits ``(N, C, H, W)``; ``C = 1`` is a binary model (``logits > 0``).
        loader: yields ``(images (N, 3, H, W) float, target (N, H, W) int64)``.
        num_classes: number of classes; default ``C`` (2 for a one-channel model).
        device: ``"auto"`` or a device string.
        loss_fn: if given, the mean loss per image is reported as ``loss``.
        ignore_index: target value left out of the confusion matrix (and, by the loss, of the loss).
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
    return _evaluate(model, loader, num_classes, loss_fn=loss_fn, ignore_index=ignore_index, device=device,
                     precision=precision, progress=progress, dist_info=ddp.DistInfo())


@torch.no_grad()
def _evaluate(model, loader, num_classes, *, loss_fn, ignore_index, device, precision, progress, dist_info,
              desc="val", examples: int = 0) -> dict[str, Any]:
    was_training = model.training
    model.eval()
    cm = None
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    images_seen = torch.zeros((), dtype=torch.float64, device=device)
    task = SegmentationTask(loss_fn, num_classes, ignore_index)
    kept = None  # the first batch's (images, target, pred), when examples > 0
    try:
        for batch in progress_bar(loader, desc=desc, progress=progress):
            images, target = task.to_device(batch, device, precision)
            with autocast(precision, device):
                logits = model_logits(model(images))
            _check_target(target, logits)
            if cm is None:  # the number of classes is known once the model has spoken
                cm = ConfusionMatrix(num_classes or max(2, logits.shape[1]), ignore_index=ignore_index)
            if loss_fn is not None:
                total_loss += loss_fn(logits, target).double() * images.shape[0]
            pred = logits_to_pred(logits.float())
            cm.update(pred, target)  # pooled over the whole loader
            if examples and kept is None:
                kept = tuple(t[:examples].detach().cpu() for t in (images, target, pred))
            images_seen += images.shape[0]
    finally:
        model.train(was_training)
    if cm is None:
        if num_classes is None:
            raise ValueError("the evaluation loader yielded no batches and num_classes was not given")
        cm = ConfusionMatrix(num_classes, ignore_index=ignore_index)
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
    if loss_fn is not None:
        scores["loss"] = total_loss.item() / max(images_seen.item(), 1)
    if kept is not None:
        scores["examples"] = kept
    return scores


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


# ---------------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------------


@dataclass
class FitConfig:
    """Everything :func:`fit` can be told, with its default (in the style of nanoGPT's ``GPTConfig``).

    The usual call stays one line, ``fit(model, train_loader, val_loader, loss_fn=loss, epochs=5)``:
    fit builds a ``FitConfig`` from its keywords. A config can also be kept, printed and reused,
    ``cfg = FitConfig(loss_fn=loss, epochs=5, lr=3e-4)`` then ``fit(model, train_loader, val_loader, cfg)``;
    keywords given next to it override its fields (``fit(..., cfg, lr=1e-3)``).

    What to optimise:
        loss_fn: ``loss_fn(logits, target) -> scalar``; e.g. ``nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)``.
            Required unless ``task`` is given.
        num_classes: classes for the validation confusion matrix (default: from the model's output).
        ignore_index: target value skipped by the metrics and the logged images (pass it to your loss too).
        task: how a batch is run (default :class:`SegmentationTask`; :class:`~segcourse.train.detection.DetectionTask`
            for models that return a loss dict).

    How long:
        epochs: number of epochs. ``max_seconds``: a wall-time budget (checked after every batch; the
            epoch in progress is cut short, validated and recorded). At least one must be given.
        monitor: the record key that decides "best" (``val_miou``, ``val_dice``, ``val_fg_dice``,
            ``val_loss``...; keys ending in ``loss`` are minimised). Left at ``"val_miou"`` with a
            ``task`` that has a ``default_monitor`` (a detector: ``"val_loss"``), that one is used.
        early_stopping: stop after this many epochs without improvement of ``monitor`` (``None``: never).

    Optimiser and schedule (see :func:`build_optimizer` and :func:`build_scheduler`):
        optimizer: an optimizer instance, ``"adamw"`` (default), ``"adam"`` or ``"sgd"`` (momentum 0.9),
            the last three built with ``lr`` and ``weight_decay``.
        scheduler: ``None``; ``"poly"`` (``(1 - t/T)**0.9``, DeepLab's schedule) or ``"cosine"``, both
            stepped every optimizer step (need ``epochs``); a ``torch.optim.lr_scheduler`` instance or a
            callable ``optimizer -> scheduler``, stepped once per epoch (``ReduceLROnPlateau`` gets the
            monitored value).
        grad_accum_steps: optimizer step every this many batches (effective batch = batch x steps).
        clip_grad_norm: clip the global gradient norm to this value (``None``: no clipping).

    Hardware:
        device: ``"auto"`` (CUDA, then MPS, then CPU) or a device string.
        amp: mixed precision, see :func:`segcourse.train.amp.resolve_precision` (``"auto"``: bf16 or
            fp16+GradScaler on CUDA, off on CPU). ``channels_last``: ``"auto"`` = on for CUDA.
        val_amp: mixed precision of the validation pass, as ``amp`` (default ``"off"``: validation runs in
            float32 like :func:`evaluate`, so the validation scores in the history, the checkpoint chosen
            from them and a later ``evaluate`` of the same model agree, whatever ``amp`` trains with).

    Files:
        checkpoint: a path (``.safetensors``): the best model by ``monitor`` is saved there (weights +
            JSON config), and the last state for resuming (optimizer, scheduler, history, RNG) beside
            it as ``<stem>.last.safetensors``.
        resume: ``True`` continues from ``<checkpoint stem>.last.safetensors`` when it exists; a path
            continues from that file. The epochs already done count towards ``epochs``.
        config: JSON-serialisable description stored in the checkpoints (e.g. ``{"model": "unet",
            "model_kwargs": {...}}``) so that :func:`~segcourse.train.load_checkpoint` can rebuild the model.
        log_dir: write TensorBoard scalars and prediction images here (:mod:`segcourse.train.run_log`;
            needs the ``tensorboard`` package, an :class:`ImportError` otherwise).

    Reproducibility and output:
        seed: ``seed_everything(seed)`` before anything else (build the model after seeding yourself
            for the initial weights to repeat too).
        progress: tqdm progress bars (widgets in JupyterLab, text elsewhere).
        verbose: print the set-up line and one line per epoch.
    """

    # what to optimise
    loss_fn: Callable | None = None
    num_classes: int | None = None
    ignore_index: int = IGNORE_INDEX
    task: Any = None
    # how long
    epochs: int | None = None
    max_seconds: float | None = None
    monitor: str = "val_miou"
    early_stopping: int | None = None
    # optimiser and schedule
    optimizer: Any = None
    lr: float = 1e-3
    weight_decay: float = 1e-4
    scheduler: Any = None
    grad_accum_steps: int = 1
    clip_grad_norm: float | None = None
    # hardware
    device: Any = "auto"
    amp: Any = "auto"
    channels_last: Any = "auto"
    val_amp: Any = "off"
    # files
    checkpoint: Any = None
    resume: Any = False
    config: dict | None = None
    log_dir: Any = None
    # reproducibility and output
    seed: int | None = None
    progress: bool = True
    verbose: bool = True


def fit(model: nn.Module, train_loader, val_loader=None, cfg: FitConfig | None = None, **options) -> History:
    """Train ``model`` and return its :class:`~segcourse.train.History`.

    Args:
        model: returns logits ``(N, C, H, W)`` (``C = 1``: binary, sigmoid).
        train_loader, val_loader: yield ``(images (N, 3, H, W) float, target (N, H, W) int64)``.
        cfg: a :class:`FitConfig` (default: ``FitConfig()``).
        **options: fields of :class:`FitConfig` (``loss_fn=``, ``epochs=``, ``lr=``...), overriding ``cfg``.

    Returns:
        The :class:`History` (``history.records``, ``history.best``).

    Raises:
        ValueError: neither ``epochs`` nor ``max_seconds``; bad ``grad_accum_steps``/``early_stopping``; an
            unknown optimizer or scheduler name; ``monitor`` never recorded; a resume file that does not match.
        TypeError: an unknown option; ``loss_fn`` missing for a segmentation model; malformed batches.
        ImportError: ``log_dir`` given without the ``tensorboard`` package.

    The steps, each a function below: check the options, set up (device, precision, processes,
    optimizer, scheduler), resume, then per epoch :func:`train_one_epoch` and the validation
    (:func:`_train_and_validate`), the scheduler, the best value and early stopping, the checkpoints,
    the TensorBoard log and the printed line.
    """
    cfg = fit_config(cfg, **options)
    task, monitor = _check_options(cfg)
    if cfg.seed is not None:
        seed_everything(cfg.seed)
    run = _set_up(model, train_loader, val_loader, cfg, task, monitor)
    _resume(run, cfg)
    if cfg.log_dir is not None and run.main:
        from .run_log import TensorBoardLogger

        run.logger = TensorBoardLogger.create(cfg.log_dir, ignore_index=cfg.ignore_index)
    if run.main and cfg.verbose:
        _print_setup(run, cfg)

    start = time.perf_counter()
    deadline = start + cfg.max_seconds if cfg.max_seconds is not None else None
    run.history.stop_reason = "epochs"
    epoch = run.start_epoch
    try:
        while cfg.epochs is None or epoch <= cfg.epochs:
            record, examples, cut_short = _train_and_validate(run, cfg, epoch, deadline)
            _step_epoch_scheduler(run, record)
            improved = _update_best(run, record)
            if run.main and cfg.checkpoint is not None:
                _save_checkpoints(run, cfg, record, improved)
            if run.logger is not None:
                run.logger.log_epoch(record, examples)
            if run.main and cfg.verbose:
                print(_epoch_line(record, cfg.epochs, monitor, improved and cfg.checkpoint is not None))

            out_of_time = deadline is not None and ddp.any_rank(time.perf_counter() > deadline, run.device,
                                                                run.dist_info)
            if cut_short or out_of_time:
                run.history.stop_reason = "max_seconds"
                break
            if cfg.early_stopping is not None and run.bad_epochs >= cfg.early_stopping:
                run.history.stop_reason = "early_stopping"
                break
            epoch += 1
    finally:
        if run.logger is not None:
            run.logger.close()
    ddp.barrier(run.dist_info)
    if run.main and cfg.verbose:
        _print_done(run, cfg, start)
    return run.history


# ---------------------------------------------------------------------------------------------
# the steps of fit, in the order fit runs them
# ---------------------------------------------------------------------------------------------


def fit_config(cfg: FitConfig | None = None, **options) -> FitConfig:
    """``cfg`` (default ``FitConfig()``) with ``options`` replacing its fields; a clear error for an unknown name."""
    if cfg is not None and not isinstance(cfg, FitConfig):
        raise TypeError(f"fit's fourth argument is a FitConfig, got {type(cfg).__name__}; "
                        "pass the options as keywords (fit(model, train_loader, val_loader, loss_fn=..., epochs=...))")
    known = {f.name for f in dataclasses.fields(FitConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"fit got unknown option(s) {', '.join(unknown)}; the options are the fields of "
                        f"FitConfig: {', '.join(sorted(known))}")
    return dataclasses.replace(cfg or FitConfig(), **options)


def _check_options(cfg: FitConfig) -> tuple[Any, str]:
    """Check the options before anything runs; returns ``(task, monitor)``."""
    if cfg.epochs is None and cfg.max_seconds is None:
        raise ValueError("give epochs=..., max_seconds=... or both; fit needs to know when to stop")
    if cfg.epochs is not None and (not isinstance(cfg.epochs, int) or cfg.epochs < 1):
        raise ValueError(f"epochs must be a positive int, got {cfg.epochs!r}")
    if not isinstance(cfg.grad_accum_steps, int) or cfg.grad_accum_steps < 1:
        raise ValueError(f"grad_accum_steps must be a positive int, got {cfg.grad_accum_steps!r}")
    if cfg.early_stopping is not None and (not isinstance(cfg.early_stopping, int) or cfg.early_stopping < 1):
        raise ValueError("early_stopping must be None or a positive int (patience in epochs), "
                         f"got {cfg.early_stopping!r}")
    if cfg.log_dir is not None:  # on every process, so that no rank is left waiting for the others
        from .run_log import require_tensorboard

        require_tensorboard()
    task, monitor = cfg.task, cfg.monitor
    if task is None:
        if cfg.loss_fn is None:
            raise TypeError("fit needs loss_fn=..., e.g. torch.nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)")
        task = SegmentationTask(cfg.loss_fn, cfg.num_classes, cfg.ignore_index)
    elif monitor == "val_miou" and getattr(task, "default_monitor", None):
        monitor = task.default_monitor  # e.g. a detector reports val_loss, not val_miou
    return task, monitor


@dataclass
class _Run:
    """The state of one :func:`fit` run, shared by its steps."""

    model: nn.Module
    train_model: nn.Module  # the model itself, or its DDP wrapper
    train_loader: Any
    val_loader: Any
    task: Any
    monitor: str
    device: torch.device
    dist_info: ddp.DistInfo
    precision: Precision
    val_precision: Precision
    optimizer: torch.optim.Optimizer
    scaler: Any
    scheduler: Any
    per_step: bool  # the scheduler steps every optimizer step (else once per epoch)
    history: History
    last_path: Any = None  # <checkpoint stem>.last.safetensors
    start_epoch: int = 1
    best_value: float | None = None
    bad_epochs: int = 0
    logger: Any = None

    @property
    def main(self) -> bool:
        return self.dist_info.is_main


def _set_up(model, train_loader, val_loader, cfg: FitConfig, task, monitor: str) -> _Run:
    """Device, precision, processes (DDP), optimizer, GradScaler, scheduler and an empty history."""
    device = get_device(cfg.device) if isinstance(cfg.device, str) else torch.device(cfg.device)
    dist_info = ddp.setup(device)
    device = ddp.local_device(device, dist_info)
    precision = resolve_precision(cfg.amp, cfg.channels_last, device)
    val_precision = resolve_precision(cfg.val_amp, precision.channels_last, device)  # float32 unless asked
    model.to(device)
    if precision.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg.optimizer, model, cfg.lr, cfg.weight_decay)
    scaler = make_scaler(precision, device)
    train_loader = ddp.distribute_loader(train_loader, dist_info)
    val_loader = ddp.distribute_loader(val_loader, dist_info, for_eval=True)
    steps_per_epoch = math.ceil(len(train_loader) / cfg.grad_accum_steps)
    scheduler, per_step = build_scheduler(cfg.scheduler, optimizer, cfg.epochs, steps_per_epoch)
    train_model = ddp.wrap_model(model, device, dist_info)
    history = History(monitor=monitor)
    history.device, history.precision = str(device), precision.describe()
    history.pretrained_loaded = getattr(model, "pretrained_loaded", None)
    last_path = None
    if cfg.checkpoint is not None:
        from . import checkpoint as ckpt

        last_path = ckpt.last_path(cfg.checkpoint)
    return _Run(model=model, train_model=train_model, train_loader=train_loader, val_loader=val_loader, task=task,
                monitor=monitor, device=device, dist_info=dist_info, precision=precision, val_precision=val_precision,
                optimizer=optimizer, scaler=scaler, scheduler=scheduler, per_step=per_step, history=history,
                last_path=last_path)


def _resume(run: _Run, cfg: FitConfig) -> None:
    """``resume=True``: continue from ``run.last_path`` when it exists; ``resume=path``: from that file."""
    from . import checkpoint as ckpt

    resume_from = run.last_path if cfg.resume is True else cfg.resume or None
    if resume_from is not None and (cfg.resume is not True or resume_from.exists()):
        state = ckpt.load_training_state(resume_from, run.model, run.optimizer, scheduler=run.scheduler,
                                         scaler=run.scaler)
        pretrained_loaded = run.history.pretrained_loaded
        run.history = History.from_dict(state["history"])
        run.history.device, run.history.precision = str(run.device), run.precision.describe()
        run.history.pretrained_loaded = pretrained_loaded
        run.start_epoch = state["epoch"] + 1
        run.best_value, run.bad_epochs = state.get("best_value"), state.get("bad_epochs", 0)
        if run.main and cfg.verbose:
            print(f"resumed from {resume_from} after epoch {state['epoch']}")
    elif cfg.resume is True and cfg.checkpoint is None:
        raise ValueError("resume=True needs checkpoint=... (the last state is read from beside it)")


def _train_and_validate(run: _Run, cfg: FitConfig, epoch: int, deadline: float | None):
    """One epoch: :func:`train_one_epoch`, the validation pass, and the history record.

    Returns ``(record, examples, cut_short)``: ``examples`` are the first validation
    ``(images, target, pred)`` for the TensorBoard logger (``None`` without one), ``cut_short``
    says the time budget stopped the epoch early.
    """
    t0 = time.perf_counter()
    device, dist_info, main = run.device, run.dist_info, run.main
    ddp.set_epoch(run.train_loader, epoch)
    lr_now = run.optimizer.param_groups[0]["lr"]
    desc = f"epoch {epoch}" + (f"/{cfg.epochs}" if cfg.epochs else "")
    train_stats = train_one_epoch(run.train_model, run.train_loader, run.optimizer, task=run.task, device=device,
                                  precision=run.precision, scaler=run.scaler,
                                  scheduler=run.scheduler if run.per_step else None,
                                  grad_accum_steps=cfg.grad_accum_steps, clip_grad_norm=cfg.clip_grad_norm,
                                  deadline=deadline, progress=cfg.progress and main, desc=desc, dist_info=dist_info)
    n_seen = train_stats["images"]
    record: dict[str, Any] = {"epoch": epoch,
                              "train_loss": _mean_over_ranks(train_stats["loss"], n_seen, device, dist_info)}
    for key, value in train_stats["components"].items():
        record[f"train_{key}"] = _mean_over_ranks(value, n_seen, device, dist_info)
    examples = None
    if run.val_loader is not None:
        keep = {"examples": run.logger.num_images} if run.logger is not None and run.logger.num_images and \
            isinstance(run.task, SegmentationTask) else {}
        val = run.task.evaluate(run.model, run.val_loader, device=device, precision=run.val_precision,
                                progress=cfg.progress and main, dist_info=dist_info, **keep)
        examples = val.pop("examples", None)
        order = ["loss", "miou", "dice", "fg_iou", "fg_dice", "pixel_accuracy", "mean_accuracy", "fwiou"]
        rest = [k for k in val if k not in order and k not in ("confusion", "images")]
        keys = [k for k in order if k in val] + rest
        record.update({f"val_{k}": val[k] for k in keys})
    record["seconds"] = time.perf_counter() - t0
    record["images_per_s"] = train_stats["images_per_s"] * dist_info.world_size  # all processes together
    record["lr"] = lr_now
    run.history.append(record)
    if epoch == run.start_epoch and run.val_loader is not None and run.monitor not in record:
        keys = ", ".join(k for k in record if k.startswith("val_"))
        raise ValueError(f"monitor={run.monitor!r} is not among the recorded validation keys: {keys}")
    return record, examples, train_stats["stopped"]


def _step_epoch_scheduler(run: _Run, record: dict) -> None:
    """A scheduler stepped once per epoch (``ReduceLROnPlateau`` with the monitored value)."""
    if run.scheduler is not None and not run.per_step:
        if isinstance(run.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            run.scheduler.step(record.get(run.monitor, record["train_loss"]))
        else:
            run.scheduler.step()


def _update_best(run: _Run, record: dict) -> bool:
    """Whether ``record`` improved the monitored value (kept in ``run.best_value``; ``run.bad_epochs`` counts
    the epochs since the last improvement, for early stopping)."""
    value = record.get(run.monitor)
    improved = is_better(value, run.best_value, run.history.mode) if value is not None else True
    if improved:
        run.best_value, run.bad_epochs = value, 0
    else:
        run.bad_epochs += 1
    return improved


def _save_checkpoints(run: _Run, cfg: FitConfig, record: dict, improved: bool) -> None:
    """The best model (when ``improved``) at ``cfg.checkpoint`` and the state for resuming beside it."""
    from . import checkpoint as ckpt

    value = record.get(run.monitor)
    run_config = {**(cfg.config or {}), "epoch": record["epoch"], "monitor": run.monitor, "value": value,
                  "record": _scalars(record)}
    if improved:
        ckpt.save_checkpoint(cfg.checkpoint, run.model, config=run_config)
    ckpt.save_training_state(run.last_path, run.model, run.optimizer, scheduler=run.scheduler, scaler=run.scaler,
                             epoch=record["epoch"], history=run.history, best_value=run.best_value,
                             bad_epochs=run.bad_epochs, config=run_config)


# ---------------------------------------------------------------------------------------------
# optimizer and scheduler factories
# ---------------------------------------------------------------------------------------------


def build_optimizer(optimizer, model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """``optimizer`` itself when it is a ``torch.optim.Optimizer``; else ``"adamw"`` (the default, ``None``),
    ``"adam"`` or ``"sgd"`` (momentum 0.9) over the trainable parameters of ``model``."""
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (all requires_grad=False)")
    name = "adamw" if optimizer is None else optimizer
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be a torch.optim.Optimizer or one of 'adamw', 'adam', 'sgd', got {optimizer!r}")


def build_scheduler(scheduler, optimizer, epochs: int | None, steps_per_epoch: int):
    """The learning-rate schedule of :class:`FitConfig`'s ``scheduler`` option.

    Returns:
        ``(scheduler, per_step)``: ``per_step`` is ``True`` for ``"poly"`` and ``"cosine"`` (stepped
        after every optimizer step, over ``epochs * steps_per_epoch`` steps), ``False`` for a scheduler
        instance or callable (stepped once per epoch); ``(None, False)`` for ``None``.
    """
    if scheduler is None:
        return None, False
    if isinstance(scheduler, str):
        if epochs is None:
            raise ValueError(f"scheduler={scheduler!r} needs epochs=... to know the total number of steps")
        total = max(1, epochs * steps_per_epoch)
        if scheduler == "poly":
            poly = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (1 - min(step, total) / total) ** 0.9)
            return poly, True
        if scheduler == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total), True
        raise ValueError(f"scheduler must be 'poly', 'cosine', a torch LR scheduler or a callable, got {scheduler!r}")
    if isinstance(scheduler, (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)):
        if scheduler.optimizer is not optimizer:
            raise ValueError("the scheduler was built for another optimizer; build it on the optimizer you pass to fit")
        return scheduler, False
    if callable(scheduler):
        return build_scheduler(scheduler(optimizer), optimizer, epochs, steps_per_epoch)
    raise TypeError("scheduler must be None, 'poly', 'cosine', an LR scheduler or a callable, "
                    f"got {type(scheduler).__name__}")


# ---------------------------------------------------------------------------------------------
# small helpers and the printed lines
# ---------------------------------------------------------------------------------------------


def _mean_over_ranks(mean: float, count: int, device, dist_info) -> float:
    if not dist_info.enabled:
        return mean
    t = torch.tensor([mean * count, count], dtype=torch.float64, device=device)
    ddp.all_reduce_sum(t, dist_info)
    return (t[0] / t[1].clamp(min=1)).item()


def _scalars(record: dict) -> dict:
    return {k: v for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def _print_setup(run: _Run, cfg: FitConfig) -> None:
    """``training on cpu | amp=off channels_last=off | 1,942,594 parameters | 64 training images | epochs=10``."""
    epochs, max_seconds = cfg.epochs, cfg.max_seconds
    n_params = count_parameters(run.model)
    n_train = len(run.train_loader.dataset) if hasattr(run.train_loader, "dataset") else "?"
    procs = f" x {run.dist_info.world_size} processes" if run.dist_info.enabled else ""
    val_note = " (validation in float32)" if run.precision.amp and not run.val_precision.amp else ""
    print(f"training on {_device_name(run.device)}{procs} | {run.precision.describe()}{val_note} | "
          f"{n_params:,} parameters | {n_train} training images | {'epochs=' + str(epochs) if epochs else ''}"
          f"{' ' if epochs and max_seconds else ''}{f'max_seconds={max_seconds:g}' if max_seconds else ''}")
    if run.device.type == "cuda" and not getattr(run.train_loader, "pin_memory", True):
        print("tip: DataLoader(..., pin_memory=True) lets batches copy to the GPU while it computes")


def _print_done(run: _Run, cfg: FitConfig, start: float) -> None:
    """``done (epochs): best val_miou=0.9707 at epoch 9; 10 epochs in 12.3 s, 60.2 images/s on cpu``."""
    new = [r for r in run.history.records if r["epoch"] >= run.start_epoch]
    if not new:
        print(f"nothing to do: the resumed run had already trained {run.start_epoch - 1} of {cfg.epochs} epochs")
        return
    best, monitor = run.history.best, run.monitor
    shown = f"best {monitor}={best[monitor]:.4f} at epoch {best['epoch']}; " if monitor in best else ""
    total = time.perf_counter() - start
    print(f"done ({run.history.stop_reason}): {shown}{len(new)} epochs in {total:.1f} s, "
          f"{np.mean([r['images_per_s'] for r in new]):.1f} images/s on {_device_name(run.device)}")


def _epoch_line(record: dict, epochs: int | None, monitor: str, saved: bool) -> str:
    parts = [f"epoch {record['epoch']}" + (f"/{epochs}" if epochs else "")]
    for key in ("train_loss", "val_loss", "val_miou", "val_dice", "val_fg_dice"):
        if key in record:
            parts.append(f"{key} {record[key]:.4f}")
    if monitor in record and monitor not in ("train_loss", "val_loss", "val_miou", "val_dice", "val_fg_dice"):
        parts.append(f"{monitor} {record[monitor]:.4f}")
    parts.append(f"{record['images_per_s']:.1f} img/s")
    parts.append(f"{record['seconds']:.1f} s")
    return " | ".join(parts) + ("  (saved)" if saved else "")
