"""Targets from panoptic maps, training through :func:`segcourse.train.fit`, and batched prediction for
:class:`~.model.Mask2Former`.

A target of one image is the set of its segments: ``{"labels": (K,) int64, "masks": (K, H, W) float}``, one
entry per stuff class present and per thing instance (the layout of Hugging Face's ``mask_labels`` /
``class_labels``). Mask2Former trains through the course's one loop, :func:`segcourse.train.fit`, with
:class:`Mask2FormerTask` (the set criterion as the loss) and :class:`PanopticBatches` (shuffled, flipped
batches); the paper's recipe is AdamW, weight decay 0.05, a poly schedule and gradient clipping. This module
imports nothing of :mod:`segcourse.train`: a task is any object with the methods ``fit`` calls.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

import numpy as np
import torch

from .criterion import SetCriterion
from .inference import panoptic_inference, semantic_inference

__all__ = ["panoptic_targets", "PanopticBatches", "Mask2FormerTask", "predict_outputs", "predict_panoptic", "predict_semantic"]


def panoptic_targets(panoptic, things: Collection[int]) -> dict[str, torch.Tensor]:
    """Segments of one ``(H, W, 2)`` ``(category_id, instance_id)`` map -> ``{"labels" (K,), "masks" (K, H, W) float}``.

    Stuff instance ids are ignored (one segment per stuff class); segments are ordered by (category, instance).
    """
    p = torch.as_tensor(np.asarray(panoptic)).long()
    if p.ndim != 3 or p.shape[-1] != 2:
        raise ValueError(f"a panoptic map must be (H, W, 2) (category_id, instance_id), got {tuple(p.shape)}")
    things_t = torch.tensor(sorted({int(t) for t in things}), dtype=torch.int64)
    cat, inst = p[..., 0], p[..., 1].clone()
    inst[~torch.isin(cat, things_t)] = 0
    keys = torch.unique(cat * 65536 + inst)                                 # sorted (category, instance)
    masks = (cat * 65536 + inst)[None] == keys[:, None, None]               # (K, H, W)
    return {"labels": keys // 65536, "masks": masks.float()}


class PanopticBatches:
    """The training batches of Mask2Former: ``(images (B, 3, H, W), [target dict, ...])``, for :func:`~segcourse.train.fit`.

    Each pass (epoch) draws a new order of ``images`` and, with ``hflip``, flips a random half of each
    batch (images and target masks together), from its own generator seeded with ``seed``, so the
    batches repeat whatever else draws random numbers. ``len()`` is the number of batches.

    Args:
        images: ``(N, 3, H, W)`` float, preprocessed; they stay where they are (the task moves each batch).
        targets: one :func:`panoptic_targets` dict per image.
        batch_size: images per batch (the last may be smaller).
        shuffle: a new random order every pass (else the order of ``images``).
        hflip: flip a random half of each batch horizontally.
        seed: the generator's seed.
    """

    def __init__(self, images: torch.Tensor, targets: list[dict], batch_size: int = 8, *, shuffle: bool = True,
                 hflip: bool = True, seed: int = 0):
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.images, self.targets, self.batch_size = images, targets, batch_size
        self.shuffle, self.hflip = shuffle, hflip
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return (len(self.images) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        n = len(self.images)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for i in range(0, n, self.batch_size):
            idx = order[i:i + self.batch_size]
            x = self.images[idx].clone()
            tg = [dict(self.targets[int(j)]) for j in idx]
            if self.hflip:
                flip = torch.rand(len(idx), generator=self.generator) < 0.5
                x[flip] = x[flip].flip(-1)
                for t, f in zip(tg, flip.tolist()):
                    if f:
                        t["masks"] = t["masks"].flip(-1)
            yield x, tg


class Mask2FormerTask:
    """How :func:`~segcourse.train.fit` trains Mask2Former (a :class:`~segcourse.train.tasks.Task`).

    A batch is ``(images (B, 3, H, W), [{"labels", "masks"}, ...])`` (:class:`PanopticBatches`); the loss is
    the :class:`~.criterion.SetCriterion`'s total (final and auxiliary layers), its final-layer terms
    ``loss_class``, ``loss_mask``, ``loss_dice`` recorded beside it. Validation reports the same losses
    on the validation batches, with the model in eval mode. The paper's recipe is AdamW, weight decay 0.05,
    gradient clipping and a one-cycle or poly schedule::

        history = fit(model, PanopticBatches(images, targets), task=Mask2FormerTask(SetCriterion(num_classes)),
                      epochs=10, lr=1e-3, weight_decay=0.05, scheduler="onecycle", clip_grad_norm=1.0)

    The criterion samples its points from the global random generator (as Hugging Face's does), so a
    validation pass changes the random numbers the next epoch's training draws.
    """

    monitor = "val_loss"
    mode: Literal["min", "max"] = "min"
    parts = ("loss_class", "loss_mask", "loss_dice")

    def __init__(self, criterion: SetCriterion):
        self.criterion = criterion

    def to_device(self, batch, device: torch.device, precision) -> tuple[torch.Tensor, list[dict]]:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError("a Mask2Former loader must yield (images, targets), e.g. PanopticBatches(images, targets)")
        images, targets = batch
        images = images.to(device)
        if getattr(precision, "channels_last", False):
            images = images.contiguous(memory_format=torch.channels_last)
        return images, [{k: v.to(device) for k, v in t.items()} for t in targets]

    def batch_size(self, batch) -> int:
        return len(batch[0])

    def training_loss(self, model: torch.nn.Module, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, targets = batch
        losses = self.criterion(model(images), targets)
        return losses["loss"], {k: losses[k].detach() for k in self.parts}

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, loader, *, device: torch.device, precision, progress: bool,
                 dist_info, examples: int = 0) -> dict[str, float]:
        """The mean of each loss over ``loader`` (images weigh equally); ``examples`` is ignored."""
        from tqdm.auto import tqdm

        was_training = model.training
        model.eval()
        sums: dict[str, float] = {}
        count = 0
        try:
            with tqdm(total=len(loader), desc="val", leave=False, disable=not progress) as bar:
                for batch in loader:
                    images, targets = self.to_device(batch, device, precision)
                    with torch.autocast(device.type, dtype=precision.dtype, enabled=precision.dtype is not None):
                        loss, parts = self.training_loss(model, (images, targets))
                    for key, value in {"loss": loss, **parts}.items():
                        sums[key] = sums.get(key, 0.0) + float(value) * len(images)
                    count += len(images)
                    bar.update()
        finally:
            model.train(was_training)
        if getattr(dist_info, "enabled", False):
            raise NotImplementedError("Mask2FormerTask validates on one process only")
        return {k: v / max(count, 1) for k, v in sums.items()} | {"images": count}


@torch.no_grad()
def predict_outputs(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 16) -> dict[str, torch.Tensor]:
    """Final-layer ``class_logits (N, Q, C+1)`` and ``mask_logits (N, Q, h, w)`` for ``images (N, 3, H, W)``,
    computed on the model's device and returned on the CPU."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    cls, msk = [], []
    for i in range(0, len(images), batch_size):
        out = model(images[i:i + batch_size].to(dev))
        cls.append(out["class_logits"].cpu())
        msk.append(out["mask_logits"].cpu())
    model.train(was)
    return {"class_logits": torch.cat(cls), "mask_logits": torch.cat(msk)}


def predict_panoptic(outputs: dict, things: Collection[int], size: tuple[int, int], **kwargs) -> torch.Tensor:
    """``(N, H, W, 2)`` int64 panoptic maps from :func:`predict_outputs`' dict (see :func:`panoptic_inference`)."""
    return torch.stack([panoptic_inference(c, m, things, size, **kwargs)
                        for c, m in zip(outputs["class_logits"], outputs["mask_logits"])])


def predict_semantic(outputs: dict, size: tuple[int, int]) -> torch.Tensor:
    """``(N, H, W)`` int64 semantic maps (argmax of :func:`semantic_inference`)."""
    return torch.stack([semantic_inference(c, m, size).argmax(0)
                        for c, m in zip(outputs["class_logits"], outputs["mask_logits"])])
