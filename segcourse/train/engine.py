"""The training engine: ``fit`` = ``train_one_epoch`` + ``evaluate``, repeated.

Read it top to bottom, like torchvision's ``references/segmentation/train.py``:

1. :func:`train_one_epoch` -- for each batch: forward under autocast, loss, ``backward``
   (through a GradScaler for float16), every ``grad_accum_steps`` batches an optimizer step
   with optional gradient clipping;
2. :func:`evaluate` -- the model in eval mode, no gradients, **one confusion matrix pooled
   over the whole validation set**, and the scores computed from it once at the end
   (averaging per-batch IoUs instead is a classic bug: a batch with two pixels of a class
   would weigh as much as one with two thousand);
3. :func:`fit` -- the set-up (device, mixed precision, DDP, optimizer, scheduler, resume), the
   epoch loop, the history, checkpoints of the best model, early stopping, a time budget.

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
import math
import time
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from ..config import get_device, seed_everything
from ..constants import IGNORE_INDEX
from ..metrics import ConfusionMatrix, logits_to_pred
from ..metrics import scores_from_confusion
from ..models.parameters import count_parameters
from . import distributed as ddp
from .amp import Precision, autocast, make_scaler, resolve_precision, to_device
from .history import History, is_better

# ---------------------------------------------------------------------------------------------
# Confusion matrix and scores
# ---------------------------------------------------------------------------------------------


def model_logits(output) -> torch.Tensor:
    """The logits tensor of a model's output: the tensor itself, or ``output["out"]`` for models that
    return a dict (torchvision's ``fcn_resnet50``, ``deeplabv3_resnet50``, ``lraspp``)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) and "out" in output:
        return output["out"]
    raise TypeError(f"the model returned {type(output).__name__}"
                    f"{' with keys ' + str(list(output)) if isinstance(output, Mapping) else ''}; expected logits "
                    "(N, C, H, W) or a dict with an 'out' entry")


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

    def evaluate(self, model, loader, *, device, precision, progress, dist_info, desc="val") -> dict[str, Any]:
        return _evaluate(model, loader, self.num_classes, loss_fn=self.loss_fn, ignore_index=self.ignore_index,
                         device=device, precision=precision, progress=progress, dist_info=dist_info, desc=desc)


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
        >>> scores = evaluate(model, val_loader, num_classes=4)   # doctest: +SKIP
        >>> scores["miou"]                                         # doctest: +SKIP
    """
    device = get_device(device) if isinstance(device, str) else device
    precision = resolve_precision(amp, "auto", device)
    model.to(device)
    return _evaluate(model, loader, num_classes, loss_fn=loss_fn, ignore_index=ignore_index, device=device,
                     precision=precision, progress=progress, dist_info=ddp.DistInfo())


@torch.no_grad()
def _evaluate(model, loader, num_classes, *, loss_fn, ignore_index, device, precision, progress, dist_info,
              desc="val") -> dict[str, Any]:
    was_training = model.training
    model.eval()
    cm = None
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    images_seen = torch.zeros((), dtype=torch.float64, device=device)
    task = SegmentationTask(loss_fn, num_classes, ignore_index)
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
            cm.update(logits_to_pred(logits.float()), target)  # pooled over the whole loader
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


def fit(model: nn.Module, train_loader, val_loader=None, *, loss_fn: Callable | None, num_classes: int | None = None,
        epochs: int | None = None, max_seconds: float | None = None, optimizer=None, lr: float = 1e-3,
        weight_decay: float = 1e-4, scheduler=None, device="auto", amp="auto", channels_last="auto",
        checkpoint=None, monitor: str = "val_miou", early_stopping: int | None = None, grad_accum_steps: int = 1,
        clip_grad_norm: float | None = None, log_dir=None, progress: bool = True, seed: int | None = None,
        ignore_index: int = IGNORE_INDEX, resume=False, task=None, config: dict | None = None,
        verbose: bool = True, val_amp="off") -> History:
    """Train ``model`` and return its :class:`~segcourse.train.History`.

    Args:
        model: returns logits ``(N, C, H, W)`` (``C = 1``: binary, sigmoid).
        train_loader, val_loader: yield ``(images (N, 3, H, W) float, target (N, H, W) int64)``.
        loss_fn: ``loss_fn(logits, target) -> scalar``; e.g. ``nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)``.
        num_classes: classes for the validation confusion matrix (default: from the model's output).
        epochs: number of epochs. ``max_seconds``: a wall-time budget (checked after every batch; the
            epoch in progress is cut short, validated and recorded). At least one must be given.
        optimizer: an optimizer instance, ``"adamw"`` (default), ``"adam"`` or ``"sgd"`` (momentum 0.9),
            the last three built with ``lr`` and ``weight_decay``.
        scheduler: ``None``; ``"poly"`` (``(1 - t/T)**0.9``, DeepLab's schedule) or ``"cosine"``, both
            stepped every optimizer step (need ``epochs``); a ``torch.optim.lr_scheduler`` instance or a
            callable ``optimizer -> scheduler``, stepped once per epoch (``ReduceLROnPlateau`` gets the
            monitored value).
        device: ``"auto"`` (CUDA, then MPS, then CPU) or a device string.
        amp: mixed precision, see :func:`segcourse.train.amp.resolve_precision` (``"auto"``: bf16 or
            fp16+GradScaler on CUDA, off on CPU). ``channels_last``: ``"auto"`` = on for CUDA.
        checkpoint: a path (``.safetensors``): the best model by ``monitor`` is saved there (weights +
            JSON config), and the last state for resuming (optimizer, scheduler, history, RNG) beside
            it as ``<stem>.last.safetensors``.
        monitor: the record key that decides "best" (``val_miou``, ``val_dice``, ``val_fg_dice``,
            ``val_loss``...; keys ending in ``loss`` are minimised). Left at ``"val_miou"`` with a
            ``task`` that has a ``default_monitor`` (a detector: ``"val_loss"``), that one is used.
        early_stopping: stop after this many epochs without improvement of ``monitor`` (``None``: never).
        grad_accum_steps: optimizer step every this many batches (effective batch = batch x steps).
        clip_grad_norm: clip the global gradient norm to this value (``None``: no clipping).
        log_dir: write TensorBoard scalars and prediction images here when ``tensorboard`` is installed
            (otherwise a message says it was skipped).
        progress: tqdm progress bars (widgets in JupyterLab, text elsewhere).
        seed: ``seed_everything(seed)`` before anything else (build the model after seeding yourself
            for the initial weights to repeat too).
        ignore_index: target value skipped by the metrics (pass it to your loss too).
        resume: ``True`` continues from ``<checkpoint stem>.last.safetensors`` when it exists; a path
            continues from that file. The epochs already done count towards ``epochs``.
        task: how a batch is run (default :class:`SegmentationTask`; :class:`~segcourse.train.detection.DetectionTask`
            for models that return a loss dict).
        config: JSON-serialisable description stored in the checkpoints (e.g. ``{"model": "unet",
            "model_kwargs": {...}}``) so that :func:`~segcourse.train.load_checkpoint` can rebuild the model.
        verbose: print the set-up line and one line per epoch.
        val_amp: mixed precision of the validation pass, as ``amp`` (default ``"off"``: validation runs in
            float32 like :func:`evaluate`, so the validation scores in the history, the checkpoint chosen
            from them and a later ``evaluate`` of the same model agree, whatever ``amp`` trains with).

    Returns:
        The :class:`History` (``history.records``, ``history.best``).

    Raises:
        ValueError: neither ``epochs`` nor ``max_seconds``; bad ``grad_accum_steps``/``early_stopping``; an
            unknown optimizer or scheduler name; ``monitor`` never recorded; a resume file that does not match.
        TypeError: ``loss_fn`` missing for a segmentation model, malformed batches.
    """
    from . import checkpoint as ckpt

    # -- arguments ------------------------------------------------------------------------------
    if epochs is None and max_seconds is None:
        raise ValueError("give epochs=..., max_seconds=... or both; fit needs to know when to stop")
    if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not isinstance(grad_accum_steps, int) or grad_accum_steps < 1:
        raise ValueError(f"grad_accum_steps must be a positive int, got {grad_accum_steps!r}")
    if early_stopping is not None and (not isinstance(early_stopping, int) or early_stopping < 1):
        raise ValueError(f"early_stopping must be None or a positive int (patience in epochs), got {early_stopping!r}")
    if task is None:
        if loss_fn is None:
            raise TypeError("fit needs loss_fn=..., e.g. torch.nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)")
        task = SegmentationTask(loss_fn, num_classes, ignore_index)
    elif monitor == "val_miou" and getattr(task, "default_monitor", None):
        monitor = task.default_monitor  # e.g. a detector reports val_loss, not val_miou
    if seed is not None:
        seed_everything(seed)

    # -- set-up: device, precision, processes -----------------------------------------------------
    device = get_device(device) if isinstance(device, str) else torch.device(device)
    dist_info = ddp.setup(device)
    device = ddp.local_device(device, dist_info)
    precision = resolve_precision(amp, channels_last, device)
    val_precision = resolve_precision(val_amp, precision.channels_last, device)  # float32 unless asked
    model.to(device)
    if precision.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = _build_optimizer(optimizer, model, lr, weight_decay)
    scaler = make_scaler(precision, device)
    train_loader = ddp.distribute_loader(train_loader, dist_info)
    val_loader = ddp.distribute_loader(val_loader, dist_info, for_eval=True)
    steps_per_epoch = math.ceil(len(train_loader) / grad_accum_steps)
    scheduler, per_step = _build_scheduler(scheduler, optimizer, epochs, steps_per_epoch)
    train_model = ddp.wrap_model(model, device, dist_info)
    history = History(monitor=monitor)
    history.device, history.precision = str(device), precision.describe()
    main = dist_info.is_main

    # -- resume ---------------------------------------------------------------------------------
    last_path = ckpt.last_path(checkpoint) if checkpoint is not None else None
    resume_from = last_path if resume is True else resume or None
    start_epoch, best_value, bad_epochs = 1, None, 0
    if resume_from is not None and (resume is not True or resume_from.exists()):
        state = ckpt.load_training_state(resume_from, model, optimizer, scheduler=scheduler, scaler=scaler)
        history = History.from_dict(state["history"])
        history.device, history.precision = str(device), precision.describe()
        start_epoch = state["epoch"] + 1
        best_value, bad_epochs = state.get("best_value"), state.get("bad_epochs", 0)
        if main and verbose:
            print(f"resumed from {resume_from} after epoch {state['epoch']}")
    elif resume is True and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=... (the last state is read from beside it)")

    logger = None
    if log_dir is not None and main:
        from .logging import TensorBoardLogger

        logger = TensorBoardLogger.create(log_dir, verbose=verbose)

    if main and verbose:
        n_params = count_parameters(model)
        n_train = len(train_loader.dataset) if hasattr(train_loader, "dataset") else "?"
        procs = f" x {dist_info.world_size} processes" if dist_info.enabled else ""
        val_note = " (validation in float32)" if precision.amp and not val_precision.amp else ""
        print(f"training on {_device_name(device)}{procs} | {precision.describe()}{val_note} | {n_params:,} parameters | "
              f"{n_train} training images | {'epochs=' + str(epochs) if epochs else ''}"
              f"{' ' if epochs and max_seconds else ''}{f'max_seconds={max_seconds:g}' if max_seconds else ''}")
        if device.type == "cuda" and not getattr(train_loader, "pin_memory", True):
            print("tip: DataLoader(..., pin_memory=True) lets batches copy to the GPU while it computes")

    # -- the epoch loop -------------------------------------------------------------------------
    start = time.perf_counter()
    deadline = start + max_seconds if max_seconds is not None else None
    history.stop_reason = "epochs"
    epoch = start_epoch
    while epochs is None or epoch <= epochs:
        t0 = time.perf_counter()
        ddp.set_epoch(train_loader, epoch)
        lr_now = optimizer.param_groups[0]["lr"]
        desc = f"epoch {epoch}" + (f"/{epochs}" if epochs else "")
        train_stats = train_one_epoch(train_model, train_loader, optimizer, task=task, device=device,
                                      precision=precision, scaler=scaler, scheduler=scheduler if per_step else None,
                                      grad_accum_steps=grad_accum_steps, clip_grad_norm=clip_grad_norm,
                                      deadline=deadline, progress=progress and main, desc=desc,
                                      dist_info=dist_info)
        n_seen = train_stats["images"]
        record: dict[str, Any] = {"epoch": epoch,
                                  "train_loss": _mean_over_ranks(train_stats["loss"], n_seen, device, dist_info)}
        for key, value in train_stats["components"].items():
            record[f"train_{key}"] = _mean_over_ranks(value, n_seen, device, dist_info)
        if val_loader is not None:
            val = task.evaluate(model, val_loader, device=device, precision=val_precision, progress=progress and main,
                                dist_info=dist_info)
            order = ["loss", "miou", "dice", "fg_iou", "fg_dice", "pixel_accuracy", "mean_accuracy", "fwiou"]
            rest = [k for k in val if k not in order and k not in ("confusion", "images")]
            keys = [k for k in order if k in val] + rest
            record.update({f"val_{k}": val[k] for k in keys})
        record["seconds"] = time.perf_counter() - t0
        record["images_per_s"] = train_stats["images_per_s"] * dist_info.world_size  # all processes together
        record["lr"] = lr_now
        history.append(record)
        if epoch == start_epoch and val_loader is not None and monitor not in record:
            keys = ", ".join(k for k in record if k.startswith("val_"))
            raise ValueError(f"monitor={monitor!r} is not among the recorded validation keys: {keys}")

        if scheduler is not None and not per_step:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(record.get(monitor, record["train_loss"]))
            else:
                scheduler.step()

        # best model, early stopping
        value = record.get(monitor)
        improved = is_better(value, best_value, history.mode) if value is not None else True
        if improved:
            best_value, bad_epochs = value, 0
        else:
            bad_epochs += 1
        if main and checkpoint is not None:
            run_config = {**(config or {}), "epoch": epoch, "monitor": monitor, "value": value,
                          "record": _scalars(record)}
            if improved:
                ckpt.save_checkpoint(checkpoint, model, config=run_config)
            ckpt.save_training_state(last_path, model, optimizer, scheduler=scheduler, scaler=scaler, epoch=epoch,
                                     history=history, best_value=best_value, bad_epochs=bad_epochs, config=run_config)
        if logger is not None:
            logger.log_epoch(record, model, val_loader, device=device, precision=val_precision)
        if main and verbose:
            print(_epoch_line(record, epochs, monitor, improved and checkpoint is not None))

        out_of_time = deadline is not None and ddp.any_rank(time.perf_counter() > deadline, device, dist_info)
        if train_stats["stopped"] or out_of_time:
            history.stop_reason = "max_seconds"
            break
        if early_stopping is not None and bad_epochs >= early_stopping:
            history.stop_reason = "early_stopping"
            break
        epoch += 1

    if logger is not None:
        logger.close()
    ddp.barrier(dist_info)
    new = [r for r in history.records if r["epoch"] >= start_epoch]
    if main and verbose and not new:
        print(f"nothing to do: the resumed run had already trained {start_epoch - 1} of {epochs} epochs")
    elif main and verbose:
        best = history.best
        shown = f"best {monitor}={best[monitor]:.4f} at epoch {best['epoch']}; " if monitor in best else ""
        total = time.perf_counter() - start
        print(f"done ({history.stop_reason}): {shown}{len(new)} epochs in {total:.1f} s, "
              f"{np.mean([r['images_per_s'] for r in new]):.1f} images/s on {_device_name(device)}")
    return history


# ---------------------------------------------------------------------------------------------
# helpers of fit
# ---------------------------------------------------------------------------------------------


def _build_optimizer(optimizer, model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
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


def _build_scheduler(scheduler, optimizer, epochs: int | None, steps_per_epoch: int):
    """Returns ``(scheduler, per_step)``."""
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
        return _build_scheduler(scheduler(optimizer), optimizer, epochs, steps_per_epoch)
    raise TypeError("scheduler must be None, 'poly', 'cosine', an LR scheduler or a callable, "
                    f"got {type(scheduler).__name__}")


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
