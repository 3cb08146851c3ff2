"""DeepLabV3 and DeepLabV3+: a dilated backbone, atrous spatial pyramid pooling, a light decoder.

Chen, Papandreou, Schroff & Adam, "Rethinking Atrous Convolution for Semantic Image
Segmentation", 2017, https://arxiv.org/abs/1706.05587 (DeepLabV3).
Chen, Zhu, Papandreou, Schroff & Adam, "Encoder-Decoder with Atrous Separable
Convolution for Semantic Image Segmentation", ECCV 2018, https://arxiv.org/abs/1802.02611
(DeepLabV3+).

* **Atrous (dilated) backbone** -- the last stages of the backbone trade their stride for
  dilation, so the feature map stays at 1/16 (``output_stride=16``) or 1/8 of the input
  while the receptive field keeps growing (see :mod:`segcourse.models.backbones`).
* **ASPP** (:class:`ASPP`) -- five parallel branches on the same feature map: a 1×1
  convolution, three 3×3 convolutions with atrous rates (6, 12, 18) at output stride 16
  -- doubled to (12, 24, 36) at output stride 8, as the paper does -- and *image pooling*:
  global average pooling, 1×1 convolution, then bilinear upsampling **to the feature map's
  size** so that it can be concatenated with the other four. (One of the course's source
  articles upsamples the pooled branch to its *own* size, a no-op that leaves it 1×1 and
  makes the concatenation fail for any feature map larger than 1×1; lesson 05 shows it.)
* **DeepLabV3 head** -- ASPP -> 3×3 convolution -> 1×1 classifier -> bilinear upsampling
  to the input (torchvision's ``DeepLabHead``; same parameter count as
  ``deeplabv3_resnet50`` with a ResNet-50 backbone).
* **DeepLabV3+ decoder** (:class:`DeepLabV3PlusDecoder`) -- the ASPP output is upsampled
  ×4 and concatenated with the stride-4 backbone features, first projected by a 1×1
  convolution to 48 channels (so they do not drown the 256 ASPP channels); two 3×3
  convolutions refine boundaries before the classifier.

The paper's V3+ uses depthwise-separable convolutions in ASPP and decoder; this version
keeps plain convolutions (as torchvision and many reimplementations do) for readability.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int
from .backbones import Encoder, conv_bn_relu, get_backbone

__all__ = ["ASPP", "ASPPPooling", "DeepLabV3", "DeepLabV3Plus", "DeepLabV3PlusDecoder", "deeplabv3", "deeplabv3plus",
           "default_atrous_rates"]

MIN_SIZE = 32


def default_atrous_rates(output_stride: int) -> tuple[int, int, int]:
    """The paper's ASPP rates: (6, 12, 18) at output stride 16, (12, 24, 36) at 8 (and (3, 6, 9) at 32).

    Raises:
        ValueError: ``output_stride`` is not 8, 16 or 32.
    """
    table = {8: (12, 24, 36), 16: (6, 12, 18), 32: (3, 6, 9)}
    if output_stride not in table:
        raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
    return table[output_stride]


class ASPPPooling(nn.Sequential):
    """ASPP's image-level branch: global average pool -> 1×1 conv -> BN -> ReLU -> upsample to the input's size.

    The upsampling target is the size of the branch's *input* (the feature map), taken
    before pooling; upsampling the pooled 1×1 result to its own size would change nothing.
    Note: in training mode BatchNorm on a 1×1 map needs a batch of at least 2.

    Shapes:
        (N, in_channels, h, w) float -> (N, out_channels, h, w) float, constant over (h, w).
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]                       # the feature map's (h, w), read BEFORE pooling
        pooled = super().forward(x)               # (N, out, 1, 1)
        return F.interpolate(pooled, size=size, mode="bilinear", align_corners=False)  # (N, out, h, w)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLabV3, Sec. 3.3).

    Branches: 1×1 conv; one 3×3 conv per atrous rate (dilation = padding = rate);
    image pooling (:class:`ASPPPooling`). Each is ``conv -> BN -> ReLU`` with
    ``out_channels`` outputs; their concatenation is projected by ``1×1 conv -> BN ->
    ReLU -> Dropout``. Layer for layer torchvision's ``ASPP``.

    Args:
        in_channels: channels of the backbone's last feature map.
        out_channels: channels of every branch and of the output (256 in the paper).
        atrous_rates: dilation of the 3×3 branches.
        dropout: dropout after the projection (0.5 in torchvision; the paper uses 0.1).

    Shapes:
        (N, in_channels, h, w) float -> (N, out_channels, h, w) float.
    """

    def __init__(self, in_channels: int, out_channels: int = 256, atrous_rates: Sequence[int] = (6, 12, 18),
                 dropout: float = 0.5):
        super().__init__()
        rates = tuple(int(r) for r in atrous_rates)
        if not rates or min(rates) < 1:
            raise ValueError(f"atrous_rates must be positive integers, got {tuple(atrous_rates)}")
        branches: list[nn.Module] = [conv_bn_relu(in_channels, out_channels, kernel_size=1)]
        branches += [conv_bn_relu(in_channels, out_channels, 3, dilation=r) for r in rates]
        branches.append(ASPPPooling(in_channels, out_channels))
        self.convs = nn.ModuleList(branches)
        self.atrous_rates = rates
        self.project = nn.Sequential(
            nn.Conv2d(len(branches) * out_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [branch(x) for branch in self.convs]  # 5 × (N, out, h, w)
        return self.project(torch.cat(branches, dim=1))   # (N, 5*out, h, w) -> (N, out, h, w)


def _check_input(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or min(x.shape[-2:]) < MIN_SIZE:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} expects images (N, 3, H, W) with H, W >= {MIN_SIZE}, got {shape}")


class DeepLabV3(nn.Module):
    """DeepLabV3: dilated encoder -> ASPP -> 3×3 conv -> classifier -> bilinear upsampling.

    Args:
        encoder: a dilated :class:`~segcourse.models.backbones.Encoder` (output stride 8 or 16).
        num_classes: number of classes ``C``.
        atrous_rates: ASPP rates (default: the paper's for the encoder's output stride).
        aspp_channels: channels of ASPP and the head (256 in the paper).
        dropout: ASPP projection dropout.

    Shapes:
        ``forward(x)``: x (N, 3, H, W) float, H, W >= 32 -> logits (N, C, H, W) float.
    """

    def __init__(self, encoder: Encoder, num_classes: int, atrous_rates: Sequence[int] | None = None,
                 aspp_channels: int = 256, dropout: float = 0.5):
        super().__init__()
        check_int(num_classes, "num_classes")
        rates = default_atrous_rates(encoder.output_stride) if atrous_rates is None else atrous_rates
        self.encoder, self.num_classes = encoder, num_classes
        # True: ImageNet weights loaded; False: pretrained=True found none cached (from scratch); None: not asked
        self.pretrained_loaded = getattr(encoder, "pretrained_loaded", None)
        self.aspp = ASPP(encoder.out_channels[-1], aspp_channels, rates, dropout)
        self.head = conv_bn_relu(aspp_channels, aspp_channels, 3)
        self.classifier = nn.Conv2d(aspp_channels, num_classes, 1)

    #: the smallest input side accepted; U-Net's is ``2**depth``
    min_size = MIN_SIZE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, "DeepLabV3")
        features = self.encoder(x)[-1]             # (N, C_enc, H/16, W/16)  (H/8 at output stride 8)
        y = self.head(self.aspp(features))          # (N, 256, H/16, W/16)
        logits = self.classifier(y)                 # (N, C, H/16, W/16)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)  # (N, C, H, W)


class DeepLabV3PlusDecoder(nn.Module):
    """DeepLabV3+'s decoder: fuse the upsampled ASPP output with projected stride-4 features.

    ``low = 1×1 conv(low_level) -> BN -> ReLU`` (48 channels), ``cat(upsample(aspp), low)``,
    then two ``3×3 conv -> BN -> ReLU`` of ``channels`` outputs.

    Shapes:
        ``forward(aspp, low_level)``: (N, A, h, w), (N, L, H/4, W/4) -> (N, channels, H/4, W/4) float.
    """

    def __init__(self, aspp_channels: int, low_level_in: int, low_level_channels: int = 48, channels: int = 256):
        super().__init__()
        self.project = conv_bn_relu(low_level_in, low_level_channels, kernel_size=1)
        self.fuse = nn.Sequential(
            conv_bn_relu(aspp_channels + low_level_channels, channels, 3),
            conv_bn_relu(channels, channels, 3),
        )

    def forward(self, aspp: torch.Tensor, low_level: torch.Tensor) -> torch.Tensor:
        low = self.project(low_level)                                  # (N, 48, H/4, W/4)
        up = F.interpolate(aspp, size=low.shape[-2:], mode="bilinear", align_corners=False)  # (N, 256, H/4, W/4)
        return self.fuse(torch.cat([up, low], dim=1))                  # (N, 256, H/4, W/4)


class DeepLabV3Plus(nn.Module):
    """DeepLabV3+: dilated encoder -> ASPP -> decoder with stride-4 features -> classifier -> upsampling ×4.

    Args:
        encoder: a dilated :class:`~segcourse.models.backbones.Encoder`; its first feature
            map with stride 4 is the decoder's low-level input.
        num_classes: number of classes ``C``.
        atrous_rates: ASPP rates (default: the paper's for the encoder's output stride).
        aspp_channels: channels of ASPP (256).
        low_level_channels: channels of the low-level projection (48 in the paper).
        decoder_channels: channels of the decoder's 3×3 convolutions (256).
        dropout: ASPP projection dropout.

    Shapes:
        ``forward(x)``: x (N, 3, H, W) float, H, W >= 32 -> logits (N, C, H, W) float.
    """

    def __init__(self, encoder: Encoder, num_classes: int, atrous_rates: Sequence[int] | None = None,
                 aspp_channels: int = 256, low_level_channels: int = 48, decoder_channels: int = 256,
                 dropout: float = 0.5):
        super().__init__()
        check_int(num_classes, "num_classes")
        if 4 not in encoder.strides:
            raise ValueError(f"DeepLabV3+ needs a stride-4 feature map from the encoder, which has strides {encoder.strides}")
        rates = default_atrous_rates(encoder.output_stride) if atrous_rates is None else atrous_rates
        self.encoder, self.num_classes = encoder, num_classes
        # True: ImageNet weights loaded; False: pretrained=True found none cached (from scratch); None: not asked
        self.pretrained_loaded = getattr(encoder, "pretrained_loaded", None)
        self.low_level_index = encoder.strides.index(4)
        self.aspp = ASPP(encoder.out_channels[-1], aspp_channels, rates, dropout)
        self.decoder = DeepLabV3PlusDecoder(aspp_channels, encoder.out_channels[self.low_level_index],
                                            low_level_channels, decoder_channels)
        self.classifier = nn.Conv2d(decoder_channels, num_classes, 1)

    #: the smallest input side accepted; U-Net's is ``2**depth``
    min_size = MIN_SIZE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, "DeepLabV3Plus")
        features = self.encoder(x)
        aspp = self.aspp(features[-1])                                    # (N, 256, H/16, W/16)
        y = self.decoder(aspp, features[self.low_level_index])           # (N, 256, H/4, W/4)
        logits = self.classifier(y)                                       # (N, C, H/4, W/4)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)  # (N, C, H, W)


def _encoder(backbone: str | Encoder, output_stride: int, pretrained: bool, backbone_kwargs: dict) -> Encoder:
    if isinstance(backbone, Encoder):
        return get_backbone(backbone, **backbone_kwargs)
    if pretrained:
        if backbone in ("vgg_tiny", "resnet_tiny"):
            raise ValueError(f"pretrained=True needs a torchvision backbone (resnet50, resnet101), got {backbone!r}")
        backbone_kwargs["pretrained"] = True
    if backbone.startswith("vgg"):
        raise ValueError(f"DeepLab needs a ResNet-like backbone with dilation support, got {backbone!r}")
    return get_backbone(backbone, output_stride=output_stride, **backbone_kwargs)


def deeplabv3(num_classes: int, backbone: str | Encoder = "resnet_tiny", *, output_stride: int = 16,
              atrous_rates: Sequence[int] | None = None, aspp_channels: int = 256, dropout: float = 0.5,
              pretrained: bool = False, **backbone_kwargs) -> DeepLabV3:
    """Build a DeepLabV3.

    * torchvision's ``deeplabv3_resnet50`` structure: ``deeplabv3(21, "resnet50", output_stride=8)``.
    * A small one for a CPU: ``deeplabv3(4, "resnet_tiny", width=16, aspp_channels=64, atrous_rates=(2, 4, 6))``.

    Args:
        num_classes: number of classes.
        backbone: ``"resnet_tiny"``, ``"resnet50"``, ``"resnet101"`` or an encoder.
        output_stride: 8 or 16 (ignored when an encoder is passed).
        atrous_rates: ASPP rates (default: the paper's for the output stride).
        aspp_channels, dropout: see :class:`ASPP`.
        pretrained: ImageNet weights from the local cache (never downloads); none cached: a warning, the
            model starts from scratch and ``model.pretrained_loaded`` is ``False`` (copied into fit's history).
        **backbone_kwargs: passed to the backbone builder (``width=...``).
    """
    encoder = _encoder(backbone, output_stride, pretrained, backbone_kwargs)
    return DeepLabV3(encoder, num_classes, atrous_rates, aspp_channels, dropout)


def deeplabv3plus(num_classes: int, backbone: str | Encoder = "resnet_tiny", *, output_stride: int = 16,
                  atrous_rates: Sequence[int] | None = None, aspp_channels: int = 256, low_level_channels: int = 48,
                  decoder_channels: int = 256, dropout: float = 0.5, pretrained: bool = False,
                  **backbone_kwargs) -> DeepLabV3Plus:
    """Build a DeepLabV3+ (arguments as :func:`deeplabv3`, plus the decoder's widths).

    Example: ``deeplabv3plus(4, "resnet_tiny", width=16, aspp_channels=64, decoder_channels=64,
    low_level_channels=48, atrous_rates=(2, 4, 6))``.
    """
    encoder = _encoder(backbone, output_stride, pretrained, backbone_kwargs)
    return DeepLabV3Plus(encoder, num_classes, atrous_rates, aspp_channels, low_level_channels, decoder_channels,
                         dropout)
