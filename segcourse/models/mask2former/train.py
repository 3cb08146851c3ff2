"""Targets from panoptic maps, a short training loop and batched prediction for :class:`~.model.Mask2Former`.

A target of one image is the set of its segments: ``{"labels": (K,) int64, "masks": (K, H, W) float}``, one
entry per stuff class present and per thing instance (the layout of Hugging Face's ``mask_labels`` /
``class_labels``). The loop is a plain AdamW loop (the paper: AdamW, lr 1e-4, weight decay 0.05, poly
schedule, gradient clipping); the sizes are small enough for a CPU.
"""

from __future__ import annotations

import time
from collections.abc import Collection

import numpy as np
import torch

from ...config import get_device
from .criterion import SetCriterion
from .inference import panoptic_inference, semantic_inference

__all__ = ["panoptic_targets", "train_mask2former", "predict_outputs", "predict_panoptic", "predict_semantic"]


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


def train_mask2former(model: torch.nn.Module, images: torch.Tensor, targets: list[dict], *, epochs: int,
                      batch_size: int = 8, lr: float = 1e-3, weight_decay: float = 0.05, clip: float = 1.0,
                      criterion: SetCriterion | None = None, hflip: bool = True, seed: int = 0,
                      max_seconds: float | None = None, log_every: int = 0, device="auto") -> list[dict]:
    """Train on ``images (N, 3, H, W)`` float and their ``targets`` with AdamW and a one-cycle schedule.

    The model and each batch move to ``device`` (``"auto"``: CUDA, then MPS, then the CPU, as
    :func:`segcourse.config.get_device`); the data stay where they are.

    ``hflip`` flips a random half of each batch (images and target masks together). Returns one record per
    epoch: ``{"epoch", "loss", "loss_class", "loss_mask", "loss_dice", "seconds"}`` (final-layer terms
    averaged over the epoch's batches; ``loss`` includes the auxiliary layers).
    """
    if len(images) != len(targets):
        raise ValueError(f"{len(images)} images but {len(targets)} targets")
    criterion = criterion or SetCriterion(model.config.num_classes)
    dev = get_device(device) if isinstance(device, str) else device
    model.to(dev)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * ((len(images) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.1)
    start, history = time.time(), []
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=g)
        sums: dict[str, float] = {}
        n = 0
        for i in range(0, len(images), batch_size):
            idx = order[i:i + batch_size]
            x = images[idx].clone()
            tg = [{k: v.to(dev) for k, v in targets[int(j)].items()} for j in idx]
            if hflip:
                flip = torch.rand(len(idx), generator=g) < 0.5
                x[flip] = x[flip].flip(-1)
                for t, f in zip(tg, flip.tolist()):
                    if f:
                        t["masks"] = t["masks"].flip(-1)
            losses = criterion(model(x.to(dev)), tg)
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            sched.step()
            for k in ("loss", "loss_class", "loss_mask", "loss_dice"):
                sums[k] = sums.get(k, 0.0) + float(losses[k].detach())
            n += 1
        history.append({"epoch": epoch + 1, **{k: v / n for k, v in sums.items()}, "seconds": time.time() - start})
        if log_every and (epoch + 1) % log_every == 0:
            print(f"epoch {epoch + 1:3d}  loss {history[-1]['loss']:.3f}  ({history[-1]['seconds']:.0f} s)")
        if max_seconds is not None and time.time() - start > max_seconds:
            break
    model.eval()
    return history


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
