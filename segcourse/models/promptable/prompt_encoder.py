"""SAM's prompt encoder: random-Fourier positional encoding, point and box embeddings.

A click ``(x, y)`` in pixels becomes a ``D``-vector: its position is encoded with random Fourier features
(Tancik et al. 2020) -- ``[sin(2 pi B p), cos(2 pi B p)]`` with a fixed Gaussian matrix ``B`` of shape
``(2, D/2)`` and ``p`` the point scaled to ``[-1, 1]`` -- and a learned vector is added that says *what*
the point is: positive, negative, padding ("not a point"), or a box's top-left / bottom-right corner.
The same encoding applied to every cell of the image-embedding grid gives the dense positional
encoding the decoder adds to the image tokens, so a point token and the image cell under it share
their position code.

Same parameter names and numbers as ``segment_anything.modeling.prompt_encoder`` (checked in
``tests/models/test_promptable.py`` with copied weights), so a real SAM checkpoint's prompt encoder
loads with ``load_state_dict``. What differs: no mask prompt (``mask_downscaling``): the course's model
is prompted by points and boxes only; SAM feeds the previous low-resolution mask back as a dense
prompt, which helps on later clicks but needs a second training pass per click.

References:
    Kirillov et al., "Segment Anything", ICCV 2023, https://arxiv.org/abs/2304.02643 (Section 3).
    Tancik et al., "Fourier Features Let Networks Learn High Frequency Functions in Low Dimensional
    Domains", NeurIPS 2020, https://arxiv.org/abs/2006.10739.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: point labels, SAM's convention: 1 positive click, 0 negative click, -1 padding (not a point);
#: 2 and 3 are a box's top-left and bottom-right corners.
POSITIVE, NEGATIVE, PADDING = 1, 0, -1


class PositionEmbeddingRandom(nn.Module):
    """Random-Fourier positional encoding of 2-D positions.

    Args:
        num_pos_feats: ``F``, the number of random frequencies; the encoding has ``2F`` channels.
        scale: standard deviation of the Gaussian frequencies (SAM: 1.0).
        generator: optional ``torch.Generator`` for the frequencies (a deterministic model).

    The buffer ``positional_encoding_gaussian_matrix`` float32 ``(2, F)`` is fixed (not trained).
    """

    def __init__(self, num_pos_feats: int = 64, scale: float | None = None, generator: torch.Generator | None = None) -> None:
        super().__init__()
        scale = 1.0 if scale is None or scale <= 0.0 else float(scale)
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats), generator=generator))

    def _pe_encoding(self, coords: torch.Tensor) -> torch.Tensor:
        """``(..., 2)`` float ``(x, y)`` in ``[0, 1]`` -> ``(..., 2F)`` float ``[sin, cos]``."""
        coords = 2 * coords - 1                                           # to [-1, 1]
        coords = coords @ self.positional_encoding_gaussian_matrix        # (..., F)
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """The encoding of every cell centre of an ``(h, w)`` grid: float ``(2F, h, w)``."""
        h, w = size
        device = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)   # (h, w, 2) as (x, y)
        return self._pe_encoding(grid).permute(2, 0, 1)

    def forward_with_coords(self, coords_input: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """Points in pixels ``(B, N, 2)`` float ``(x, y)`` of an image ``(H, W)`` -> ``(B, N, 2F)``."""
        scale = torch.tensor([image_size[1], image_size[0]], dtype=torch.float32, device=coords_input.device)
        return self._pe_encoding(coords_input.to(torch.float32) / scale)


class PromptEncoder(nn.Module):
    """Points and boxes to sparse prompt tokens; the "no mask" dense embedding; the dense positional code.

    Args:
        embed_dim: ``D``, the token width (must be even).
        image_embedding_size: ``(h, w)`` of the image encoder's output grid.
        input_image_size: ``(H, W)`` of the image the points are given in (pixels).
        generator: optional ``torch.Generator`` for the random frequencies.
        scale: standard deviation of the random frequencies (SAM: 1; see :class:`PositionEmbeddingRandom`).

    Shapes:
        points: ``(coords, labels)`` -- float ``(B, N, 2)`` pixel ``(x, y)`` and int ``(B, N)`` in
        {1, 0, -1}; boxes: float ``(B, 4)`` ``[x1, y1, x2, y2]`` pixels.
        Returns ``sparse`` float ``(B, N', D)`` (``N' = N + 1`` when only points are given: SAM pads
        with one "not a point" token; ``+ 2`` per box) and ``dense`` float ``(B, D, h, w)``.
    """

    def __init__(self, embed_dim: int, image_embedding_size: tuple[int, int], input_image_size: tuple[int, int],
                 generator: torch.Generator | None = None, scale: float | None = None) -> None:
        super().__init__()
        if embed_dim % 2:
            raise ValueError(f"embed_dim must be even (half sine, half cosine), got {embed_dim}")
        self.embed_dim = embed_dim
        self.input_image_size = tuple(input_image_size)
        self.image_embedding_size = tuple(image_embedding_size)
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2, scale=scale, generator=generator)
        self.num_point_embeddings = 4                 # negative, positive, box corner 1, box corner 2
        self.point_embeddings = nn.ModuleList([nn.Embedding(1, embed_dim) for _ in range(self.num_point_embeddings)])
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self, image_embedding_size: tuple[int, int] | None = None) -> torch.Tensor:
        """The positional code of the image-embedding grid: float ``(1, D, h, w)`` (``image_embedding_size``
        overrides the constructor's, for a model used at several image sizes)."""
        return self.pe_layer(tuple(image_embedding_size or self.image_embedding_size)).unsqueeze(0)

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool, image_size) -> torch.Tensor:
        points = points.to(torch.float32) + 0.5                            # to the pixel's centre
        if pad:
            points = torch.cat([points, points.new_zeros(points.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, -labels.new_ones(labels.shape[0], 1)], dim=1)
        pe = self.pe_layer.forward_with_coords(points, image_size)              # (B, N, D)
        lab = labels[..., None]
        pe = torch.where(lab == PADDING, torch.zeros_like(pe), pe)
        pe = pe + (lab == PADDING) * self.not_a_point_embed.weight
        pe = pe + (lab == NEGATIVE) * self.point_embeddings[0].weight
        pe = pe + (lab == POSITIVE) * self.point_embeddings[1].weight
        return pe

    def _embed_boxes(self, boxes: torch.Tensor, image_size) -> torch.Tensor:
        coords = (boxes.to(torch.float32) + 0.5).reshape(-1, 2, 2)
        corners = self.pe_layer.forward_with_coords(coords, image_size)
        corner_type = torch.cat([self.point_embeddings[2].weight, self.point_embeddings[3].weight])   # (2, D)
        return corners + corner_type

    def forward(self, points: tuple[torch.Tensor, torch.Tensor] | None, boxes: torch.Tensor | None = None, *,
                input_image_size: tuple[int, int] | None = None,
                image_embedding_size: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse and dense prompt embeddings (see the class); the two sizes override the constructor's."""
        image_size = tuple(input_image_size or self.input_image_size)
        grid = tuple(image_embedding_size or self.image_embedding_size)
        if points is None and boxes is None:
            raise ValueError("give points=(coords, labels) or boxes (B, 4), or both; got neither")
        bs = points[0].shape[0] if points is not None else boxes.shape[0]
        parts = []
        if points is not None:
            coords, labels = points
            if coords.ndim != 3 or coords.shape[-1] != 2 or labels.shape != coords.shape[:2]:
                raise ValueError(f"points must be coords (B, N, 2) and labels (B, N), got {tuple(coords.shape)} and {tuple(labels.shape)}")
            parts.append(self._embed_points(coords, labels, pad=boxes is None, image_size=image_size))
        if boxes is not None:
            parts.append(self._embed_boxes(boxes, image_size))
        sparse = torch.cat(parts, dim=1)
        dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(bs, -1, *grid)
        return sparse, dense
