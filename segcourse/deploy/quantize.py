"""int8 quantisation of an exported ONNX model with ONNX Runtime's tools.

* ``"dynamic"``: weights stored as int8, activations quantised on the fly per call. No
  calibration data; built for MatMul-heavy models (transformers, LSTMs). A convolution becomes a
  ``ConvInteger`` node, which ONNX Runtime's CPU kernels run slowly: for a U-Net it is usually
  *slower* than float32 (the lesson and ``benchmarks/deploy.py`` measure it).
* ``"static"``: weights and activations int8 with scales measured on calibration images, in the
  QDQ format (QuantizeLinear/DequantizeLinear pairs that the runtime fuses into int8 kernels);
  per-channel weight scales. The speed-up depends on the CPU's int8 instructions (VNNI, etc.).

Either way the accuracy cost is measured, not assumed: compare the quantised model's masks with
the float model's on held-out images. And so is the speed: int8 is an option *of ONNX Runtime*, so
the comparison that decides is int8 against ONNX Runtime float32 on the CPU you deploy to (a ratio to
eager PyTorch mixes the runtime's gain with the quantisation's). :func:`int8_instructions` lists the
int8 instructions the CPU reports, which is where a static int8 model can gain.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

MODES = ("dynamic", "static")

#: CPU flags (Linux ``/proc/cpuinfo`` names) of the int8 dot-product instructions int8 kernels use:
#: x86 VNNI (AVX-512 and AVX) and AMX, ARM's dot-product and int8 matrix-multiply extensions
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def int8_instructions(cpuinfo: str | None = None) -> list[str] | None:
    """The int8 dot-product instructions this CPU reports, from ``/proc/cpuinfo`` (Linux).

    Args:
        cpuinfo: the text of a ``/proc/cpuinfo`` (default: read this machine's).

    Returns:
        The names of :data:`INT8_FLAGS` found in the ``flags`` (x86) or ``Features`` (ARM) lines, in
        that order (``[]``: none); ``None`` when there is no ``/proc/cpuinfo`` to read (macOS, Windows).

    Example:
        >>> int8_instructions("flags : fpu sse2 avx2 avx512f avx512_vnni")
        ['avx512_vnni']
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    found = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            found.update(value.split())
    return [flag for flag in INT8_FLAGS if flag in found]


def quantize_onnx(src: str | os.PathLike, dst: str | os.PathLike, *, mode: str = "static",
                  calibration=None) -> Path:
    """Write an int8 copy of the ONNX model ``src`` to ``dst``.

    Args:
        mode: ``"dynamic"`` or ``"static"`` (see the module docstring).
        calibration: for ``"static"``: images ``(N, C, H, W)`` float32 (array or tensor), preprocessed
            as for the model; each is fed alone to measure activation ranges.

    Raises:
        ValueError: unknown mode, or ``"static"`` without calibration images.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    prepared = dst.with_name(dst.stem + ".pre.onnx")
    # the tools log a warning (with a whole tensor type dump) on the root logger for the integer shape tensors
    # of the padding arithmetic, which are correctly left in int64: keep it out of the lesson's output
    logging.disable(logging.WARNING)
    try:
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)   # fold constants, infer shapes
        if mode == "dynamic":
            quantize_dynamic(str(prepared), str(dst), weight_type=QuantType.QInt8)
            return dst
        if calibration is None or len(calibration) == 0:
            raise ValueError("static quantisation needs calibration images (N, C, H, W)")
        images = calibration.detach().cpu().numpy() if hasattr(calibration, "detach") else np.asarray(calibration)
        images = images.astype(np.float32)

        class _Reader(CalibrationDataReader):
            def __init__(self):
                self._it = iter([{"image": images[i:i + 1]} for i in range(len(images))])

            def get_next(self):
                return next(self._it, None)

        quantize_static(str(prepared), str(dst), _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        return dst
    finally:
        logging.disable(logging.NOTSET)
        prepared.unlink(missing_ok=True)
