"""U-Net: a contracting encoder, an expanding decoder and concatenation skips.

The network of Ronneberger, Fischer and Brox, *U-Net: Convolutional Networks for
Biomedical Image Segmentation*, MICCAI 2015, https://arxiv.org/abs/1505.04597,
written as three seams you can swap (the segmentation_models.pytorch layout):

    image (N, in_channels, H, W)
      -> UNetEncoder : stem + ``depth`` x (max-pool 2x2 -> DoubleConv), channels doubling
                       features [f0 (N, c, H, W), f1 (N, 2c, H/2, W/2), ..., f_depth (N, 2^depth c, H/2^depth, ...)]
      -> UNetDecoder : ``depth`` x DecoderBlock (upsample x2 -> pad to the skip's size -> concat skip -> DoubleConv)
                       (N, c, H, W)
      -> head        : 1x1 convolution to ``num_classes`` logits (N, num_classes, H, W)

Two differences from the 2015 paper, both the modern convention (torchvision-style
"same" padding, as in most open implementations):

* convolutions are 3x3 with ``padding=1`` ("same"), so the output has the input's size;
  the paper used unpadded ("valid") convolutions, predicted a smaller centre region and
  **cropped** every skip to fit. With same padding nothing needs cropping;
* optional normalisation (BatchNorm by default) after each convolution, which the paper
  predates (batch norm: Ioffe & Szegedy 2015, https://arxiv.org/abs/1502.03167).

Odd sizes. Max-pooling floors: a 97-pixel side becomes 48, 24, 12, 6; upsampling x2 gives
12, 24, 48, **96** -- one short of the 97-pixel skip. Concatenating then fails
("Sizes of tensors must match"), and cropping the skip to 96 silently throws away a row
and returns a mask that no longer lines up with the image. :func:`pad_to` instead pads
the upsampled map with zeros, split evenly between both sides, to the skip's exact size,
so every input with ``H, W >= 2**depth`` gives logits at the input resolution.

Example:
    >>> model = unet(in_channels=3, num_classes=2, depth=4, base_channels=16)
    >>> model(torch.randn(2, 3, 97, 75)).shape
    torch.Size([2, 2, 97, 75])
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int

__all__ = ["DoubleConv", "DecoderBlock", "UNetEncoder", "UNetDecoder", "UNet", "unet", "pad_to", "pad_to_multiple"]

UpMode = Literal["transpose", "bilinear"]
NormMode = Literal["batch", "instance", "none"]
_UP_MODES = ("transpose", "bilinear")
_NORM_MODES = ("batch", "instance", "none")


def _norm_layer(norm: str, channels: int) -> nn.Module:
    if norm not in _NORM_MODES:
        raise ValueError(f"norm must be one of {_NORM_MODES} (or None), got {norm!r}")
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def pad_to(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Zero-pad ``x`` at its bottom/right and top/left edges to spatial ``size``.

    The difference is split as evenly as possible (the extra pixel of an odd difference
    goes to the bottom/right), the policy of most open U-Net implementations.

    Args:
        x: feature map, ``(N, C, h, w)`` float.
        size: the target ``(H, W)`` with ``H >= h`` and ``W >= w``.

    Returns:
        ``(N, C, H, W)`` float; ``x`` itself when it already has that size.

    Raises:
        ValueError: ``size`` is smaller than ``x`` in some dimension (this function
            never crops: cropping would silently drop pixels).
    """
    # a torch.Size keeps its (possibly symbolic) sizes: int() would freeze them under torch.export
    target_h, target_w = (size[0], size[1]) if isinstance(size, torch.Size) else (int(size[0]), int(size[1]))
    dh, dw = target_h - x.shape[-2], target_w - x.shape[-1]
    if dh < 0 or dw < 0:
        raise ValueError(
            f"pad_to: the map is {tuple(x.shape[-2:])} but the target size is {(target_h, target_w)}; "
            "pad_to only pads, it never crops"
        )
    if dh == 0 and dw == 0:
        return x
    # F.pad takes (left, right, top, bottom) for the last two dims.
    return F.pad(x, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])  # (N, C, H, W)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[slice, slice]]:
    """Zero-pad an input so that its height and width are multiples of ``multiple``, and say how to crop back.

    The fix for odd sizes that works with *any* encoder-decoder, even one whose decoder cannot
    align its skips: pad the image to a multiple of ``2**depth``, run the network, crop the
    logits back to the image's own size. The split between the two sides is :func:`pad_to`'s
    (the extra pixel of an odd difference at the bottom/right), which is MONAI's
    ``DivisiblePad(k=multiple, method="symmetric")`` (cross-checked in the tests); nnU-Net does the
    same when it pads images to its patch size.

    Args:
        x: ``(N, C, H, W)`` float.
        multiple: the divisor, e.g. ``2**depth`` (a positive int).

    Returns:
        ``(padded, (rows, cols))``: ``padded`` is ``(N, C, H', W')`` with ``H'``, ``W'`` the next
        multiples of ``multiple``; ``output[..., rows, cols]`` crops a network's output on
        ``padded`` back to ``(H, W)``.

    Raises:
        TypeError / ValueError: ``multiple`` is not a positive int.

    Example:
        >>> padded, (rows, cols) = pad_to_multiple(torch.zeros(1, 3, 97, 75), 16)
        >>> tuple(padded.shape[-2:]), padded[..., rows, cols].shape[-2:]
        ((112, 80), torch.Size([97, 75]))
    """
    check_int(multiple, "multiple")
    h, w = x.shape[-2:]
    size = (-(-h // multiple) * multiple, -(-w // multiple) * multiple)  # round up to the next multiple
    top, left = (size[0] - h) // 2, (size[1] - w) // 2
    return pad_to(x, size), (slice(top, top + h), slice(left, left + w))


class DoubleConv(nn.Sequential):
    """Two ``3x3 conv -> norm -> ReLU`` layers: the U-Net's basic block.

    Convolutions have no bias when a normalisation follows (its shift makes the bias
    redundant), and a bias otherwise.

    Shapes:
        ``(N, in_channels, H, W)`` -> ``(N, out_channels, H, W)``.

    Parameters (hand count, ``a = in_channels``, ``b = out_channels``):
        ``9ab + 9b^2 + 4b`` with ``norm="batch"`` or ``"instance"`` (2 affine params per channel per norm);
        ``9ab + 9b^2 + 2b`` with ``norm="none"`` (2 biases of ``b``).
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch") -> None:
        bias = norm == "none"
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=bias),
            _norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=bias),
            _norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
        )


class UNetEncoder(nn.Module):
    """The contracting path: a stem, then ``depth`` stages of max-pool 2x2 + DoubleConv.

    Stage ``i`` has ``base_channels * 2**i`` channels and ``1/2**i`` of the input size
    (rounded down at every pooling).

    Shapes:
        ``x: (N, in_channels, H, W)`` -> a list of ``depth + 1`` maps,
        ``features[i]: (N, base_channels * 2**i, H_i, W_i)`` with ``H_0 = H`` and
        ``H_{i+1} = floor(H_i / 2)``.
    """

    def __init__(self, in_channels: int = 3, depth: int = 4, base_channels: int = 32, norm: str = "batch") -> None:
        super().__init__()
        self.channels = [base_channels * 2**i for i in range(depth + 1)]
        self.stem = DoubleConv(in_channels, self.channels[0], norm)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), DoubleConv(self.channels[i], self.channels[i + 1], norm))
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.stem(x)]  # [(N, c, H, W)]
        for stage in self.stages:
            features.append(stage(features[-1]))  # (N, 2^i c, H / 2^i, W / 2^i)
        return features


class DecoderBlock(nn.Module):
    """One step up the expanding path: upsample x2, pad to the skip, concatenate, DoubleConv.

    ``up="transpose"``: a learned ``ConvTranspose2d(kernel 2, stride 2)`` that also halves
    the channels (the paper's "up-convolution"). ``up="bilinear"``: fixed bilinear
    interpolation (``align_corners=False``) followed by a 1x1 convolution that halves the
    channels -- no learned upsampling, hence no checkerboard artefacts (Odena et al. 2016,
    https://distill.pub/2016/deconv-checkerboard/).

    Shapes:
        ``x: (N, in_channels, h, w)``, ``skip: (N, skip_channels, H, W)`` with
        ``2h <= H <= 2h + 1`` (likewise for widths) -> ``(N, out_channels, H, W)``.

    Parameters (hand count, ``a = in_channels``, ``s = skip_channels``, ``o = out_channels``):
        up-sampler ``4 * a * (a // 2) + a // 2`` (transpose) or ``a * (a // 2) + a // 2`` (bilinear),
        then ``DoubleConv(a // 2 + s, o)``.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int,
                 up: str = "transpose", norm: str = "batch") -> None:
        super().__init__()
        if up not in _UP_MODES:
            raise ValueError(f"up must be one of {_UP_MODES}, got {up!r}")
        if in_channels < 2 or in_channels % 2:
            raise ValueError(f"in_channels of a DecoderBlock must be even (the up-sampler halves it), got {in_channels}")
        mid = in_channels // 2
        if up == "transpose":
            self.up = nn.ConvTranspose2d(in_channels, mid, kernel_size=2, stride=2)
        else:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, mid, kernel_size=1),
            )
        self.conv = DoubleConv(mid + skip_channels, out_channels, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)  # (N, in/2, 2h, 2w)
        x = pad_to(x, skip.shape[-2:])  # (N, in/2, H, W): zero rows/cols where H = 2h + 1
        x = torch.cat([skip, x], dim=1)  # (N, skip + in/2, H, W)
        return self.conv(x)  # (N, out, H, W)


class UNetDecoder(nn.Module):
    """The expanding path: one :class:`DecoderBlock` per encoder stage, deepest first.

    Shapes:
        ``features`` as returned by :class:`UNetEncoder` -> ``(N, channels[0], H, W)``.
    """

    def __init__(self, channels: list[int], up: str = "transpose", norm: str = "batch") -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            DecoderBlock(channels[i + 1], channels[i], channels[i], up=up, norm=norm)
            for i in reversed(range(len(channels) - 1))
        )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]  # (N, 2^depth c, H / 2^depth, W / 2^depth): the bottleneck
        for block, skip in zip(self.blocks, reversed(features[:-1])):
            x = block(x, skip)  # (N, channels of skip, size of skip)
        return x  # (N, c, H, W)


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015, https://arxiv.org/abs/1505.04597): encoder -> decoder -> head.

    Args:
        num_classes: output channels. ``num_classes >= 2``: logits for softmax + cross-entropy;
            ``num_classes == 1``: a single binary logit for sigmoid + BCE (the course's convention).
            First, as in :func:`~segcourse.models.fcn` and :func:`~segcourse.models.deeplabv3`.
        in_channels: channels of the input image (3 for RGB, 1 for grey); keyword-only, like the rest.
        depth: number of 2x down-samplings (the paper: 4). Inputs need ``H, W >= 2**depth``.
        base_channels: channels of the first stage (the paper: 64); stage ``i`` has ``base_channels * 2**i``.
        up: ``"transpose"`` (learned up-convolution, as in the paper) or ``"bilinear"``
            (interpolation + 1x1 convolution).
        norm: ``"batch"`` (default), ``"instance"`` or ``"none"`` (the paper's plain convolutions).

    Shapes:
        ``x: (N, in_channels, H, W)`` float, any ``H, W >= 2**depth`` (odd sizes included)
        -> logits ``(N, num_classes, H, W)`` float at the input resolution.

    Raises:
        TypeError: an int argument is not an int, or the input is not a tensor.
        ValueError: an argument is out of range or not one of its choices; the input is not
            4-D, has the wrong number of channels, or is smaller than ``2**depth``.

    Parameter count (``c_i = base_channels * 2**i``, ``DoubleConv(a, b) = 9ab + 9b^2 + 4b`` with a norm):
        ``DoubleConv(in_channels, c_0) + sum_{i=1..depth} DoubleConv(c_{i-1}, c_i)`` (encoder)
        ``+ sum_{i=1..depth} [up(c_i) + DoubleConv(c_i, c_{i-1})]`` (decoder; ``c_i/2 + c_{i-1} = c_i``)
        ``+ c_0 * num_classes + num_classes`` (head), with ``up(a) = 2a^2 + a/2`` (transpose)
        or ``a^2/2 + a/2`` (bilinear).

    References:
        O. Ronneberger, P. Fischer, T. Brox. U-Net: Convolutional Networks for Biomedical Image
        Segmentation. MICCAI 2015. https://arxiv.org/abs/1505.04597
    """

    def __init__(self, num_classes: int = 2, *, in_channels: int = 3, depth: int = 4, base_channels: int = 32,
                 up: UpMode = "transpose", norm: NormMode | None = "batch") -> None:
        super().__init__()
        check_int(in_channels, "in_channels")
        check_int(num_classes, "num_classes")
        check_int(depth, "depth")
        check_int(base_channels, "base_channels")
        if depth > 8:
            raise ValueError(f"depth must be <= 8 (an input would need >= 2**depth pixels per side), got {depth}")
        if up not in _UP_MODES:
            raise ValueError(f"up must be one of {_UP_MODES}, got {up!r}")
        norm = "none" if norm is None else norm
        if norm not in _NORM_MODES:
            raise ValueError(f"norm must be one of {_NORM_MODES} (or None), got {norm!r}")
        self.in_channels, self.num_classes, self.depth = in_channels, num_classes, depth
        self.base_channels, self.up_mode, self.norm = base_channels, up, norm
        self.encoder = UNetEncoder(in_channels, depth, base_channels, norm)
        self.decoder = UNetDecoder(self.encoder.channels, up=up, norm=norm)
        self.head = nn.Conv2d(base_channels, num_classes, kernel_size=1)

    @property
    def min_size(self) -> int:
        """The smallest input side the network accepts: ``2**depth`` (FCN and DeepLab: 32)."""
        return 2**self.depth

    def _check_input(self, x) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"UNet expects a torch.Tensor (N, {self.in_channels}, H, W), got {type(x).__name__}")
        if x.ndim != 4:
            raise ValueError(
                f"UNet expects a batch (N, {self.in_channels}, H, W), got shape {tuple(x.shape)}; "
                "for a single image use x[None] / x.unsqueeze(0)"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet was built with in_channels={self.in_channels} but the input has {x.shape[1]} channels "
                f"(shape {tuple(x.shape)}); images in (N, H, W, C) order need x.permute(0, 3, 1, 2)"
            )
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"input {tuple(x.shape[-2:])} is too small for depth={self.depth}: each side needs "
                f">= 2**depth = {self.min_size} pixels; pad the image or build the model with a smaller depth"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        features = self.encoder(x)  # depth + 1 maps, (N, c_i, H / 2^i, W / 2^i)
        x = self.decoder(features)  # (N, c_0, H, W)
        return self.head(x)  # (N, num_classes, H, W)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, num_classes={self.num_classes}, depth={self.depth}, "
                f"base_channels={self.base_channels}, up={self.up_mode!r}, norm={self.norm!r}")


def unet(num_classes: int = 2, *, in_channels: int = 3, depth: int = 4, base_channels: int = 32,
         up: UpMode = "transpose", norm: NormMode | None = "batch") -> UNet:
    """Build a :class:`UNet` (see it for the arguments, shapes and errors).

    Example:
        >>> model = unet(num_classes=2, depth=3, base_channels=16, up="bilinear")
        >>> model(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 2, 64, 64])
    """
    return UNet(num_classes, in_channels=in_channels, depth=depth, base_channels=base_channels, up=up, norm=norm)
