"""A small Mask2Former: backbone -> pixel decoder -> masked-attention transformer decoder -> class and mask heads.

* **backbone**: the course's :func:`~segcourse.models.backbones.resnet_tiny` (features at strides 2..32);
* **pixel decoder**: a simple FPN (:class:`FPNPixelDecoder`). The paper uses six multi-scale deformable
  attention (MSDeformAttn) layers over the strides 8, 16, 32 instead: each pixel attends to a few
  *learned sampling offsets* on every level, so the levels exchange information at a cost linear in the
  number of pixels. An FPN's top-down additions do the same job with convolutions, less well;
* **transformer decoder** (:class:`TransformerDecoderLayer`): ``Q`` learnable query features and
  positional embeddings; each layer does masked cross-attention to one feature level (levels fed
  round-robin, coarse to fine), then self-attention between queries, then an FFN (post-norm, as the paper);
* **heads** (:meth:`Mask2Former.predict_heads`): a linear class head over ``num_classes + 1`` ("no object"
  last) and an MLP mask embedding dotted with the per-pixel embeddings: ``einsum("bqc,bchw->bqhw")``.
  The heads run on the initial queries and after every layer, so ``L`` layers give ``L + 1``
  predictions: the last is the output, the others feed the auxiliary losses and the attention masks.

References:
    Cheng, Misra, Schwing, Kirillov, Girdhar, "Masked-attention Mask Transformer for Universal Image
    Segmentation", CVPR 2022, https://arxiv.org/abs/2112.01527.
    Lin et al., "Feature Pyramid Networks for Object Detection", CVPR 2017, https://arxiv.org/abs/1612.03144.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import resnet_tiny
from .attention import MaskedCrossAttention, attention_mask_from_logits

__all__ = ["Mask2FormerConfig", "Mask2Former", "FPNPixelDecoder", "TransformerDecoderLayer", "mask2former",
           "sine_position_encoding"]


@dataclass
class Mask2FormerConfig:
    """Sizes of a :class:`Mask2Former` (defaults: about 0.6 M parameters, for a CPU)."""

    num_classes: int = 7
    width: int = 16              # backbone width (resnet_tiny: 16 -> 16, 32, 64, 128 channels)
    dim: int = 64                # hidden size D of the pixel decoder and the transformer decoder
    num_queries: int = 16        # Q
    num_layers: int = 6          # L decoder layers (round-robin over the attended levels)
    heads: int = 4
    ffn: int = 128
    levels: tuple[int, ...] = (16, 8, 4)   # strides the decoder attends to, coarse to fine
    mask_stride: int = 2                   # stride of the per-pixel embeddings the masks are predicted on
    masked_attention: bool = True


def sine_position_encoding(h: int, w: int, dim: int, device=None) -> torch.Tensor:
    """DETR's 2D sine positional encoding, ``(h*w, dim)``: half the channels encode y, half x.

    Conventions (tested against ``transformers``' ``Mask2FormerSinePositionEmbedding(normalize=True)``): pixel
    ``i`` sits at its centre, ``(i + 0.5) / h · 2π`` (transformers: ``(i + 1) / h · 2π``), and each half is a
    ``[sin | cos]`` block (transformers interleaves ``sin, cos`` per frequency); the frequencies are the same.
    """
    if dim % 4:
        raise ValueError(f"dim must be divisible by 4, got {dim}")
    n = dim // 4
    freq = 10000 ** (-torch.arange(n, device=device, dtype=torch.float32) / n)                  # (n,)
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h * 2 * math.pi
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w * 2 * math.pi
    ey = torch.cat([(ys[:, None] * freq).sin(), (ys[:, None] * freq).cos()], 1)                # (h, 2n)
    ex = torch.cat([(xs[:, None] * freq).sin(), (xs[:, None] * freq).cos()], 1)                # (w, 2n)
    return torch.cat([ey[:, None].expand(h, w, 2 * n), ex[None].expand(h, w, 2 * n)], -1).reshape(h * w, dim)


class FPNPixelDecoder(nn.Module):
    """Top-down FPN over backbone features: one ``dim``-channel map per stride, finest = the mask features.

    Shapes:
        ``forward(features)``: list of ``(B, C_i, H/s_i, W/s_i)`` fine to coarse -> dict stride ->
        ``(B, dim, H/s, W/s)`` for every backbone stride (the coarsest has no lateral from above).
    """

    def __init__(self, in_channels: tuple[int, ...], dim: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, dim, 1) for c in in_channels)
        self.output = nn.ModuleList(nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1, bias=False), nn.GroupNorm(8, dim),
                                                  nn.ReLU(inplace=True)) for _ in in_channels)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        outs: list[torch.Tensor] = [None] * len(features)  # type: ignore[list-item]
        top = None
        for i in range(len(features) - 1, -1, -1):            # coarse to fine
            x = self.lateral[i](features[i])                  # (B, D, H/s_i, W/s_i)
            if top is not None:
                x = x + F.interpolate(top, size=x.shape[-2:], mode="bilinear", align_corners=False)
            top = x
            outs[i] = self.output[i](x)
        return outs


class TransformerDecoderLayer(nn.Module):
    """Masked cross-attention -> self-attention -> FFN, each with a residual and a LayerNorm after it.

    Shapes:
        ``forward(queries (B, Q, D), query_pos (B, Q, D), memory (B, K, D), memory_pos (B, K, D),
        blocked (B, Q, K) bool | None)`` -> ``(B, Q, D)``.

    The architecture of ``transformers``' ``Mask2FormerMaskedAttentionDecoderLayer`` with ``pre_norm=False``:
    with the weights copied, both give the same output (tested, as is :class:`Mask2Former`'s decoder loop
    against ``Mask2FormerMaskedAttentionDecoder``).
    """

    def __init__(self, dim: int, heads: int, ffn: int):
        super().__init__()
        self.cross = MaskedCrossAttention(dim, heads)
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.ReLU(inplace=True), nn.Linear(ffn, dim))
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, queries, query_pos, memory, memory_pos, blocked=None):
        queries = self.norm1(queries + self.cross(queries, memory, query_pos, memory_pos, blocked))
        q = k = queries + query_pos
        queries = self.norm2(queries + self.self_attn(q, k, queries, need_weights=False)[0])
        return self.norm3(queries + self.ffn(queries))


class Mask2Former(nn.Module):
    """A small Mask2Former for ``(B, 3, H, W)`` images (``H, W`` multiples of 32 keep the levels aligned).

    Shapes:
        ``forward(images (B, 3, H, W) float)`` -> dict:

        * ``"class_logits"`` ``(B, Q, num_classes + 1)`` float ("no object" is the last class);
        * ``"mask_logits"`` ``(B, Q, H/mask_stride, W/mask_stride)`` float;
        * ``"aux"``: list of ``L`` dicts with the same two keys, the predictions before each layer
          (from the initial queries and after layers 1..L-1), for the auxiliary losses.
    """

    def __init__(self, config: Mask2FormerConfig | None = None):
        super().__init__()
        cfg = self.config = config or Mask2FormerConfig()
        self.backbone = resnet_tiny(width=cfg.width, output_stride=32)
        for s in (*cfg.levels, cfg.mask_stride):
            if s not in self.backbone.strides:
                raise ValueError(f"stride {s} is not one of the backbone's strides {self.backbone.strides}")
        self.pixel_decoder = FPNPixelDecoder(self.backbone.out_channels, cfg.dim)
        self.level_embed = nn.Parameter(torch.zeros(len(cfg.levels), cfg.dim))
        self.query_feat = nn.Embedding(cfg.num_queries, cfg.dim)       # learnable query features
        self.query_pos = nn.Embedding(cfg.num_queries, cfg.dim)        # learnable query positions
        self.layers = nn.ModuleList(TransformerDecoderLayer(cfg.dim, cfg.heads, cfg.ffn) for _ in range(cfg.num_layers))
        self.decoder_norm = nn.LayerNorm(cfg.dim)
        self.class_head = nn.Linear(cfg.dim, cfg.num_classes + 1)
        self.mask_embed = nn.Sequential(nn.Linear(cfg.dim, cfg.dim), nn.ReLU(inplace=True), nn.Linear(cfg.dim, cfg.dim),
                                        nn.ReLU(inplace=True), nn.Linear(cfg.dim, cfg.dim))
        self.last_blocked: list[torch.Tensor] = []   # the attention masks of the last forward, per layer

    def predict_heads(self, queries: torch.Tensor, mask_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits ``(B, Q, C+1)`` and mask logits ``(B, Q, h, w)`` from queries ``(B, Q, D)``."""
        q = self.decoder_norm(queries)
        return self.class_head(q), torch.einsum("bqc,bchw->bqhw", self.mask_embed(q), mask_features)

    def forward(self, images: torch.Tensor) -> dict:
        cfg = self.config
        feats = self.backbone(images)                                   # fine to coarse, strides 2..32
        pyramid = dict(zip(self.backbone.strides, self.pixel_decoder(feats)))
        mask_features = pyramid[cfg.mask_stride]                        # (B, D, H/ms, W/ms)
        memories, memory_pos, sizes = [], [], []
        for i, s in enumerate(cfg.levels):
            f = pyramid[s]                                              # (B, D, h_s, w_s)
            h, w = f.shape[-2:]
            memories.append(f.flatten(2).transpose(1, 2) + self.level_embed[i])   # (B, h_s*w_s, D)
            memory_pos.append(sine_position_encoding(h, w, cfg.dim, f.device)[None].expand(f.shape[0], -1, -1))
            sizes.append((h, w))
        b = images.shape[0]
        queries = self.query_feat.weight[None].expand(b, -1, -1)        # (B, Q, D)
        query_pos = self.query_pos.weight[None].expand(b, -1, -1)       # (B, Q, D)
        class_logits, mask_logits = self.predict_heads(queries, mask_features)
        aux = []
        self.last_blocked = []
        for i, layer in enumerate(self.layers):
            level = i % len(cfg.levels)                                 # round-robin: coarse, middle, fine, ...
            blocked = None
            if cfg.masked_attention:
                blocked = attention_mask_from_logits(mask_logits.detach(), sizes[level])   # (B, Q, h*w)
                self.last_blocked.append(blocked)
            aux.append({"class_logits": class_logits, "mask_logits": mask_logits})
            queries = layer(queries, query_pos, memories[level], memory_pos[level], blocked)
            class_logits, mask_logits = self.predict_heads(queries, mask_features)
        return {"class_logits": class_logits, "mask_logits": mask_logits, "aux": aux}


def mask2former(num_classes: int = 7, **kwargs) -> Mask2Former:
    """Build a :class:`Mask2Former`; keyword arguments are :class:`Mask2FormerConfig` fields."""
    return Mask2Former(Mask2FormerConfig(num_classes=num_classes, **kwargs))
