"""FCN: a classifier turned into a dense predictor (FCN-32s, FCN-16s, FCN-8s).

Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic Segmentation",
CVPR 2015, https://arxiv.org/abs/1411.4038.

The three ideas of the paper, as they appear in this file:

1. **Fully convolutional** -- a classifier's fully connected layers are convolutions
   whose kernel covers their whole input; written as convolutions (here 1×1: ``fc6``,
   ``fc7``, ``score_fr`` in :class:`FCNHead`) they slide over a feature map of any size
   and give a *map* of class scores instead of one vector.
2. **In-network upsampling** -- the coarse score map (1/32 of the input for VGG) is
   brought back to the input size by a transposed convolution initialised as bilinear
   interpolation (:func:`bilinear_kernel`, :class:`BilinearUpsample`).
3. **Skip fusion** -- FCN-16s adds scores computed from pool4 (stride 16) to the 2×
   upsampled pool5 scores; FCN-8s adds pool3 (stride 8) as well. Fine layers know
   *where*, coarse layers know *what*; fusing them sharpens boundaries. The new score
   layers start at zero, so at initialisation FCN-16s/8s compute exactly FCN-32s.

Composition: ``encoder (backbone) -> head (class scores at stride 32) -> decoder (skip
fusion + upsampling)``. The variant names follow the paper's VGG (output stride 32):
on an encoder with another output stride, ``"32s"`` means "no skip, upsample the
coarsest scores straight to the input", ``"16s"`` one skip and ``"8s"`` two.

torchvision's ``fcn_resnet50`` is a different network that shares the name: a ResNet-50
made dilated (output stride 8), a 3×3 convolution head (:class:`TorchvisionFCNHead`) and
one bilinear interpolation back to the input -- no skips, no transposed convolutions.
:func:`fcn` builds that too (``backbone="resnet50", head="torchvision",
up="bilinear"``) with exactly torchvision's parameter count.

Differences from the paper, on purpose: the paper pads the input by 100 pixels and
crops; here convolutions use 'same' padding and each upsampling asks for the exact size
of the map it is fused with, so any input with H, W >= 32 works (odd sizes included).
The tiny VGG adds batch normalisation so it trains from scratch on a CPU in a minute.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int
from .backbones import Encoder, get_backbone

__all__ = ["bilinear_kernel", "BilinearUpsample", "FCNHead", "TorchvisionFCNHead", "FCN", "fcn", "grow_fcn", "VARIANTS"]

VARIANTS = ("32s", "16s", "8s")
MIN_SIZE = 32


def bilinear_kernel(in_channels: int, out_channels: int, kernel_size: int) -> torch.Tensor:
    """Weights that make ``nn.ConvTranspose2d`` upsample each channel by bilinear interpolation.

    Channel ``c`` of the input is copied to channel ``c`` of the output (other pairs get
    zero) through the separable "tent" filter ``(1 - |i - centre| / f) * (1 - |j - centre| / f)``
    with ``f = (k + 1) // 2`` and ``centre = f - 1`` (odd k) or ``f - 0.5`` (even k), the
    FCN reference implementation's ``upsample_filt``. With ``kernel_size = 2f - f % 2``
    (``2f`` for even ``f``, ``2f - 1`` for odd, as the FCN reference's ``get_kernel_size``),
    ``stride = f`` and ``padding = f // 2`` the transposed convolution equals
    ``F.interpolate(x, scale_factor=f, mode="bilinear", align_corners=False)`` everywhere
    except a border of exactly ``f // 2`` pixels on each side (where interpolate clamps and the
    transposed convolution fades towards zero); ``tests/models/test_fcn_reference.py`` checks it.

    Args:
        in_channels: input channels of the transposed convolution.
        out_channels: output channels; must equal ``in_channels`` (a per-channel copy).
        kernel_size: side of the square kernel (``2 * factor`` for an upsampling by ``factor``).

    Returns:
        (in_channels, out_channels, kernel_size, kernel_size) float32 -- the layout of
        ``nn.ConvTranspose2d.weight``.

    Raises:
        ValueError: ``in_channels != out_channels`` or a non-positive size.
    """
    if in_channels != out_channels:
        raise ValueError(
            f"a bilinear upsampling kernel copies each channel to itself, so in_channels must equal "
            f"out_channels; got {in_channels} and {out_channels}"
        )
    if in_channels < 1 or kernel_size < 1:
        raise ValueError(f"channels and kernel_size must be positive, got {in_channels} and {kernel_size}")
    factor = (kernel_size + 1) // 2
    centre = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float32)
    filt1d = 1 - (og - centre).abs() / factor                      # (k,)
    filt = filt1d[:, None] * filt1d[None, :]                        # (k, k)
    weight = torch.zeros(in_channels, out_channels, kernel_size, kernel_size)
    idx = torch.arange(in_channels)
    weight[idx, idx] = filt
    return weight


class BilinearUpsample(nn.Module):
    """Upsample by an integer ``factor`` to an exact requested size.

    ``mode="transpose"``: ``ConvTranspose2d(kernel 2f - f % 2, stride f, padding f // 2, no bias)``
    initialised by :func:`bilinear_kernel` (learnable unless ``learnable=False``), as in
    the paper. The output is ``f * h`` (+ up to ``f - 1`` via ``output_padding``) and is
    cropped at the bottom/right when the requested size is smaller, so every input size works.
    A fixed (``learnable=False``) upsampling never mixes channels, so it is stored as a
    depthwise (``groups=C``) transposed convolution with weight ``(C, 1, k, k)``: the same
    numbers as the diagonal of :func:`bilinear_kernel`, C times cheaper.
    ``mode="bilinear"``: ``F.interpolate(..., mode="bilinear", align_corners=False)``, no parameters.

    Shapes:
        ``forward(x, size)``: (N, C, h, w) float -> (N, C, *size) float.
    """

    def __init__(self, channels: int, factor: int, mode: Literal["transpose", "bilinear"] = "transpose",
                 learnable: bool = True):
        super().__init__()
        if mode not in ("transpose", "bilinear"):
            raise ValueError(f"upsampling mode must be 'transpose' or 'bilinear' (as U-Net's up=), got {mode!r}")
        if factor < 1 or int(factor) != factor:
            raise ValueError(f"factor must be a positive integer, got {factor!r}")
        self.factor, self.mode = int(factor), mode
        self.conv: nn.ConvTranspose2d | None = None
        if mode == "transpose" and factor > 1:
            k = 2 * self.factor - self.factor % 2  # 2f (even f, every FCN path); 2f - 1 keeps an odd f aligned
            groups = 1 if learnable else channels
            self.conv = nn.ConvTranspose2d(channels, channels, k, stride=self.factor, padding=self.factor // 2,
                                           groups=groups, bias=False)
            weight = bilinear_kernel(channels, channels, k)  # (C, C, k, k), diagonal over channels
            if groups > 1:
                weight = weight[torch.arange(channels), torch.arange(channels)].unsqueeze(1)  # (C, 1, k, k)
            with torch.no_grad():
                self.conv.weight.copy_(weight)
            self.conv.weight.requires_grad_(learnable)

    def forward(self, x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
        size = (int(size[0]), int(size[1]))
        if self.conv is None:
            if tuple(x.shape[-2:]) == size:
                return x
            return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        f = self.factor
        natural = (f * x.shape[-2], f * x.shape[-1])               # output size with output_padding 0
        extra = [max(0, s - n) for s, n in zip(size, natural)]
        if max(extra) >= f:
            raise ValueError(f"cannot upsample {tuple(x.shape[-2:])} by {f} to {size}: the target is too large")
        out = self.conv(x, output_size=[n + e for n, e in zip(natural, extra)])  # (N, C, >= size)
        return out[..., : size[0], : size[1]]


class FCNHead(nn.Module):
    """The paper's classifier head, fully convolutional: fc6, fc7 as convolutions, then class scores.

    ``fc6: Conv(k) -> ReLU -> Dropout``, ``fc7: Conv 1×1 -> ReLU -> Dropout``,
    ``score_fr: Conv 1×1 -> num_classes`` (zero-initialised, as in the paper). VGG-16's
    fc6 saw a 7×7×512 map, so its convolutional form is a 7×7 convolution with 4096
    outputs; ``kernel_size=1`` gives the lighter "1×1 convolution as a fully connected
    layer" form.

    Shapes:
        (N, in_channels, h, w) float -> (N, num_classes, h, w) float (padding keeps h, w).
    """

    def __init__(self, in_channels: int, num_classes: int, channels: int = 4096, kernel_size: int = 1,
                 dropout: float = 0.5):
        super().__init__()
        self.fc6 = nn.Sequential(nn.Conv2d(in_channels, channels, kernel_size, padding=kernel_size // 2),
                                 nn.ReLU(inplace=True), nn.Dropout2d(dropout))
        self.fc7 = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True), nn.Dropout2d(dropout))
        self.score_fr = nn.Conv2d(channels, num_classes, 1)
        nn.init.zeros_(self.score_fr.weight)
        nn.init.zeros_(self.score_fr.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score_fr(self.fc7(self.fc6(x)))


class TorchvisionFCNHead(nn.Sequential):
    """torchvision's ``FCNHead``: ``3×3 conv (in -> in/4, no bias) -> BN -> ReLU -> Dropout(0.1) -> 1×1 conv``.

    Shapes:
        (N, in_channels, h, w) float -> (N, num_classes, h, w) float.
    """

    def __init__(self, in_channels: int, num_classes: int):
        inter = in_channels // 4
        super().__init__(
            nn.Conv2d(in_channels, inter, 3, padding=1, bias=False),
            nn.BatchNorm2d(inter),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Conv2d(inter, num_classes, 1),
        )


class FCN(nn.Module):
    """Fully convolutional network: encoder -> class-score head -> skip fusion and upsampling.

    Args:
        encoder: a backbone :class:`~segcourse.models.backbones.Encoder` (its last three
            feature maps play pool3, pool4 and pool5).
        num_classes: number of classes ``C`` (``C = 1``: one binary logit).
        variant: ``"32s"`` (no skip), ``"16s"`` (fuse pool4) or ``"8s"`` (fuse pool4 and pool3).
        head: ``"paper"`` (:class:`FCNHead`), ``"torchvision"`` (:class:`TorchvisionFCNHead`)
            or an ``nn.Module`` mapping the last feature map to ``C`` score channels.
        up: ``"transpose"`` (bilinear-initialised transposed convolutions, the paper)
            or ``"bilinear"`` (fixed interpolation, torchvision); the same option and values as U-Net's ``up``.
        learn_final_upsample: whether the last upsampling to the input size is learned;
            the paper keeps it fixed at bilinear (its ``upscore`` layers have learning rate 0).
        fc_channels, fc_kernel, dropout: options of the paper head.

    Shapes:
        ``forward(x)``: x (N, 3, H, W) float, H, W >= 32 -> logits (N, C, H, W) float.

    Raises:
        ValueError: unknown variant/head/upsampling, or an input smaller than 32 × 32.
    """

    def __init__(self, encoder: Encoder, num_classes: int, variant: str = "8s", head: str | nn.Module = "paper",
                 up: Literal["transpose", "bilinear"] = "transpose", learn_final_upsample: bool = False,
                 fc_channels: int = 4096, fc_kernel: int = 1, dropout: float = 0.5):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"FCN variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        check_int(num_classes, "num_classes")
        if len(encoder.out_channels) < 3:
            raise ValueError(f"FCN needs an encoder with at least three feature maps, got {len(encoder.out_channels)}")
        self.encoder, self.num_classes, self.variant = encoder, num_classes, variant
        # True: ImageNet weights loaded; False: pretrained=True found none cached (from scratch); None: not asked
        self.pretrained_loaded = getattr(encoder, "pretrained_loaded", None)
        channels, strides = encoder.out_channels, encoder.strides
        if head == "paper":
            head = FCNHead(channels[-1], num_classes, fc_channels, fc_kernel, dropout)
        elif head == "torchvision":
            head = TorchvisionFCNHead(channels[-1], num_classes)
        elif not isinstance(head, nn.Module):
            raise ValueError(f"head must be 'paper', 'torchvision' or an nn.Module, got {head!r}")
        self.head = head
        n_skips = VARIANTS.index(variant)  # 0, 1 or 2
        self.score_skips = nn.ModuleList()  # score_pool4, score_pool3 (zero-initialised)
        self.up_skips = nn.ModuleList()     # upscore2, upscore_pool4 (learned, bilinear init)
        for i in range(n_skips):
            finer, coarser = -(i + 2), -(i + 1)
            score = nn.Conv2d(channels[finer], num_classes, 1)
            nn.init.zeros_(score.weight)
            nn.init.zeros_(score.bias)
            self.score_skips.append(score)
            self.up_skips.append(BilinearUpsample(num_classes, strides[coarser] // strides[finer], up))
        self.upscore = BilinearUpsample(num_classes, strides[-(n_skips + 1)], up, learnable=learn_final_upsample)

    #: the smallest input side accepted (the coarsest map is at stride 32); U-Net's is ``2**depth``
    min_size = MIN_SIZE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or min(x.shape[-2:]) < MIN_SIZE:
            raise ValueError(f"FCN expects images (N, 3, H, W) with H, W >= {MIN_SIZE}, got {tuple(x.shape)}")
        features = self.encoder(x)                  # pool1..pool5, fine to coarse
        score = self.head(features[-1])             # (N, C, H/32, W/32)   "score_fr"
        for i, (score_skip, up) in enumerate(zip(self.score_skips, self.up_skips)):
            skip = score_skip(features[-(i + 2)])  # (N, C, H/16, W/16) then (N, C, H/8, W/8)
            score = up(score, skip.shape[-2:]) + skip  # fuse: upsampled coarse scores + fine scores
        return self.upscore(score, x.shape[-2:])    # (N, C, H, W)


def fcn(num_classes: int, variant: str = "8s", backbone: str | Encoder = "vgg_tiny", *, pretrained: bool = False,
        head: str | nn.Module = "paper", up: Literal["transpose", "bilinear"] = "transpose",
        fc_channels: int | None = None, fc_kernel: int = 1, dropout: float = 0.5, **backbone_kwargs) -> FCN:
    """Build an FCN.

    * The paper's FCN-8s on VGG-16: ``fcn(21, "8s", "vgg16", fc_kernel=7)`` (fc6 7×7 with 4096 channels).
    * A small one for a CPU: ``fcn(4, "8s", "vgg_tiny", width=16)`` (fc layers 2 × 128 channels by default).
    * torchvision's ``fcn_resnet50`` structure: ``fcn(21, "32s", "resnet50", head="torchvision", up="bilinear")``.

    Args:
        num_classes: number of classes.
        variant: ``"32s"``, ``"16s"`` or ``"8s"``.
        backbone: a name from :data:`~segcourse.models.backbones.BACKBONES` or an encoder.
        pretrained: ImageNet weights from the local cache for torchvision backbones (never downloads).
            None cached: a warning says so, the model starts from scratch and ``model.pretrained_loaded``
            is ``False`` (``fit`` copies it into ``history.pretrained_loaded``).
        head, up, fc_kernel, dropout: see :class:`FCN`.
        fc_channels: width of fc6/fc7 (default: 4096 for ``vgg16``, else twice the last feature map's channels).
        **backbone_kwargs: passed to the backbone builder (``width=...``, ``output_stride=...``).

    Returns:
        An :class:`FCN` returning logits (N, num_classes, H, W).
    """
    if pretrained:
        if not isinstance(backbone, str) or backbone in ("vgg_tiny", "resnet_tiny"):
            raise ValueError(f"pretrained=True needs a torchvision backbone name (vgg16, resnet50, ...), got {backbone!r}")
        backbone_kwargs["pretrained"] = True
    encoder = get_backbone(backbone, **backbone_kwargs)
    if fc_channels is None:
        fc_channels = 4096 if backbone == "vgg16" else 2 * encoder.out_channels[-1]
    return FCN(encoder, num_classes, variant=variant, head=head, up=up,
               fc_channels=fc_channels, fc_kernel=fc_kernel, dropout=dropout)


def grow_fcn(coarser: FCN, variant: str) -> FCN:
    """The next FCN of the paper's staged training: FCN-16s from a trained FCN-32s, FCN-8s from a trained FCN-16s.

    The paper trains FCN-32s first, then initialises FCN-16s from it and fine-tunes, then FCN-8s from
    FCN-16s (Long et al. 2015, section 4.2). The new skip scorer is zero-initialised and the new 2×
    upsampling bilinear, so until training moves the new layers the grown network computes what
    ``coarser`` computes (up to the difference between one bilinear upsampling and two in a row: well
    a few percent of the scores' range at most, away from the borders; ``tests/models/test_fcn.py`` checks it):
    every variant starts from the same model, and what fine-tuning adds is the skip's effect. ``coarser`` is left untouched
    (its encoder, head and layers are copied).

    Args:
        coarser: a :class:`FCN` with one skip fewer than ``variant`` (``"32s"`` for ``"16s"``, ``"16s"`` for ``"8s"``).
        variant: ``"16s"`` or ``"8s"``.

    Returns:
        A new :class:`FCN` of ``variant`` (same upsampling mode; the last upsampling fixed, as in :class:`FCN`).

    Raises:
        ValueError: ``variant`` is not the next one after ``coarser.variant``.
    """
    if variant not in VARIANTS[1:] or VARIANTS.index(variant) != VARIANTS.index(coarser.variant) + 1:
        raise ValueError(f"grow_fcn adds one skip: FCN-{coarser.variant} grows into FCN-"
                         f"{VARIANTS[min(VARIANTS.index(coarser.variant) + 1, 2)]}, not {variant!r}")
    import copy

    mode = coarser.upscore.mode
    grown = FCN(copy.deepcopy(coarser.encoder), coarser.num_classes, variant, head=copy.deepcopy(coarser.head),
                up=mode)
    for old, new in zip(coarser.score_skips, grown.score_skips):  # the skips both have
        new.load_state_dict(old.state_dict())
    for old, new in zip(coarser.up_skips, grown.up_skips):
        new.load_state_dict(old.state_dict())
    grown.pretrained_loaded = coarser.pretrained_loaded
    return grown

