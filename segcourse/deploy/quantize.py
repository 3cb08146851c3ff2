"""int8 quantisation of an exported ONNX model with ONNX Runtime's tools.

* ``"dynamic"``: weights stored as int8, activations quantised on the fly per call. No
  calibration data; built for MatMul-heavy models (transformers, LSTMs). A convolution becomes a
  ``ConvInteger`` node, which ONNX Runtime's CPU kernels run slowly: for a U-Net it is usually
  *slower* than float32 (the lesson and ``benchmarks/deploy.py`` measure it).
* ``"static"``: weights and activations int8 with scales measured on calibration images, in the
  QDQ format (QuantizeLinear/DequantizeLinear pairs that the runtime fuses into int8 kernels);
  per-channel weight scales. The speed-up depends on the CPU's int8 instructions (VNNI, etc.).

Either way the accuracy cost is measured, not assumed: compare the quantised model's masks with
the float model's on held-out images.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

MODES = ("dynamic", "static")


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
