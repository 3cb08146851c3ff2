"""Argument checks shared by the losses: clear errors instead of silent broadcasting.

Every loss in :mod:`segcourse.losses` calls one of these first, so a wrong shape or dtype
fails with a message that says what was expected, what arrived and how to fix it
(a float mask, a mask with a channel axis, a class id >= ``num_classes``...).
"""

from __future__ import annotations

import torch

from ..constants import IGNORE_INDEX


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return f"{type(x).__name__}"


def check_multiclass(logits, target, ignore_index: int | None = IGNORE_INDEX, name: str = "loss") -> torch.Tensor:
    """Check ``logits (N, C, *spatial) float`` and ``target (N, *spatial) int64``.

    Returns:
        The boolean ``valid`` mask ``(N, *spatial)``: pixels whose label is not ``ignore_index``.

    Raises:
        TypeError: an argument is not a tensor, logits are not float, the target is not integer.
        ValueError: shapes disagree or the target holds a label outside ``[0, C)`` other than ``ignore_index``.
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(f"{name}: expected torch tensors (logits, target), got {_describe(logits)} and {_describe(target)}")
    if not logits.is_floating_point():
        raise TypeError(f"{name}: logits must be a float tensor (N, C, H, W) of raw scores, got {_describe(logits)}")
    if target.is_floating_point() or target.dtype == torch.bool or target.is_complex():
        raise TypeError(
            f"{name}: target must hold integer class ids (N, H, W) int64, got {_describe(target)}; "
            f"convert it with target.long() (and never normalise a mask by /255)"
        )
    if logits.ndim < 3:
        raise ValueError(f"{name}: logits must be (N, C, H, W) (at least one spatial axis), got shape {tuple(logits.shape)}")
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != expected:
        hint = ""
        if target.ndim == logits.ndim and target.shape[1] == 1:
            hint = "; the target has a channel axis of size 1: use target[:, 0] (or target.squeeze(1))"
        raise ValueError(
            f"{name}: target must be (N, H, W) = {expected} to match logits {tuple(logits.shape)}, "
            f"got {tuple(target.shape)}{hint}"
        )
    num_classes = logits.shape[1]
    valid = target != ignore_index if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
    labels = target[valid]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        raise ValueError(
            f"{name}: target holds label {int(bad[0])}, outside [0, {num_classes}) for {num_classes} classes "
            f"and not the ignore_index ({ignore_index})"
        )
    return valid


def check_binary(logits, target, ignore_index: int | None = IGNORE_INDEX, name: str = "loss",
                 soft: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Check ``logits (N, 1, *spatial) float`` and ``target (N, 1, *spatial)`` or ``(N, *spatial)``.

    Args:
        soft: accept float targets anywhere in [0, 1] (soft labels, e.g. for BCE); otherwise
            the target must hold 0, 1 or ``ignore_index``.

    Returns:
        ``(target, valid)``: the target reshaped to ``(N, 1, *spatial)`` in the logits' dtype (ignored
        pixels set to 0), and the boolean mask of pixels that are not ``ignore_index``.

    Raises:
        TypeError: an argument is not a tensor or the logits are not float.
        ValueError: logits do not have one channel, shapes disagree, or the target holds other values.
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(f"{name}: expected torch tensors (logits, target), got {_describe(logits)} and {_describe(target)}")
    if not logits.is_floating_point():
        raise TypeError(f"{name}: logits must be a float tensor (N, 1, H, W) of raw scores, got {_describe(logits)}")
    if logits.ndim < 3 or logits.shape[1] != 1:
        raise ValueError(
            f"{name}: binary logits must be (N, 1, H, W) (one channel, a sigmoid per pixel), got {tuple(logits.shape)}; "
            f"for two-channel softmax outputs use the multiclass loss"
        )
    if target.ndim == logits.ndim - 1:
        target = target.unsqueeze(1)
    if tuple(target.shape) != tuple(logits.shape):
        raise ValueError(f"{name}: target must be (N, H, W) or (N, 1, H, W) matching logits {tuple(logits.shape)}, "
                         f"got {tuple(target.shape)}")
    if target.dtype == torch.bool:
        target = target.to(torch.uint8)
    valid = target != ignore_index if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
    values = target[valid]
    if values.numel():
        if soft:
            bad = values[(values < 0) | (values > 1)]
            what = "values in [0, 1]"
        else:
            bad = values[(values != 0) & (values != 1)]
            what = "0 (background) or 1 (foreground)"
        if bad.numel():
            raise ValueError(f"{name}: binary target must hold {what} or the ignore_index ({ignore_index}), "
                             f"found {bad[0].item()}")
    target = torch.where(valid, target, torch.zeros_like(target)).to(logits.dtype)
    return target, valid


def check_reduction(reduction: str, allowed=("mean", "sum", "none"), name: str = "loss") -> None:
    """Raise ``ValueError`` unless ``reduction`` is one of ``allowed``."""
    if reduction not in allowed:
        raise ValueError(f"{name}: reduction must be one of {', '.join(map(repr, allowed))}, got {reduction!r}")


def reduce_masked(loss: torch.Tensor, valid: torch.Tensor, reduction: str) -> torch.Tensor:
    """Zero the ignored pixels of a per-pixel ``loss`` and reduce it.

    ``"mean"`` averages over the valid pixels only; when every pixel is ignored it returns 0
    (MONAI's behaviour), not 0/0.
    """
    loss = loss * valid
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / valid.sum().clamp_min(1)
