"""Mixed precision and memory format: what ``amp="auto"`` and ``channels_last="auto"`` mean.

Mixed precision runs the forward pass in a 16-bit float type where that is safe
(convolutions, matrix products) and keeps float32 where it is not (reductions, the
loss), roughly halving memory traffic on a GPU. Two 16-bit types exist:

* **bfloat16** keeps float32's exponent range, so gradients do not underflow and no
  loss scaling is needed. Used whenever the GPU supports it (NVIDIA Ampere and newer).
* **float16** has a narrow exponent range: small gradients flush to zero unless the
  loss is multiplied by a large factor before ``backward()`` and the gradients divided
  by it afterwards. :class:`torch.amp.GradScaler` does that (and skips steps whose
  gradients overflowed).

``channels_last`` stores a 4-D tensor as (N, H, W, C) in memory while keeping its
(N, C, H, W) shape; tensor-core convolution kernels prefer it, so it helps on GPUs
together with mixed precision, and does little or harm on CPUs.

References:
    Micikevicius et al., "Mixed Precision Training", ICLR 2018, https://arxiv.org/abs/1710.03740
    Kalamkar et al., "A Study of BFLOAT16 for Deep Learning Training", 2019, https://arxiv.org/abs/1905.12322
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

_AMP_CHOICES = ("auto", "off", "on", "bf16", "fp16")


@dataclass(frozen=True)
class Precision:
    """The numeric set-up of a run.

    Attributes:
        dtype: the autocast dtype (``torch.bfloat16`` / ``torch.float16``), or ``None`` for plain float32.
        use_scaler: whether a :class:`torch.amp.GradScaler` is needed (float16 only).
        channels_last: whether model and 4-D inputs use the channels-last memory format.
    """

    dtype: torch.dtype | None = None
    use_scaler: bool = False
    channels_last: bool = False

    @property
    def amp(self) -> bool:
        return self.dtype is not None

    def describe(self) -> str:
        """E.g. ``"amp=bf16 channels_last=on"``."""
        amp = {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16+GradScaler"}[self.dtype]
        return f"amp={amp} channels_last={'on' if self.channels_last else 'off'}"


def resolve_precision(amp="auto", channels_last="auto", device: torch.device | str = "cpu") -> Precision:
    """Turn the user's ``amp`` / ``channels_last`` settings into a :class:`Precision`.

    Args:
        amp: ``"auto"`` (bf16 on a CUDA GPU that supports it, fp16 + GradScaler on an older
            one, off on CPU and MPS), ``True``/``"on"`` (the same choice, but also bf16 on
            CPU), ``False``/``"off"``/``None``, or an explicit ``"bf16"`` / ``"fp16"``.
        channels_last: ``"auto"`` (on for CUDA, off elsewhere), ``True`` or ``False``.
        device: the device the model runs on.

    Returns:
        The :class:`Precision`.

    Raises:
        ValueError: an unknown setting, or fp16 asked for on the CPU (use bf16 there).
    """
    device = torch.device(device)
    if amp is True:
        amp = "on"
    elif amp is False or amp is None:
        amp = "off"
    if not isinstance(amp, str) or amp not in _AMP_CHOICES:
        raise ValueError(f"amp must be one of {_AMP_CHOICES} or True/False, got {amp!r}")
    cuda = device.type == "cuda"
    if amp == "auto" and not cuda:
        dtype = None
    elif amp in ("auto", "on"):
        if cuda:
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    elif amp == "bf16":
        dtype = torch.bfloat16
    elif amp == "fp16":
        if device.type == "cpu":
            raise ValueError("amp='fp16' is not supported on the CPU; use amp='bf16' or amp='off'")
        dtype = torch.float16
    else:
        dtype = None

    if channels_last == "auto":
        cl = cuda
    elif isinstance(channels_last, bool):
        cl = channels_last
    else:
        raise ValueError(f"channels_last must be 'auto', True or False, got {channels_last!r}")
    return Precision(dtype=dtype, use_scaler=dtype is torch.float16 and cuda, channels_last=cl)


def autocast(precision: Precision, device: torch.device | str):
    """The autocast context for ``precision`` on ``device`` (a no-op context when AMP is off)."""
    if not precision.amp:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=precision.dtype)


def make_scaler(precision: Precision, device: torch.device | str) -> torch.amp.GradScaler:
    """A GradScaler, enabled only for float16 on CUDA (a disabled scaler is a transparent no-op)."""
    device = torch.device(device)
    return torch.amp.GradScaler(device.type if device.type == "cuda" else "cpu", enabled=precision.use_scaler)


def to_device(tensor: torch.Tensor, device: torch.device, precision: Precision) -> torch.Tensor:
    """Copy a batch tensor to ``device`` (non-blocking from pinned memory), channels-last if asked and 4-D."""
    tensor = tensor.to(device, non_blocking=device.type == "cuda")
    if precision.channels_last and tensor.dim() == 4 and tensor.is_floating_point():
        tensor = tensor.contiguous(memory_format=torch.channels_last)
    return tensor
