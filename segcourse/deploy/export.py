"""Export a segmentation model to ONNX and run it with ONNX Runtime.

The exported graph takes ``image (N, C, H, W) float32`` (the training preprocessing: RGB / 255)
and returns ``logits (N, K, H, W) float32``, with the batch, height and width dynamic.

Why a wrapper (:class:`DeployModel`): the ONNX exporter used here records the operations of one
example run (tracing). Python decisions taken during that run are frozen into the graph: the U-Net's
decoder pads a map only when its size is odd (``if dh == 0: return x``), so a graph traced on a
64 x 64 image has no padding step and fails (or is wrong) on a 97 x 75 one. :class:`DeployModel`
pads every input to a multiple of the network's down-sampling factor with shape arithmetic the
tracer records (so it stays dynamic), runs the network, and crops the logits back: the same
computation for every size, in PyTorch and in the exported graph. It is the
:func:`segcourse.models.unet.pad_to_multiple` policy (MONAI's ``DivisiblePad``, symmetric).

Which exporter. Since PyTorch 2.9 ``torch.onnx.export`` defaults to ``dynamo=True``, an exporter
built on :func:`torch.export.export` that translates the captured graph with the ``onnxscript``
package; the TorchScript-based one chosen here by ``dynamo=False`` is deprecated (it warns that
it will be removed). The course keeps ``dynamo=False`` while ``onnxscript`` is not among its
pinned requirements: without it the default export stops with an import error. Measured once
(2026-12-05, torch 2.14.1, onnxscript 0.7.2 in a separate environment, 1 CPU thread): the
``dynamo=True`` exporter exported :class:`DeployModel` around the lesson's U-Net with
``dynamic_axes``, and ONNX Runtime matched PyTorch to 3e-8 on 64 x 64, 67 x 69, 97 x 75,
200 x 200 and 5 x 3; it took 9-16 s against 0.4 s for this exporter. The *bare* U-Net exported
by it failed on odd sizes exactly as the traced one does (a Concat of mismatched sizes in ONNX
Runtime): the frozen branch is a property of exporting one example run, whichever exporter. So
switching is one argument, to be made when ``onnxscript`` is pinned and the lessons re-stored.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int
from ..files import atomic_path

#: ONNX opset the course exports (ONNX Runtime 1.18+ runs it)
OPSET = 17
INPUT_NAME, OUTPUT_NAME = "image", "logits"


class DeployModel(nn.Module):
    """``model`` with its input padded to a multiple of ``multiple`` and its logits cropped back.

    Shapes:
        ``(N, C, H, W)`` float -> ``(N, K, H, W)`` float, any ``H, W >= 1``.
    """

    def __init__(self, model: nn.Module, multiple: int = 1) -> None:
        super().__init__()
        check_int(multiple, "multiple")
        self.model, self.multiple = model, multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        m = self.multiple
        pad_h, pad_w = (m - h % m) % m, (m - w % m) % m           # traced as shape arithmetic: stays dynamic
        top, left = pad_h // 2, pad_w // 2
        x = F.pad(x, [left, pad_w - left, top, pad_h - top])     # (N, C, H', W'), H' and W' multiples of m
        logits = self.model(x)                                    # (N, K, H', W')
        return logits[:, :, top:top + h, left:left + w]           # (N, K, H, W)


def down_sampling_factor(model: nn.Module) -> int:
    """The multiple an input side must have: ``2**depth`` for a U-Net (its ``min_size``), else 32."""
    factor = getattr(model, "min_size", None)
    return int(factor) if isinstance(factor, int) and factor > 0 else 32


def deployable(model: nn.Module, multiple: int | None = None) -> DeployModel:
    """Wrap ``model`` (in eval mode) for export; ``multiple`` defaults to :func:`down_sampling_factor`."""
    if isinstance(model, DeployModel):
        return model.eval()
    return DeployModel(model.eval(), down_sampling_factor(model) if multiple is None else multiple).eval()


def _in_channels(model: nn.Module) -> int:
    inner = model.model if isinstance(model, DeployModel) else model
    value = getattr(inner, "in_channels", None)
    if isinstance(value, int):
        return value
    for module in inner.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    raise ValueError("cannot tell the model's input channels; pass in_channels=")


def export_onnx(model: nn.Module, path: str | os.PathLike, *, in_channels: int | None = None,
                sample_size: int = 64, opset: int = OPSET, metadata: dict | None = None) -> Path:
    """Export ``model`` to an ONNX file with dynamic batch, height and width.

    Args:
        model: returns logits ``(N, K, H, W)``; wrapped with :func:`deployable` unless it is a
            :class:`DeployModel` already. Moved to the CPU for the export.
        path: the ``.onnx`` file to write (its folder is created; written atomically).
        in_channels: input channels (default: the model's ``in_channels`` or first convolution's).
        sample_size: side of the example input that is traced.
        opset: ONNX opset version.
        metadata: extra string key/values stored in the model's ``metadata_props``
            (e.g. the class names); ``num_classes``, ``in_channels`` and ``multiple`` are added.

    Returns:
        The path written.
    """
    import onnx

    wrapped = deployable(model).cpu()
    channels = in_channels or _in_channels(wrapped)
    sample = torch.rand(1, channels, sample_size, sample_size)
    with torch.no_grad():
        num_classes = int(wrapped(sample).shape[1])
    path = Path(path)
    axes = {0: "batch", 2: "height", 3: "width"}
    with atomic_path(path) as tmp:
        with warnings.catch_warnings():
            # the model's own shape checks, traced as constants (right for the one graph exported here)
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            # ours: dynamo=False chooses the TorchScript exporter, which torch deprecates (it warns twice: on the
            # call and in its own utils); why the course keeps it: the module docstring
            warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX export",
                                    DeprecationWarning)
            warnings.filterwarnings("ignore", "The feature will be removed", DeprecationWarning, r"torch\.onnx\.")
            torch.onnx.export(wrapped, (sample,), str(tmp), dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes})
        proto = onnx.load(str(tmp))
        props = {"num_classes": num_classes, "in_channels": channels, "multiple": wrapped.multiple,
                 "preprocess": "RGB float32 / 255, (N, C, H, W)", **(metadata or {})}
        for key, value in props.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = str(key), str(value)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return path


class OnnxPredictor:
    """An ONNX Runtime session used like a model: ``predictor(images) -> logits``.

    Args:
        path: an ``.onnx`` file written by :func:`export_onnx`.
        threads: intra-op threads (default: ONNX Runtime's, one per core).
        providers: execution providers (default: CPU).

    Shapes:
        ``(N, C, H, W)`` float tensor or array -> ``(N, K, H, W)`` float32 tensor on the CPU.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None, providers=None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"ONNX model {self.path} does not exist")
        self.session = ort.InferenceSession(str(self.path), options,
                                            providers=providers or ["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = dict(meta)
        self.in_channels = int(meta.get("in_channels", 3))
        self.num_classes = int(meta["num_classes"]) if "num_classes" in meta else None
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, images) -> torch.Tensor:
        if isinstance(images, torch.Tensor):
            images = images.detach().cpu().numpy()
        array = np.ascontiguousarray(images, dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])

    def __repr__(self) -> str:
        return f"OnnxPredictor({str(self.path)!r}, num_classes={self.num_classes})"


def max_logit_difference(model: nn.Module, predictor, sizes, *, batch: int = 1, channels: int | None = None,
                         seed: int = 0) -> dict[tuple[int, int], float]:
    """Max absolute difference between ``deployable(model)`` in PyTorch and ``predictor`` per ``(H, W)``."""
    wrapped = deployable(model).cpu()
    channels = channels or _in_channels(wrapped)
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for h, w in sizes:
        x = torch.rand(batch, channels, h, w, generator=generator)
        with torch.no_grad():
            want = wrapped(x)
        out[(h, w)] = float((predictor(x) - want).abs().max())
    return out
