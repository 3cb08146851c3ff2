"""SAM's mask decoder: output tokens, the two-way transformer, hypernetwork masks and the IoU head.

The decoder prepends learned *output tokens* to the prompt tokens -- one IoU token and ``K + 1`` mask
tokens (``K = 3`` masks for an ambiguous prompt: whole, part, subpart; one more for an unambiguous
prompt) -- and runs the two-way transformer against the image tokens. The updated image tokens are
upsampled 4x by two transposed convolutions; each mask token goes through its own small MLP (a
*hypernetwork*) to a vector of ``D/8`` weights, and the mask is that vector's dot product with every
upsampled pixel. The IoU token goes through an MLP to ``K + 1`` predicted IoUs: the model's own guess of
each mask's quality, used to pick one when several are returned.

Same parameter names and numbers as ``segment_anything.modeling.mask_decoder`` (checked with copied
weights in ``tests/models/test_promptable.py``). One difference, for training: SAM's ``predict_masks``
``repeat_interleave``\\ s the image embedding once per prompt set (it decodes many prompts of one image);
here an embedding batch of ``B`` is paired one-to-one with ``B`` prompt sets (``B`` images, one object
each), and a batch of one is broadcast to every prompt set as in SAM.

Reference: Kirillov et al., "Segment Anything", ICCV 2023, https://arxiv.org/abs/2304.02643 (Section 3, Appendix A).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a float ``(B, C, H, W)`` map (SAM's ``common.LayerNorm2d``)."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them: float ``(..., in) -> (..., out)``."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        self.num_layers = num_layers
        dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip(dims, dims[1:] + [output_dim]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x


class MaskDecoder(nn.Module):
    """Masks and predicted IoUs from an image embedding and prompt tokens.

    Args:
        transformer_dim: ``D`` (divisible by 8).
        transformer: a :class:`~segcourse.models.promptable.TwoWayTransformer` of width ``D``.
        num_multimask_outputs: ``K`` masks for an ambiguous prompt (SAM: 3).
        activation: of the upscaling (SAM: GELU).
        iou_head_depth, iou_head_hidden_dim: the IoU MLP.

    Shapes:
        ``image_embeddings`` float ``(B or 1, D, h, w)``; ``image_pe`` float ``(1, D, h, w)``;
        ``sparse_prompt_embeddings`` float ``(B, N, D)``; ``dense_prompt_embeddings`` float ``(B, D, h, w)``.
        Returns ``masks`` float logits ``(B, K, 4h, 4w)`` with ``multimask_output`` (else ``(B, 1, 4h, 4w)``,
        the single-mask token) and ``iou_pred`` float ``(B, K)`` (else ``(B, 1)``).
    """

    def __init__(self, *, transformer_dim: int, transformer: nn.Module, num_multimask_outputs: int = 3,
                 activation: type[nn.Module] = nn.GELU, iou_head_depth: int = 3, iou_head_hidden_dim: int = 256) -> None:
        super().__init__()
        if transformer_dim % 8:
            raise ValueError(f"transformer_dim must be divisible by 8 (the upscaled width is D/8), got {transformer_dim}")
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            activation(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            activation(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3) for _ in range(self.num_mask_tokens))
        self.iou_prediction_head = MLP(transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth)

    def forward(self, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings, multimask_output: bool):
        masks, iou_pred = self.predict_masks(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings)
        keep = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, keep], iou_pred[:, keep]

    def predict_masks(self, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings):
        """All ``K + 1`` masks ``(B, K+1, 4h, 4w)`` and IoUs ``(B, K+1)``; index 0 is the single-mask output."""
        b = sparse_prompt_embeddings.shape[0]
        if image_embeddings.shape[0] not in (1, b):
            raise ValueError(f"image_embeddings has batch {image_embeddings.shape[0]}; expected 1 or the prompts' batch {b}")
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(b, -1, -1), sparse_prompt_embeddings], dim=1)  # (B, 1+K+1+N, D)
        src = image_embeddings.expand(b, -1, -1, -1) + dense_prompt_embeddings                                # (B, D, h, w)
        pos_src = image_pe.expand(b, -1, -1, -1)
        _, c, h, w = src.shape
        hs, src = self.transformer(src, pos_src, tokens)
        iou_token_out = hs[:, 0]
        mask_tokens_out = hs[:, 1:1 + self.num_mask_tokens]                                                   # (B, K+1, D)
        upscaled = self.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))                            # (B, D/8, 4h, 4w)
        hyper_in = torch.stack([mlp(mask_tokens_out[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1)
        _, c8, hh, ww = upscaled.shape
        masks = (hyper_in @ upscaled.reshape(b, c8, hh * ww)).reshape(b, -1, hh, ww)
        return masks, self.iou_prediction_head(iou_token_out)
