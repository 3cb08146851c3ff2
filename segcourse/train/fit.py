"""``fit``: train a model for some epochs, validating after each, as torchvision's reference does.

Read :func:`fit` top to bottom, like the main loop of torchvision's
``references/segmentation/train.py``: check the options, set up (device, mixed precision, DDP,
optimizer, learning-rate schedule, resume), then per epoch :func:`~segcourse.train.epoch.train_one_epoch`,
the task's validation, the history record, the best value, the checkpoints, the log, the printed
line and the reasons to stop (time budget, early stopping). Its options are one :class:`FitConfig`; what a batch is and how it is scored is the
``task``'s (:mod:`segcourse.train.tasks`): a segmentation network by default,
:class:`~segcourse.train.detection.DetectionTask` for Mask R-CNN,
:class:`~segcourse.models.mask2former.train.Mask2FormerTask` for Mask2Former.

References:
    torchvision's segmentation reference training script (the model of this file):
    https://github.com/pytorch/vision/tree/main/references/segmentation
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..config import get_device, seed_everything
from ..constants import IGNORE_INDEX
from ..models.parameters import count_parameters
from . import distributed as ddp
from .amp import Precision, make_scaler, resolve_precision
from .epoch import train_one_epoch
from .history import History, is_better, monitor_mode
from .optim import OPTIMIZERS, SCHEDULERS, OptimizerName, SchedulerName, build_optimizer, build_scheduler
from .tasks import SegmentationTask, Task

AmpSetting = Literal["auto", "on", "off", "bf16", "fp16"]
AMP_SETTINGS: tuple[str, ...] = ("auto", "on", "off", "bf16", "fp16")
CHANNELS_LAST_SETTINGS: tuple[str, ...] = ("auto", "on", "off")


@dataclass
class FitConfig:
    """Everything :func:`fit` can be told, with its default (in the style of nanoGPT's ``GPTConfig``).

    The usual call stays one line, ``fit(model, train_loader, val_loader, loss_fn=loss, epochs=5)``:
    fit builds a ``FitConfig`` from its keywords. A config can also be kept, printed and reused,
    ``cfg = FitConfig(loss_fn=loss, epochs=5, lr=3e-4)`` then ``fit(model, train_loader, val_loader, cfg)``;
    keywords given next to it override its fields (``fit(..., cfg, lr=1e-3)``). Each option has one
    type and one meaning.

    What to optimise:
        loss_fn: ``loss_fn(logits, target) -> scalar`` of a segmentation model, e.g.
            ``nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)``. Required unless ``task`` is given.
        num_classes: classes of the validation confusion matrix (default: from the model's output).
        ignore_index: the target value the loss and the metrics skip. ``None`` (default): the loss's own
            (``loss_fn.ignore_index``, or the course losses' ``ignore_index``), else ``IGNORE_INDEX``. A value
            the loss does not skip is an error (fit cannot change the loss), never silently ignored.
        task: how a batch is run and scored, a :class:`~segcourse.train.tasks.Task` (default: a
            :class:`~segcourse.train.tasks.SegmentationTask` of ``loss_fn``, ``num_classes``, ``ignore_index``;
            :class:`~segcourse.train.detection.DetectionTask` for models that return a loss dict). With a
            task, ``loss_fn``, ``num_classes`` and ``ignore_index`` must stay unset.

    How long:
        epochs: number of epochs. ``max_seconds``: a wall-time budget (checked after every batch; the
            epoch in progress is cut short, validated and recorded). At least one must be given.
        monitor: the record key that decides "best" (``"val_miou"``, ``"val_fg_dice"``, ``"val_loss"``...;
            keys ending in ``loss`` are minimised). ``None`` (default): the task's (``val_miou`` for
            segmentation, ``val_loss`` for a detector). A key the validation does not record is an error.
        early_stopping: stop after this many epochs without improvement of ``monitor`` (``None``: never).

    Optimiser and schedule (see :mod:`segcourse.train.optim`):
        optimizer: ``"adamw"`` (default), ``"adam"`` or ``"sgd"`` (momentum 0.9), built with ``lr`` and
            ``weight_decay`` over the trainable parameters.
        scheduler: the learning-rate schedule over the whole run, stepped after every optimizer step
            (needs ``epochs``): ``None`` (constant ``lr``), ``"poly"`` (``(1 - t/T)**0.9``, DeepLab's),
            ``"cosine"`` or ``"onecycle"`` (10 % warm-up to ``lr``, then cosine annealing).
        grad_accum_steps: optimizer step every this many batches (effective batch = batch x steps).
        clip_grad_norm: clip the global gradient norm to this value (``None``: no clipping).

    Hardware:
        device: where to train: ``"auto"`` (CUDA, then MPS, then CPU), a device string or a ``torch.device``.
        amp: mixed precision of training, see :func:`segcourse.train.amp.resolve_precision`: ``"auto"``
            (bf16 or fp16+GradScaler on CUDA, off elsewhere), ``"on"``, ``"off"``, ``"bf16"``, ``"fp16"``.
        channels_last: ``"auto"`` (on for CUDA), ``"on"`` or ``"off"``.
        val_amp: mixed precision of the validation pass, as ``amp`` (default ``"off"``: validation runs in
            float32 like :func:`~segcourse.train.evaluate`, so the validation scores in the history, the
            checkpoint chosen from them and a later ``evaluate`` of the same model agree).

    Files:
        checkpoint: a ``.safetensors`` path: the best model by ``monitor`` is saved there (weights + JSON
            config), and the last state for resuming (optimizer, scheduler, history, RNG) beside it as
            ``<stem>.last.safetensors``.
        resume: continue from ``<checkpoint stem>.last.safetensors`` when it exists (needs ``checkpoint``).
            The epochs already done count towards ``epochs``.
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
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    num_classes: int | None = None
    ignore_index: int | None = None
    task: Task | None = None
    # how long
    epochs: int | None = None
    max_seconds: float | None = None
    monitor: str | None = None
    early_stopping: int | None = None
    # optimiser and schedule
    optimizer: OptimizerName = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    scheduler: SchedulerName | None = None
    grad_accum_steps: int = 1
    clip_grad_norm: float | None = None
    # hardware
    device: str | torch.device = "auto"
    amp: AmpSetting = "auto"
    channels_last: Literal["auto", "on", "off"] = "auto"
    val_amp: AmpSetting = "off"
    # files
    checkpoint: Path | None = None
    resume: bool = False
    config: dict[str, Any] | None = None
    log_dir: Path | None = None
    # reproducibility and output
    seed: int | None = None
    progress: bool = True
    verbose: bool = True

    def __post_init__(self):
        # paths arrive as strings too; keep one type
        for name in ("checkpoint", "log_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                if not isinstance(value, (str, os.PathLike)):
                    raise TypeError(f"{name} must be a path or None, got {type(value).__name__}")
                setattr(self, name, Path(value))


def fit(model: nn.Module, train_loader, val_loader=None, cfg: FitConfig | None = None, **options) -> History:
    """Train ``model`` and return its :class:`~segcourse.train.History`.

    Args:
        model: returns logits ``(N, C, H, W)`` (``C = 1``: binary, sigmoid), or what its ``task`` expects.
        train_loader, val_loader: yield ``(images (N, 3, H, W) float, target (N, H, W) int64)``, or the
            batches of the ``task``.
        cfg: a :class:`FitConfig` (default: ``FitConfig()``).
        **options: fields of :class:`FitConfig` (``loss_fn=``, ``epochs=``, ``lr=``...), overriding ``cfg``.

    Returns:
        The :class:`History` (``history.records``, ``history.best``).

    Raises:
        ValueError: neither ``epochs`` nor ``max_seconds``; a bad ``grad_accum_steps``/``early_stopping``; an
            unknown optimizer, scheduler or precision name; ``monitor`` never recorded; an ``ignore_index``
            the loss does not skip; a resume file that does not match.
        TypeError: an unknown option or one of the wrong type; ``loss_fn`` missing for a segmentation model;
            malformed batches.
        ImportError: ``log_dir`` given without the ``tensorboard`` package.
    """
    cfg = fit_config(cfg, **options)
    task, monitor, mode = _check_options(cfg)
    if cfg.seed is not None:
        seed_everything(cfg.seed)
    run = _set_up(model, train_loader, val_loader, cfg, task, monitor, mode)
    if cfg.resume:
        _resume(run, cfg)
    if cfg.log_dir is not None and run.main:
        from .run_log import TensorBoardLogger

        run.logger = TensorBoardLogger.create(cfg.log_dir, ignore_index=getattr(task, "ignore_index", IGNORE_INDEX))
    if run.main and cfg.verbose:
        _print_setup(run, cfg)

    start = time.perf_counter()
    deadline = start + cfg.max_seconds if cfg.max_seconds is not None else None
    run.history.stop_reason = "epochs"
    epoch = run.start_epoch
    try:
        while cfg.epochs is None or epoch <= cfg.epochs:
            t0 = time.perf_counter()
            ddp.set_epoch(run.train_loader, epoch)
            lr = run.optimizer.param_groups[0]["lr"]
            train_stats = train_one_epoch(run.train_model, run.train_loader, run.optimizer, task=task,
                                          device=run.device, precision=run.precision, scaler=run.scaler,
                                          scheduler=run.scheduler, grad_accum_steps=cfg.grad_accum_steps,
                                          clip_grad_norm=cfg.clip_grad_norm, deadline=deadline,
                                          progress=cfg.progress and run.main, dist_info=run.dist_info,
                                          desc=f"epoch {epoch}" + (f"/{cfg.epochs}" if cfg.epochs else ""))
            val_scores = {}
            if run.val_loader is not None:
                val_scores = task.evaluate(run.model, run.val_loader, device=run.device, precision=run.val_precision,
                                           progress=cfg.progress and run.main, dist_info=run.dist_info,
                                           examples=run.logger.num_images if run.logger is not None else 0)
            examples = val_scores.pop("examples", None)  # the first (images, target, pred), for the logger
            record = _record(run, epoch, lr, train_stats, val_scores, seconds=time.perf_counter() - t0)
            improved = _update_best(run, record)
            if run.main and cfg.checkpoint is not None:
                _save_checkpoints(run, cfg, record, improved)
            if run.logger is not None:
                run.logger.log_epoch(record, examples)
            if run.main and cfg.verbose:
                print(_epoch_line(record, cfg.epochs, monitor, improved and cfg.checkpoint is not None))

            out_of_time = deadline is not None and ddp.any_rank(time.perf_counter() > deadline, run.device,
                                                                run.dist_info)
            if train_stats["stopped"] or out_of_time:
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


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_options(cfg: FitConfig) -> tuple[Task, str, str]:
    """Check the options before anything runs; returns ``(task, monitor, its mode)``."""
    if cfg.epochs is None and cfg.max_seconds is None:
        raise ValueError("give epochs=..., max_seconds=... or both; fit needs to know when to stop")
    if cfg.epochs is not None and not _positive_int(cfg.epochs):
        raise ValueError(f"epochs must be a positive int, got {cfg.epochs!r}")
    if not _positive_int(cfg.grad_accum_steps):
        raise ValueError(f"grad_accum_steps must be a positive int, got {cfg.grad_accum_steps!r}")
    if cfg.early_stopping is not None and not _positive_int(cfg.early_stopping):
        raise ValueError("early_stopping must be None or a positive int (patience in epochs), "
                         f"got {cfg.early_stopping!r}")
    if not isinstance(cfg.optimizer, str) or cfg.optimizer not in OPTIMIZERS:
        got = repr(cfg.optimizer) if isinstance(cfg.optimizer, str) else f"a {type(cfg.optimizer).__name__}"
        raise ValueError(f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))} (fit builds it from lr and "
                         f"weight_decay), got {got}; to step your own optimizer, call train_one_epoch")
    if cfg.scheduler is not None and (not isinstance(cfg.scheduler, str) or cfg.scheduler not in SCHEDULERS):
        got = repr(cfg.scheduler) if isinstance(cfg.scheduler, str) else f"a {type(cfg.scheduler).__name__}"
        raise ValueError(f"scheduler must be None or one of {', '.join(map(repr, SCHEDULERS))} (stepped after every "
                         f"optimizer step), got {got}")
    if cfg.scheduler is not None and cfg.epochs is None:
        raise ValueError(f"scheduler={cfg.scheduler!r} needs epochs=... to know the total number of steps")
    for name, value, choices in (("amp", cfg.amp, AMP_SETTINGS), ("val_amp", cfg.val_amp, AMP_SETTINGS),
                                 ("channels_last", cfg.channels_last, CHANNELS_LAST_SETTINGS)):
        if value not in choices or not isinstance(value, str):
            raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    if not isinstance(cfg.resume, bool):
        raise TypeError(f"resume must be True or False (the state is read from beside checkpoint=...), "
                        f"got {cfg.resume!r}")
    if cfg.resume and cfg.checkpoint is None:
        raise ValueError("resume=True needs checkpoint=... (the last state is read from beside it)")
    if cfg.monitor is not None and not isinstance(cfg.monitor, str):
        raise TypeError(f"monitor must be a record key (a str) or None, got {cfg.monitor!r}")
    if cfg.log_dir is not None:  # on every process, so that no rank is left waiting for the others
        from .run_log import require_tensorboard

        require_tensorboard()
    task = cfg.task
    if task is None:
        if cfg.loss_fn is None:
            raise TypeError("fit needs loss_fn=..., e.g. torch.nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)")
        task = SegmentationTask(cfg.loss_fn, cfg.num_classes, cfg.ignore_index)
    else:
        if not isinstance(task, Task):
            raise TypeError(f"task must provide monitor, mode, to_device, batch_size, training_loss and evaluate "
                            f"(segcourse.train.tasks.Task), got {type(task).__name__}")
        given = [name for name in ("loss_fn", "num_classes", "ignore_index") if getattr(cfg, name) is not None]
        if given:
            raise TypeError(f"{', '.join(given)} belong to the default segmentation task; with task=... leave "
                            f"them unset (the {type(task).__name__} has its own loss and scores)")
    if cfg.monitor is None:
        return task, task.monitor, task.mode
    return task, cfg.monitor, monitor_mode(cfg.monitor)


@dataclass
class _Run:
    """The state of one :func:`fit` run, shared by its steps."""

    model: nn.Module
    train_model: nn.Module  # the model itself, or its DDP wrapper
    train_loader: Any
    val_loader: Any
    task: Task
    monitor: str
    device: torch.device
    dist_info: ddp.DistInfo
    precision: Precision
    val_precision: Precision
    optimizer: torch.optim.Optimizer
    scaler: Any
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    history: History
    last_path: Path | None = None  # <checkpoint stem>.last.safetensors
    start_epoch: int = 1
    best_value: float | None = None
    bad_epochs: int = 0
    logger: Any = None

    @property
    def main(self) -> bool:
        return self.dist_info.is_main


_CHANNELS_LAST = {"auto": "auto", "on": True, "off": False}


def _set_up(model, train_loader, val_loader, cfg: FitConfig, task: Task, monitor: str, mode: str) -> _Run:
    """Device, precision, processes (DDP), optimizer, GradScaler, scheduler and an empty history."""
    device = get_device(cfg.device) if isinstance(cfg.device, str) else torch.device(cfg.device)
    dist_info = ddp.setup(device)
    device = ddp.local_device(device, dist_info)
    precision = resolve_precision(cfg.amp, _CHANNELS_LAST[cfg.channels_last], device)
    val_precision = resolve_precision(cfg.val_amp, precision.channels_last, device)  # float32 unless asked
    model.to(device)
    if precision.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg.optimizer, model, cfg.lr, cfg.weight_decay)
    scaler = make_scaler(precision, device)
    train_loader = ddp.distribute_loader(train_loader, dist_info)
    val_loader = ddp.distribute_loader(val_loader, dist_info, for_eval=True)
    scheduler = None
    if cfg.scheduler is not None:
        steps_per_epoch = math.ceil(len(train_loader) / cfg.grad_accum_steps)
        scheduler = build_scheduler(cfg.scheduler, optimizer, cfg.epochs * steps_per_epoch)
    train_model = ddp.wrap_model(model, device, dist_info)
    history = History(monitor=monitor, mode=mode)
    history.device, history.precision = str(device), precision.describe()
    history.pretrained_loaded = getattr(model, "pretrained_loaded", None)
    last_path = None
    if cfg.checkpoint is not None:
        from . import checkpoint as ckpt

        last_path = ckpt.last_path(cfg.checkpoint)
    return _Run(model=model, train_model=train_model, train_loader=train_loader, val_loader=val_loader, task=task,
                monitor=monitor, device=device, dist_info=dist_info, precision=precision, val_precision=val_precision,
                optimizer=optimizer, scaler=scaler, scheduler=scheduler, history=history, last_path=last_path)


def _resume(run: _Run, cfg: FitConfig) -> None:
    """Continue from ``run.last_path`` (``<checkpoint stem>.last.safetensors``) when it exists."""
    from . import checkpoint as ckpt

    if not run.last_path.exists():
        return
    state = ckpt.load_training_state(run.last_path, run.model, run.optimizer, scheduler=run.scheduler,
                                     scaler=run.scaler)
    pretrained_loaded = run.history.pretrained_loaded
    run.history = History.from_dict(state["history"])
    run.history.device, run.history.precision = str(run.device), run.precision.describe()
    run.history.pretrained_loaded = pretrained_loaded
    run.start_epoch = state["epoch"] + 1
    run.best_value, run.bad_epochs = state.get("best_value"), state.get("bad_epochs", 0)
    if run.main and cfg.verbose:
        print(f"resumed from {run.last_path} after epoch {state['epoch']}")


def _record(run: _Run, epoch: int, lr: float, train_stats: dict, val_scores: dict, seconds: float) -> dict:
    """The epoch's history record: the training losses (averaged over all processes), ``val_<score>`` for
    each validation score, the time and the learning rate the epoch started with; appended to the history.

    Raises:
        ValueError: after the first validated epoch, when ``run.monitor`` is not among the recorded keys.
    """
    n_seen = train_stats["images"]
    record: dict[str, Any] = {"epoch": epoch,
                              "train_loss": _mean_over_ranks(train_stats["loss"], n_seen, run.device, run.dist_info)}
    for key, value in train_stats["components"].items():
        record[f"train_{key}"] = _mean_over_ranks(value, n_seen, run.device, run.dist_info)
    order = ["loss", "miou", "dice", "fg_iou", "fg_dice", "pixel_accuracy", "mean_accuracy", "fwiou"]
    rest = [k for k in val_scores if k not in order and k not in ("confusion", "images")]
    record.update({f"val_{k}": val_scores[k] for k in [k for k in order if k in val_scores] + rest})
    record["seconds"] = seconds
    record["images_per_s"] = train_stats["images_per_s"] * run.dist_info.world_size  # all processes together
    record["lr"] = lr
    run.history.append(record)
    if epoch == run.start_epoch and run.val_loader is not None and run.monitor not in record:
        keys = ", ".join(k for k in record if k.startswith(("val_", "train_")))
        raise ValueError(f"monitor={run.monitor!r} is not among the recorded keys of {type(run.task).__name__}: "
                         f"{keys}")
    return record


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
