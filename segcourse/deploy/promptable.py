"""The promptable segmenter's split, deployed: the prompt decoder in ONNX, the image embedding as an input.

An interactive tool runs the image encoder once per image (on a server or a GPU) and the prompt decoder
once per click (in the browser, for SAM: ``segment_anything/utils/onnx.py`` exports exactly this part).
:func:`export_prompt_decoder` writes a graph with inputs ``embedding`` float32 ``(1, C, h, w)`` (``C = model.embedding_channels``),
``points`` float32 ``(1, N, 2)`` pixel ``(x, y)`` and ``labels`` int64 ``(1, N)`` (1 positive, 0
negative, -1 padding), and outputs ``masks`` float32 logits ``(1, K, 4h, 4w)`` (the multi-mask output for
one click, the single-mask output for more, fixed when the graph is traced) and ``iou_pred`` float32
``(1, K)``. The number of points ``N`` is dynamic; the image size is fixed at export, as in SAM's own
ONNX model (whose positional code is that of the 64 x 64 grid of a 1024-px input): the grid's positional
code and the pixel scale of the points are traced as constants. :func:`click_vs_encoder_latency` times one decoder call
against one encoder pass.

The TorchScript-based exporter is used, as in :mod:`segcourse.deploy.export`.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..files import atomic_path
from ..models.promptable import STRIDE, PromptableSegmenter
from .export import OPSET

INPUTS, OUTPUTS = ("embedding", "points", "labels"), ("masks", "iou_pred")


class PromptDecoder(nn.Module):
    """The per-click half of a :class:`PromptableSegmenter`: ``(embedding, points, labels) -> (masks, iou_pred)``.

    With one point (plus SAM's padding token) the three multi-mask outputs are returned; with more,
    the single-mask output (``K = 1``) -- SAM's rule, decided by the number of points.
    """

    def __init__(self, model: PromptableSegmenter) -> None:
        super().__init__()
        self.model = model

    def forward(self, embedding: torch.Tensor, points: torch.Tensor, labels: torch.Tensor):
        return self.model.decode(embedding, points, labels, multimask=points.shape[1] == 1)


def export_prompt_decoder(model: PromptableSegmenter, path: str | os.PathLike, *, image_size: int = 64, clicks: int = 1,
                          opset: int = OPSET) -> Path:
    """Write the prompt decoder of ``model`` for ``image_size x image_size`` images to ``path`` (ONNX, atomic).

    The number of points decides multi- versus single-mask output at trace time, so export one graph per
    case: ``clicks=1`` (the first click, three masks) and ``clicks=2`` (any later click count, one mask).
    """
    import onnx

    decoder = PromptDecoder(model).cpu().eval()
    d = model.embedding_channels
    if image_size % STRIDE:
        raise ValueError(f"image_size must be divisible by {STRIDE}, got {image_size}")
    grid = image_size // STRIDE
    sample = (torch.randn(1, d, grid, grid), torch.rand(1, clicks, 2) * image_size, torch.ones(1, clicks, dtype=torch.int64))
    path = Path(path)
    axes = {"points": {1: "n"}, "labels": {1: "n"}}
    with atomic_path(path) as tmp:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX export", DeprecationWarning)
            warnings.filterwarnings("ignore", "The feature will be removed", DeprecationWarning, r"torch\.onnx\.")
            torch.onnx.export(decoder, sample, str(tmp), dynamo=False, opset_version=opset, input_names=list(INPUTS),
                              output_names=list(OUTPUTS), dynamic_axes=axes)
        onnx.checker.check_model(onnx.load(str(tmp)))
    return path


class OnnxPromptDecoder:
    """An ONNX Runtime session of :func:`export_prompt_decoder`'s graph: ``decoder(embedding, points, labels)``
    with tensors or arrays, returning ``(masks, iou_pred)`` float32 tensors."""

    def __init__(self, path: str | os.PathLike, *, threads: int | None = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        if not Path(path).exists():
            raise FileNotFoundError(f"ONNX prompt decoder {path} does not exist")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, embedding, points, labels):
        def arr(x, dtype):
            x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x
            return np.ascontiguousarray(x, dtype=dtype)

        feed = {"embedding": arr(embedding, np.float32), "points": arr(points, np.float32), "labels": arr(labels, np.int64)}
        masks, iou = self.session.run(None, feed)
        return torch.from_numpy(masks), torch.from_numpy(iou)


@torch.no_grad()
def click_vs_encoder_latency(model: PromptableSegmenter, size: int, *, repeats: int = 5, onnx_decoder=None) -> dict:
    """Median seconds of one encoder pass and one decoder call (one click) on a ``size x size`` image.

    Returns ``{"size", "encoder_s", "decoder_s", "ratio"}`` (and ``"onnx_decoder_s"`` with ``onnx_decoder``).
    """
    model = model.eval()
    image = torch.rand(1, 3, size, size)
    points, labels = torch.tensor([[[size / 2, size / 2]]]), torch.ones(1, 1, dtype=torch.int64)

    def median(fn):
        fn()                                                         # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return float(np.median(times))

    embedding = model.embed(image)
    out = {"size": size, "encoder_s": median(lambda: model.embed(image)),
           "decoder_s": median(lambda: model.decode(embedding, points, labels))}
    out["ratio"] = out["encoder_s"] / out["decoder_s"]
    if onnx_decoder is not None:
        out["onnx_decoder_s"] = median(lambda: onnx_decoder(embedding, points, labels))
    return out
