"""Masked attention: cross-attention restricted to the foreground of each query's predicted mask.

Mask2Former's decoder layers attend from the ``Q`` queries to the ``HW`` pixels of one feature level.
Plain cross-attention lets every query look at every pixel; **masked attention** lets query ``q``
look only at the pixels where the previous layer's mask prediction for ``q`` is foreground
(``sigmoid(mask_logit) >= 0.5``). When that mask is empty, every key of the row is blocked and the
softmax divides 0 by 0: NaN. Mask2Former then lets that query attend everywhere (its reference code:
``attn_mask[torch.where(attn_mask.sum(-1) == attn_mask.shape[-1])] = False``).

References:
    Cheng, Misra, Schwing, Kirillov, Girdhar, "Masked-attention Mask Transformer for Universal Image
    Segmentation", CVPR 2022, https://arxiv.org/abs/2112.01527 (section 3.2.1, eq. 2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["attention_mask_from_logits", "masked_attention", "MaskedCrossAttention"]


def attention_mask_from_logits(mask_logits: torch.Tensor, size: tuple[int, int], *, threshold: float = 0.5,
                               empty_fallback: bool = True) -> torch.Tensor:
    """The boolean mask of blocked keys for masked attention.

    Args:
        mask_logits: ``(B, Q, h, w)`` float, the previous layer's mask logits.
        size: ``(H, W)`` of the feature level the next layer attends to (the logits are resized
            bilinearly, ``align_corners=False``, as the reference code does).
        threshold: a key is kept when ``sigmoid(logit) >= threshold``.
        empty_fallback: a query whose mask keeps no key attends everywhere (Mask2Former's rule);
            ``False`` leaves such rows fully blocked (their attention is then NaN).

    Returns:
        ``(B, Q, H*W)`` bool, ``True`` = blocked (PyTorch's ``attn_mask`` convention).
    """
    if mask_logits.ndim != 4:
        raise ValueError(f"mask_logits must be (B, Q, h, w), got {tuple(mask_logits.shape)}")
    resized = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False)  # (B, Q, H, W)
    blocked = (resized.sigmoid() < threshold).flatten(2)                                    # (B, Q, HW)
    if empty_fallback:
        empty = blocked.all(-1, keepdim=True)                                               # (B, Q, 1)
        blocked = blocked & ~empty
    return blocked


def masked_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     blocked: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention with blocked keys, written out.

    Args:
        query: ``(B, h, Q, d)``; key, value: ``(B, h, K, d)``.
        blocked: ``(B, Q, K)`` or ``(B, h, Q, K)`` bool, ``True`` = the query may not look at the key.

    Returns:
        ``(out (B, h, Q, d), weights (B, h, Q, K))``; a fully blocked row gives NaN (0 / 0).
    """
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])  # (B, h, Q, K)
    if blocked is not None:
        if blocked.ndim == 3:
            blocked = blocked[:, None]                                       # (B, 1, Q, K)
        scores = scores.masked_fill(blocked, float("-inf"))
    weights = scores.softmax(-1)                                             # (B, h, Q, K)
    return weights @ value, weights


class MaskedCrossAttention(nn.Module):
    """Multi-head cross-attention from queries to pixels, with an optional mask of blocked keys.

    Shapes:
        ``forward(queries (B, Q, D), memory (B, K, D), query_pos (B, Q, D), memory_pos (B, K, D),
        blocked (B, Q, K) bool | None)`` -> ``(B, Q, D)``; the attention weights of the last call,
        averaged over heads, are kept in ``self.last_weights`` ``(B, Q, K)`` (for pictures).
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.last_weights: torch.Tensor | None = None

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)    # (B, h, N, d/h)

    def forward(self, queries, memory, query_pos, memory_pos, blocked=None):
        q = self._split(self.q(queries + query_pos))
        k = self._split(self.k(memory + memory_pos))
        v = self._split(self.v(memory))
        out, weights = masked_attention(q, k, v, blocked)                    # (B, h, Q, d/h)
        self.last_weights = weights.detach().mean(1)                         # (B, Q, K)
        b, _, n, _ = out.shape
        return self.out(out.transpose(1, 2).reshape(b, n, -1))               # (B, Q, D)
