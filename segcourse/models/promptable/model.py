"""A tiny Segment-Anything-style model: an image encoder run once, a prompt encoder and a light mask decoder.

``PromptableSegmenter`` = :class:`ImageEncoder` (a small dilated CNN, stride 4, ending like SAM's neck in a
1x1 convolution and a :class:`LayerNorm2d`) + SAM's :class:`PromptEncoder` + SAM's :class:`MaskDecoder`
over a :class:`TwoWayTransformer`. :meth:`PromptableSegmenter.embed` is the expensive part, run once per
image; :meth:`PromptableSegmenter.decode` is run once per click on the cached embedding -- the split that
makes SAM interactive in a browser.

What differs from SAM (ViT-H image encoder of 632 M parameters at 1024 px, ``D = 256``, stride 16) and why:

* the image encoder is a CNN of about 0.1 M parameters at stride 4 (so at 64 px the grid is 16 x 16, and
  the decoder's 4x upscaling returns masks at full resolution): it trains from scratch on a CPU in
  minutes, where a ViT needs large data and MAE pre-training;
* ``D = 64``, two two-way blocks (SAM: 256, two), an MLP of 256 (SAM: 2048);
* no mask prompt: the previous mask is not fed back (SAM does, and trains on 11 rounds of clicks per
  sample); the clicks alone carry the correction;
* the clicks also enter as a **dense** prompt (``click_maps=True``): two maps (positive, negative) with a
  Gaussian bump of ``click_radius`` pixels at each click, downscaled 4x by the same small convolution stack
  SAM uses for its mask prompt and added to the image embedding (as SAM adds the mask prompt's). With
  the sparse tokens alone a model of this size, trained for minutes, learned to segment *every* nucleus
  whatever the click (measured: the training loss stayed on that plateau for 200+ steps); the dense
  click maps give it the click's neighbourhood directly (RITM's click encoding, Sofiiuk et al. 2022).
  The decoder stays light and the encoder still runs once per image;
* a **full-resolution boundary refiner** (``refine_width > 0``): SAM returns masks at stride 4 and upsamples
  them; here the objects are nuclei of ~15 pixels, where a mask right everywhere but one pixel off its
  boundary has an IoU near 0.8 (``metrics.interactive.ring_iou``), so NoC@85/90 need pixel-exact edges.
  :class:`BoundaryRefiner` computes full-resolution image features once, with the embedding (packed into
  it by pixel-unshuffle, so the embedding stays one tensor), and per click adds to each mask's logits a
  correction from those features, the logits and sharp click maps -- the idea of HQ-SAM's early high-resolution
  features (Ke et al. 2023) and of FocalClick's refiner (Chen et al. 2022), in three small convolutions.
  Measured on ``cells`` with the same training: NoC@85 from about 7 clicks without it to under 4 with it;
* images are given in ``[0, 1]``, normalised inside with the ImageNet mean and std, at any size divisible
  by 4 (SAM resizes and pads to 1024 x 1024).

References:
    Kirillov et al., "Segment Anything", ICCV 2023, https://arxiv.org/abs/2304.02643.
    Ke et al., "Segment Anything in High Quality" (HQ-SAM), NeurIPS 2023, https://arxiv.org/abs/2306.01567.
    Chen et al., "FocalClick: Towards Practical Interactive Image Segmentation", CVPR 2022, https://arxiv.org/abs/2204.02574.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .mask_decoder import LayerNorm2d, MaskDecoder
from .prompt_encoder import PromptEncoder
from .transformer import TwoWayTransformer

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
STRIDE = 4


@dataclass(frozen=True)
class PromptableConfig:
    """Sizes of :class:`PromptableSegmenter`; the defaults are the course's 0.3 M-parameter model."""

    embed_dim: int = 64            # D, the token width
    encoder_width: int = 48        # channels inside the image encoder
    encoder_dilations: tuple[int, ...] = (1, 2, 4, 8, 1)
    depth: int = 2                 # two-way blocks
    num_heads: int = 4
    mlp_dim: int = 256
    num_multimask_outputs: int = 3
    iou_head_hidden_dim: int = 64
    pe_seed: int = 0               # the random Fourier frequencies
    pe_scale: float = 1.0          # their standard deviation (SAM: 1)
    click_maps: bool = True        # the clicks as a dense prompt too (see the module docstring)
    click_radius: float = 3.0      # pixels
    mask_feedback: bool = False    # the previous mask as a third dense-prompt channel (SAM's mask prompt)
    refine_width: int = 8          # channels of the full-resolution boundary refiner (0: none, SAM's plain output)
    refine_click_radius: float = 1.5   # pixels: the refiner's own, sharper click maps


class _Residual(nn.Module):
    def __init__(self, width: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation, bias=False)
        self.norm = nn.BatchNorm2d(width)

    def forward(self, x):
        return torch.relu(x + self.norm(self.conv(x)))


class ImageEncoder(nn.Module):
    """Image float ``(B, 3, H, W)`` in ``[0, 1]`` (``H, W`` divisible by 4) -> embedding float ``(B, D, H/4, W/4)``.

    Two stride-2 convolutions, residual 3x3 convolutions with growing dilation (a receptive field that
    covers a whole cell at 64 px), then SAM's neck: a 1x1 convolution to ``D`` and a channel LayerNorm.
    """

    def __init__(self, embed_dim: int = 64, width: int = 48, dilations: tuple[int, ...] = (1, 2, 4, 8, 1)) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.stem = nn.Sequential(
            nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(),
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.blocks = nn.Sequential(*[_Residual(width, d) for d in dilations])
        self.neck = nn.Sequential(nn.Conv2d(width, embed_dim, 1), LayerNorm2d(embed_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-1] % STRIDE or images.shape[-2] % STRIDE:
            raise ValueError(f"images must be float (B, 3, H, W) with H and W divisible by {STRIDE}, got {tuple(images.shape)}")
        return self.neck(self.blocks(self.stem(self.normalise(images))))

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """``[0, 1]`` images -> ImageNet-normalised ones (the encoder's input; also the refiner's)."""
        return (images - self.mean) / self.std


def gaussian_click_maps(points: torch.Tensor, labels: torch.Tensor, size: tuple[int, int], radius: float) -> torch.Tensor:
    """Positive and negative click maps float ``(B, 2, H, W)``: at each pixel the largest Gaussian bump
    ``exp(-d^2 / (2 radius^2))`` of the clicks of that kind (``points`` float ``(B, N, 2)`` ``(x, y)``,
    ``labels`` int64 ``(B, N)``: 1 positive, 0 negative, -1 padding -- in neither map)."""
    h, w = size
    ys = torch.arange(h, dtype=torch.float32, device=points.device).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=torch.float32, device=points.device).view(1, 1, 1, w)
    px, py = points[..., 0, None, None], points[..., 1, None, None]                # (B, N, 1, 1)
    bumps = torch.exp(-((xs - px) ** 2 + (ys - py) ** 2) / (2 * radius ** 2))      # (B, N, H, W)
    pos = (bumps * (labels == 1)[..., None, None]).amax(dim=1)
    neg = (bumps * (labels == 0)[..., None, None]).amax(dim=1)
    return torch.stack([pos, neg], dim=1)


class BoundaryRefiner(nn.Module):
    """A full-resolution correction of the decoder's mask logits (see the module docstring).

    :meth:`features`: image float ``(B, 3, H, W)`` (normalised) -> ``(B, width, H, W)``, run once per image;
    :meth:`forward`: ``features (B, width, H, W)``, ``masks`` logits ``(B, K, H, W)``, ``click_maps``
    ``(B, 2, H, W)`` -> refined logits ``(B, K, H, W)``. The last convolution starts at zero, so an
    untrained refiner returns the decoder's masks unchanged.
    """

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.image = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.GELU(), nn.Conv2d(width, width, 3, padding=1))
        self.head = nn.Sequential(nn.Conv2d(width + 1 + 2, width, 3, padding=1), nn.GELU(),
                                  nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.GELU(), nn.Conv2d(width, 1, 1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def features(self, normalised_images: torch.Tensor) -> torch.Tensor:
        return self.image(normalised_images)

    def forward(self, features: torch.Tensor, masks: torch.Tensor, click_maps: torch.Tensor) -> torch.Tensor:
        b, k, h, w = masks.shape
        x = torch.cat([features[:, None].expand(b, k, *features.shape[1:]), masks[:, :, None],
                       click_maps[:, None].expand(b, k, *click_maps.shape[1:])], dim=2)
        return masks + self.head(x.reshape(b * k, -1, h, w)).reshape(b, k, h, w)


class PromptableSegmenter(nn.Module):
    """Image encoder + prompt encoder + mask decoder, with the encoder split from the per-click decoder.

    Shapes:
        ``images`` float ``(B, 3, H, W)`` in ``[0, 1]``; ``points`` float ``(B, N, 2)`` pixel ``(x, y)``
        (column, row); ``labels`` int64 ``(B, N)``: 1 positive, 0 negative, -1 padding; ``boxes`` float
        ``(B, 4)`` ``[x1, y1, x2, y2]``. Returns ``masks`` float logits ``(B, K, H, W)`` (``K = 3`` with
        ``multimask=True``, else 1) and ``iou_pred`` float ``(B, K)``.
    """

    def __init__(self, config: PromptableConfig = PromptableConfig()) -> None:
        super().__init__()
        self.config = config
        d = config.embed_dim
        self.image_encoder = ImageEncoder(d, config.encoder_width, config.encoder_dilations)
        self.prompt_encoder = PromptEncoder(d, (16, 16), (64, 64), generator=torch.Generator().manual_seed(config.pe_seed),
                                            scale=config.pe_scale)
        self.mask_decoder = MaskDecoder(
            transformer_dim=d,
            transformer=TwoWayTransformer(config.depth, d, config.num_heads, config.mlp_dim),
            num_multimask_outputs=config.num_multimask_outputs, iou_head_hidden_dim=config.iou_head_hidden_dim)
        self.refiner = BoundaryRefiner(config.refine_width) if config.refine_width else None
        if config.click_maps:
            c = d // 4
            self.click_downscaling = nn.Sequential(           # SAM's mask_downscaling, with 2 input maps
                nn.Conv2d(3 if config.mask_feedback else 2, c // 4, kernel_size=2, stride=2), LayerNorm2d(c // 4), nn.GELU(),
                nn.Conv2d(c // 4, c, kernel_size=2, stride=2), LayerNorm2d(c), nn.GELU(),
                nn.Conv2d(c, d, kernel_size=1))

    @property
    def embedding_channels(self) -> int:
        """Channels of :meth:`embed`'s output: ``D``, plus the refiner's full-resolution features packed 4x4 per cell."""
        return self.config.embed_dim + (self.config.refine_width * STRIDE * STRIDE if self.refiner is not None else 0)

    def click_maps(self, points: torch.Tensor, labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Positive and negative click maps float ``(B, 2, H, W)`` of ``click_radius`` (:func:`gaussian_click_maps`)."""
        return gaussian_click_maps(points, labels, size, self.config.click_radius)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The image embedding float ``(B, embedding_channels, H/4, W/4)``: run once per image.

        Its first ``D`` channels are the grid tokens the decoder attends to; with the refiner, the rest are
        its full-resolution features, each 4 x 4 block of pixels stacked on its grid cell (pixel unshuffle)."""
        grid = self.image_encoder(images)
        if self.refiner is None:
            return grid
        hires = self.refiner.features(self.image_encoder.normalise(images))
        return torch.cat([grid, F.pixel_unshuffle(hires, STRIDE)], dim=1)

    def decode(self, embedding: torch.Tensor, points: torch.Tensor | None, labels: torch.Tensor | None,
               boxes: torch.Tensor | None = None, *, multimask: bool = True,
               mask_input: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks and predicted IoUs for prompts on a cached embedding (see the class for shapes).

        ``mask_input``: float ``(B, 1, H, W)`` in ``[0, 1]``, the previous prediction, used when the model was
        built with ``mask_feedback=True`` (zeros when ``None``: the first click)."""
        if embedding.ndim != 4 or embedding.shape[1] != self.embedding_channels:
            raise ValueError(f"embedding must be float (B, {self.embedding_channels}, h, w) from this model's embed(), "
                             f"got {tuple(embedding.shape)}")
        d = self.config.embed_dim
        tokens, hires = embedding[:, :d], embedding[:, d:]
        grid = tuple(embedding.shape[-2:])
        size = (grid[0] * STRIDE, grid[1] * STRIDE)
        prompts = None if points is None else (points, labels)
        sparse, dense = self.prompt_encoder(prompts, boxes, input_image_size=size, image_embedding_size=grid)
        if self.config.click_maps and points is not None:
            maps = self.click_maps(points, labels, size)
            if self.config.mask_feedback:
                previous = mask_input if mask_input is not None else maps.new_zeros(maps.shape[0], 1, *size)
                maps = torch.cat([maps, previous.to(maps.dtype)], dim=1)
            dense = dense + self.click_downscaling(maps)
        masks, iou_pred = self.mask_decoder(tokens, self.prompt_encoder.get_dense_pe(grid), sparse, dense,
                                            multimask_output=multimask)
        if self.refiner is not None:
            fine = (gaussian_click_maps(points, labels, size, self.config.refine_click_radius) if points is not None
                    else masks.new_zeros(masks.shape[0], 2, *size))
            masks = self.refiner(F.pixel_shuffle(hires, STRIDE), masks, fine)
        return masks, iou_pred

    def forward(self, images, points, labels, boxes=None, *, multimask: bool = True):
        return self.decode(self.embed(images), points, labels, boxes, multimask=multimask)


def promptable_segmenter(**overrides) -> PromptableSegmenter:
    """The course's model; keyword arguments override :class:`PromptableConfig` fields."""
    return PromptableSegmenter(PromptableConfig(**overrides))


def pick_mask(masks: torch.Tensor, iou_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mask with the highest predicted IoU: ``(B, K, H, W), (B, K) -> (B, H, W) logits, (B,) index``."""
    best = iou_pred.argmax(dim=1)
    return masks[torch.arange(len(masks)), best], best
