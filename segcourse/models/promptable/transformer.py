"""SAM's two-way transformer: prompt tokens and image tokens attend to each other.

Each :class:`TwoWayAttentionBlock` runs four steps on ``queries`` (the output and prompt tokens, few) and
``keys`` (the image tokens, ``h*w`` of them): (1) self-attention of the tokens, (2) tokens attend to the
image, (3) an MLP on the tokens, (4) the image attends to the tokens -- so the image embedding is
updated by the prompt too (the "two-way" part). Positional codes are re-added before every attention
(the points' to the queries, the grid's to the keys); cross-attention projects to ``D / downsample``
channels to keep it cheap. A last token-to-image attention and LayerNorm close the stack.

Same parameter names and numbers as ``segment_anything.modeling.transformer`` (checked with copied weights
in ``tests/models/test_promptable.py``). Attention is written out (``softmax(q k^T / sqrt(d)) v``) rather than
``F.scaled_dot_product_attention`` so that it reads as the formula and exports to ONNX everywhere.

Reference: Kirillov et al., "Segment Anything", ICCV 2023, https://arxiv.org/abs/2304.02643 (Appendix A).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Attention(nn.Module):
    """Multi-head attention with an optional down-projection of the internal width.

    Args:
        embedding_dim: ``D``, width of inputs and output.
        num_heads: heads; must divide ``D // downsample_rate``.
        downsample_rate: the internal width is ``D // downsample_rate``.

    Shapes: ``q`` float ``(B, Nq, D)``, ``k`` and ``v`` float ``(B, Nk, D)`` -> float ``(B, Nq, D)``.
    """

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads:
            raise ValueError(f"num_heads ({num_heads}) must divide the internal width {embedding_dim}//{downsample_rate} = {self.internal_dim}")
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)   # (B, nh, N, c/nh)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)   # (B, nh, Nq, Nk)
        out = (attn @ v).transpose(1, 2)                                                  # (B, Nq, nh, c/nh)
        return self.out_proj(out.reshape(out.shape[0], out.shape[1], -1))


class MLPBlock(nn.Module):
    """``Linear -> activation -> Linear``, float ``(..., D) -> (..., D)`` (SAM's ``common.MLPBlock``)."""

    def __init__(self, embedding_dim: int, mlp_dim: int, act: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.lin1 = nn.Linear(embedding_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embedding_dim)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.act(self.lin1(x)))


class TwoWayAttentionBlock(nn.Module):
    """Self-attention, token-to-image, MLP, image-to-token; post-norm residuals.

    Args:
        embedding_dim, num_heads, mlp_dim: widths; activation: of the MLP (SAM: ReLU).
        attention_downsample_rate: for the two cross-attentions.
        skip_first_layer_pe: the first block's self-attention sees the tokens without their positional
            code added and without a residual (SAM's first layer: the tokens *are* the prompt codes).

    Shapes: ``queries`` ``(B, Nq, D)``, ``keys`` ``(B, HW, D)``, ``query_pe`` like queries, ``key_pe`` like
    keys; returns updated ``(queries, keys)``, all float.
    """

    def __init__(self, embedding_dim: int, num_heads: int, mlp_dim: int = 2048, activation: type[nn.Module] = nn.ReLU,
                 attention_downsample_rate: int = 2, skip_first_layer_pe: bool = False) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim, activation)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries, keys, query_pe, key_pe):
        if self.skip_first_layer_pe:
            queries = self.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q=q, k=q, v=queries)
        queries = self.norm1(queries)
        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q=q, k=k, v=keys))
        queries = self.norm3(queries + self.mlp(queries))
        q, k = queries + query_pe, keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(q=k, k=q, v=queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """``depth`` two-way blocks, then a final token-to-image attention and LayerNorm.

    Shapes: ``image_embedding`` float ``(B, D, h, w)``, ``image_pe`` float ``(B, D, h, w)``,
    ``point_embedding`` float ``(B, N, D)`` -> ``(queries (B, N, D), keys (B, h*w, D))``.
    """

    def __init__(self, depth: int, embedding_dim: int, num_heads: int, mlp_dim: int, activation: type[nn.Module] = nn.ReLU,
                 attention_downsample_rate: int = 2) -> None:
        super().__init__()
        self.depth, self.embedding_dim, self.num_heads, self.mlp_dim = depth, embedding_dim, num_heads, mlp_dim
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(embedding_dim, num_heads, mlp_dim, activation, attention_downsample_rate, skip_first_layer_pe=(i == 0))
            for i in range(depth))
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(self, image_embedding, image_pe, point_embedding):
        keys = image_embedding.flatten(2).transpose(1, 2)      # (B, hw, D)
        key_pe = image_pe.flatten(2).transpose(1, 2)
        queries = point_embedding
        for layer in self.layers:
            queries, keys = layer(queries=queries, keys=keys, query_pe=point_embedding, key_pe=key_pe)
        q, k = queries + point_embedding, keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q=q, k=k, v=keys))
        return queries, keys
