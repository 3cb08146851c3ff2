"""Backbones (encoders): networks that turn an image into a pyramid of feature maps.

Every backbone here is an :class:`Encoder`: ``forward(x)`` returns a list of feature
maps from fine to coarse, and the encoder states each map's channel count and output
stride (how many input pixels one feature pixel spans), so a decoder can be built
without running the network first::

    >>> enc = resnet_tiny(width=16, output_stride=16)
    >>> enc.out_channels, enc.strides
    ((16, 16, 32, 64, 128), (2, 4, 8, 16, 16))

Two families, each with a tiny version for a laptop CPU (quick mode) and the real
thing from torchvision (full mode, ``weights=None`` -- nothing is downloaded):

* VGG-like (:func:`vgg_tiny`, :func:`vgg16`) -- the plain stack of 3×3 convolutions
  and 2×2 max-pools that the paper's FCN is built on. Five pools: features after
  pool1..pool5 at strides 2, 4, 8, 16, 32.
* ResNet-like (:func:`resnet_tiny`, :func:`resnet18`, :func:`resnet50`, ...) -- residual
  stages with *dilation support*: ``output_stride=16`` replaces the stride of the last
  stage by dilation 2, ``output_stride=8`` the last two stages by dilations 2 and 4,
  exactly as torchvision's ``replace_stride_with_dilation`` and DeepLab do. Features:
  stem (stride 2), layer1 (4), layer2 (8), layer3 (16 or 8), layer4 (32, 16 or 8).

References:
    Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
    Recognition", 2014, https://arxiv.org/abs/1409.1556 (VGG).
    He et al., "Deep Residual Learning for Image Recognition", 2015,
    https://arxiv.org/abs/1512.03385 (ResNet).
    Chen et al., "Rethinking Atrous Convolution for Semantic Image Segmentation", 2017,
    https://arxiv.org/abs/1706.05587 (output stride by dilation).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = [
    "Encoder", "VGGEncoder", "ResNetEncoder", "TorchvisionResNetEncoder", "BasicBlock",
    "vgg_tiny", "vgg16", "resnet_tiny", "resnet18", "resnet34", "resnet50", "resnet101",
    "dilation_for_output_stride", "get_backbone", "BACKBONES",
    "receptive_field", "conv_layers", "effective_receptive_field", "erf_radius",
]


class Encoder(nn.Module):
    """Base class of the course's backbones.

    Attributes:
        out_channels: channels of each returned feature map, fine to coarse.
        strides: output stride of each returned feature map (input pixels per feature pixel).

    Shapes:
        ``forward(x)``: ``x`` (N, 3, H, W) float -> list of (N, out_channels[i], ~H/strides[i], ~W/strides[i])
        float (each spatial size is the floor produced by the strided layers, so odd inputs work).
    """

    out_channels: tuple[int, ...]
    strides: tuple[int, ...]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def output_stride(self) -> int:
        """Stride of the coarsest (last) feature map."""
        return self.strides[-1]


def _check_image(x: torch.Tensor, in_channels: int = 3) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected an image tensor (N, {in_channels}, H, W), got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise ValueError(f"expected an image batch of shape (N, {in_channels}, H, W), got {tuple(x.shape)}")


def conv_bn_relu(in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """``Conv(k, bias=False) -> BatchNorm -> ReLU`` with 'same' padding (``dilation * (k // 2)``)."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=dilation * (kernel_size // 2),
                  dilation=dilation, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


# --------------------------------------------------------------------------- VGG

class VGGEncoder(Encoder):
    """A VGG-style stack: stages of 3×3 convolutions, each stage closed by a 2×2 max-pool.

    Returns the output of every pool (pool1..pool5): strides 2, 4, 8, 16, 32. Max-pool
    floors odd sizes (``ceil_mode=False``), so a 97-pixel side gives 48, 24, 12, 6, 3.

    Args:
        stages: a list of ``nn.Module`` stages; each ends with ``nn.MaxPool2d(2)``.
        out_channels: channels after each stage.
    """

    def __init__(self, stages: Sequence[nn.Module], out_channels: Sequence[int]):
        super().__init__()
        if len(stages) != len(out_channels):
            raise ValueError(f"got {len(stages)} stages but {len(out_channels)} channel counts")
        self.stages = nn.ModuleList(stages)
        self.out_channels = tuple(int(c) for c in out_channels)
        self.strides = tuple(2 ** (i + 1) for i in range(len(stages)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        _check_image(x)
        features = []
        for stage in self.stages:
            x = stage(x)  # (N, C_i, H/2^(i+1), W/2^(i+1))
            features.append(x)
        return features


def vgg_tiny(width: int = 16, convs_per_stage: Sequence[int] = (1, 1, 2, 2, 2), batch_norm: bool = True) -> VGGEncoder:
    """A small VGG for CPU training: widths ``w, 2w, 4w, 8w, 8w`` (VGG-16 is 64..512).

    Batch normalisation (absent from the original VGG) lets it train from scratch in a
    minute; the layout (3×3 convs, five max-pools) is VGG's.

    Args:
        width: channels of the first stage (16 -> 16, 32, 64, 128, 128).
        convs_per_stage: 3×3 convolutions in each of the five stages (VGG-16: 2, 2, 3, 3, 3).
        batch_norm: add BatchNorm after each convolution.

    Returns:
        A :class:`VGGEncoder` with strides (2, 4, 8, 16, 32).
    """
    if width < 1:
        raise ValueError(f"width must be a positive number of channels, got {width}")
    if len(convs_per_stage) != 5:
        raise ValueError(f"convs_per_stage needs five entries (one per pool), got {tuple(convs_per_stage)}")
    widths = [width, 2 * width, 4 * width, 8 * width, 8 * width]
    stages, in_ch = [], 3
    for out_ch, n in zip(widths, convs_per_stage):
        layers: list[nn.Module] = []
        for _ in range(n):
            if batch_norm:
                layers.append(conv_bn_relu(in_ch, out_ch))
            else:
                layers += [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.ReLU(inplace=True)]
            in_ch = out_ch
        layers.append(nn.MaxPool2d(2))
        stages.append(nn.Sequential(*layers))
    return VGGEncoder(stages, widths)


def _load_pretrained(net: nn.Module, name: str) -> bool:
    """Load ``name``'s cached ImageNet weights into ``net`` if they fit it exactly; else warn and keep its weights.

    Never raises for a bad file (as :func:`~segcourse.models.pretrained.load_cached_weights`): a cached
    file of another architecture (another depth, a renamed copy) is reported with the keys that do
    not fit and training starts from scratch. Keys and shapes are checked *before* loading, so the
    network is never left half-loaded. Returns whether the weights were loaded.
    """
    from .pretrained import cached_weights_path, load_cached_weights

    state = load_cached_weights(name)
    if state is None:
        return False
    own = net.state_dict()
    if not isinstance(state, dict):
        problem = f"it holds a {type(state).__name__}, not a state dict"
    else:
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        shapes = [k for k in own if k in state and (not isinstance(state[k], torch.Tensor)
                                                     or tuple(state[k].shape) != tuple(own[k].shape))]
        problem = "; ".join(f"{what} {keys[:3]}{'...' if len(keys) > 3 else ''}" for what, keys in
                            (("missing", missing), ("unexpected", unexpected), ("wrong shape for", shapes)) if keys)
    if problem:
        warnings.warn(f"the pretrained weights cached at {cached_weights_path(name)} do not fit torchvision's {name} "
                      f"({problem}): is it another model's file? Training from scratch; delete or replace the file "
                      f"to use ImageNet weights", UserWarning, stacklevel=4)
        return False
    net.load_state_dict(state)
    return True


def vgg16(pretrained: bool = False, batch_norm: bool = False) -> VGGEncoder:
    """torchvision's VGG-16 feature extractor (13 convolutions, five pools), split at the pools.

    Args:
        pretrained: load ImageNet weights *if they are already in the local torch hub
            cache* (see :mod:`segcourse.models.pretrained`); otherwise warn and start from scratch.
            The encoder's ``pretrained_loaded`` says which happened (``None``: not asked).
        batch_norm: use ``vgg16_bn`` instead.

    Returns:
        A :class:`VGGEncoder` with channels (64, 128, 256, 512, 512) and strides (2, 4, 8, 16, 32).
    """
    import torchvision

    build = torchvision.models.vgg16_bn if batch_norm else torchvision.models.vgg16
    net = build(weights=None)
    loaded = _load_pretrained(net, "vgg16_bn" if batch_norm else "vgg16") if pretrained else None
    stages, current = [], []
    for layer in net.features:
        current.append(layer)
        if isinstance(layer, nn.MaxPool2d):
            stages.append(nn.Sequential(*current))
            current = []
    encoder = VGGEncoder(stages, (64, 128, 256, 512, 512))
    encoder.pretrained_loaded = loaded  # True / False (none cached: from scratch) / None (not asked)
    return encoder


# --------------------------------------------------------------------------- ResNet

def dilation_for_output_stride(output_stride: int) -> tuple[bool, bool, bool]:
    """torchvision's ``replace_stride_with_dilation`` for layer2..layer4 that gives ``output_stride``.

    32 -> (False, False, False); 16 -> (False, False, True); 8 -> (False, True, True).

    Raises:
        ValueError: ``output_stride`` is not 8, 16 or 32.
    """
    table = {32: (False, False, False), 16: (False, False, True), 8: (False, True, True)}
    if output_stride not in table:
        raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
    return table[output_stride]


class BasicBlock(nn.Module):
    """ResNet's basic block (two 3×3 convolutions and a shortcut), with dilation.

    torchvision's ``BasicBlock`` refuses ``dilation > 1``; this one supports it, so that
    a small ResNet can reach output stride 8 or 16 like DeepLab's ResNet-101.

    Shapes:
        (N, in_ch, H, W) -> (N, out_ch, ceil(H / stride), ceil(W / stride))
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1, first_dilation: int | None = None):
        super().__init__()
        first = dilation if first_dilation is None else first_dilation
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=first, dilation=first, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetEncoder(Encoder):
    """A small ResNet (basic blocks) whose last stages can trade stride for dilation.

    Layout: stem ``3×3 conv stride 2`` (stride 2) -> layer1 (stride 4) -> layer2 (8)
    -> layer3 (16) -> layer4 (32). With ``output_stride=16`` layer4 keeps the resolution
    and uses dilation 2; with 8, layer3 uses dilation 2 and layer4 dilation 4. As in
    torchvision, the first convolution of a stage that loses its stride keeps the
    previous dilation, the others use the new one.

    Args:
        width: channels of the stem and layer1; layers 2..4 use 2w, 4w, 8w.
        blocks: basic blocks per layer.
        output_stride: 8, 16 or 32.
        deep_stem: start with a full-resolution 3×3 convolution before the strided one
            (as in the "ResNet-C" stem of Bag of Tricks, https://arxiv.org/abs/1812.01187): on
            small images the first layer then sees outlines at full resolution.
    """

    def __init__(self, width: int = 16, blocks: Sequence[int] = (1, 1, 1, 1), output_stride: int = 16,
                 deep_stem: bool = True):
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be a positive number of channels, got {width}")
        if len(blocks) != 4:
            raise ValueError(f"blocks needs four entries (layer1..layer4), got {tuple(blocks)}")
        replace = dilation_for_output_stride(output_stride)
        if deep_stem:
            self.stem = nn.Sequential(conv_bn_relu(3, width, 3), conv_bn_relu(width, width, 3, stride=2))
        else:
            self.stem = nn.Sequential(conv_bn_relu(3, width, 3, stride=2))
        widths = (width, 2 * width, 4 * width, 8 * width)
        strides = [2] * 4  # layer1 halves the stem's output too (ResNet's max-pool)
        layers, in_ch, dilation, current_stride, feature_strides = [], width, 1, 2, [2]
        for i, (out_ch, n) in enumerate(zip(widths, blocks)):
            stride = strides[i]
            previous = dilation
            if i >= 1 and replace[i - 1]:
                dilation *= stride
                stride = 1
            else:
                current_stride *= stride
            stage = [BasicBlock(in_ch, out_ch, stride=stride, dilation=dilation, first_dilation=previous)]
            stage += [BasicBlock(out_ch, out_ch, dilation=dilation) for _ in range(n - 1)]
            layers.append(nn.Sequential(*stage))
            in_ch = out_ch
            feature_strides.append(current_stride)
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.out_channels = (width, *widths)
        self.strides = tuple(feature_strides)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        _check_image(x)
        x0 = self.stem(x)     # (N, w, H/2, W/2)
        x1 = self.layer1(x0)  # (N, w, H/4, W/4)
        x2 = self.layer2(x1)  # (N, 2w, H/8, W/8)
        x3 = self.layer3(x2)  # (N, 4w, H/16, W/16)   or H/8 at output stride 8
        x4 = self.layer4(x3)  # (N, 8w, H/32, W/32)   or H/16, H/8
        return [x0, x1, x2, x3, x4]


def resnet_tiny(width: int = 16, blocks: Sequence[int] = (1, 1, 1, 1), output_stride: int = 16,
                deep_stem: bool = True) -> ResNetEncoder:
    """A ResNet-10-like encoder for CPU training (width 16: about 0.5 M parameters).

    Args:
        width: channels of the first stage (16 -> 16, 32, 64, 128).
        blocks: basic blocks in layer1..layer4.
        output_stride: 8, 16 or 32 (dilation replaces the stride of the last stages).
        deep_stem: a full-resolution 3×3 convolution before the strided stem convolution.
    """
    return ResNetEncoder(width=width, blocks=blocks, output_stride=output_stride, deep_stem=deep_stem)


class TorchvisionResNetEncoder(Encoder):
    """torchvision's ResNet without its classifier (``avgpool``/``fc`` dropped), as an :class:`Encoder`.

    Holds exactly the modules torchvision's segmentation models keep (``conv1, bn1, relu,
    maxpool, layer1..layer4``), so parameter counts match theirs.

    Args:
        net: a ``torchvision.models.ResNet``.
        output_stride: the output stride it was built for (8, 16 or 32).
    """

    def __init__(self, net: nn.Module, output_stride: int):
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        expansion = 4 if type(net.layer1[0]).__name__ == "Bottleneck" else 1
        self.out_channels = (64, 64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion)
        replace = dilation_for_output_stride(output_stride)
        strides, s = [2, 4], 4
        for r in replace:
            s = s if r else s * 2
            strides.append(s)
        self.strides = tuple(strides)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        _check_image(x)
        x0 = self.relu(self.bn1(self.conv1(x)))  # (N, 64, H/2, W/2)
        x1 = self.layer1(self.maxpool(x0))       # (N, 256, H/4, W/4)   (64 for ResNet-18/34)
        x2 = self.layer2(x1)                     # (N, 512, H/8, W/8)
        x3 = self.layer3(x2)                     # (N, 1024, H/16, W/16) or H/8
        x4 = self.layer4(x3)                     # (N, 2048, H/32, W/32) or H/16, H/8
        return [x0, x1, x2, x3, x4]


def _torchvision_resnet(name: str, output_stride: int, pretrained: bool) -> TorchvisionResNetEncoder:
    import torchvision

    replace = list(dilation_for_output_stride(output_stride))
    build = getattr(torchvision.models, name)
    if name in ("resnet18", "resnet34") and any(replace):
        raise ValueError(
            f"torchvision's {name} uses BasicBlock, which does not support dilation; "
            f"use output_stride=32, a Bottleneck ResNet (resnet50/resnet101) or resnet_tiny"
        )
    net = build(weights=None, replace_stride_with_dilation=replace)
    loaded = _load_pretrained(net, name) if pretrained else None
    encoder = TorchvisionResNetEncoder(net, output_stride)
    encoder.pretrained_loaded = loaded  # True / False (none cached: from scratch) / None (not asked)
    return encoder


def resnet18(output_stride: int = 32, pretrained: bool = False) -> TorchvisionResNetEncoder:
    """torchvision's ResNet-18 (``weights=None``); only output stride 32 (BasicBlock has no dilation)."""
    return _torchvision_resnet("resnet18", output_stride, pretrained)


def resnet34(output_stride: int = 32, pretrained: bool = False) -> TorchvisionResNetEncoder:
    """torchvision's ResNet-34 (``weights=None``); only output stride 32 (BasicBlock has no dilation)."""
    return _torchvision_resnet("resnet34", output_stride, pretrained)


def resnet50(output_stride: int = 8, pretrained: bool = False) -> TorchvisionResNetEncoder:
    """torchvision's ResNet-50 (``weights=None``) with ``replace_stride_with_dilation`` for 8, 16 or 32.

    Args:
        output_stride: 8 (torchvision's segmentation models), 16 (DeepLabV3+ default) or 32.
        pretrained: load ImageNet weights if cached locally; never downloads.
    """
    return _torchvision_resnet("resnet50", output_stride, pretrained)


def resnet101(output_stride: int = 8, pretrained: bool = False) -> TorchvisionResNetEncoder:
    """torchvision's ResNet-101 (``weights=None``), the DeepLab papers' backbone; output stride 8, 16 or 32."""
    return _torchvision_resnet("resnet101", output_stride, pretrained)


BACKBONES: dict[str, Callable[..., Encoder]] = {
    "vgg_tiny": vgg_tiny, "vgg16": vgg16, "resnet_tiny": resnet_tiny,
    "resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50, "resnet101": resnet101,
}


def get_backbone(name: str | Encoder, **kwargs) -> Encoder:
    """Build a backbone by name (``"resnet_tiny"``, ``"resnet50"``, ``"vgg16"``, ...) or pass an :class:`Encoder` through.

    Raises:
        ValueError: unknown name.
        TypeError: ``name`` is neither a string nor an :class:`Encoder`.
    """
    if isinstance(name, Encoder):
        if kwargs:
            raise ValueError(f"backbone options {sorted(kwargs)} cannot be applied to an already built encoder")
        return name
    if not isinstance(name, str):
        raise TypeError(f"backbone must be a name ({', '.join(BACKBONES)}) or an Encoder, got {type(name).__name__}")
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")
    return BACKBONES[name](**kwargs)


# --------------------------------------------------------------------------- receptive fields

def receptive_field(layers: Sequence[tuple[int, int, int]]) -> tuple[int, int]:
    """Theoretical receptive field of a stack of convolutions/pools, by the usual recurrence.

    For layers ``(kernel k, stride s, dilation d)`` applied in order, with ``j`` the distance
    in input pixels between neighbouring outputs (the "jump", starting at 1) and ``r`` the
    receptive field (starting at 1)::

        r <- r + (k - 1) * d * j        # a dilated kernel spans (k - 1) * d + 1 inputs
        j <- j * s

    Example: three 3×3 convolutions: r = 1 + 2 + 2 + 2 = 7; with dilations 1, 2, 4:
    r = 1 + 2 + 4 + 8 = 15 (the "exponential growth" of Yu & Koltun, https://arxiv.org/abs/1511.07122).

    Args:
        layers: ``(kernel_size, stride, dilation)`` per layer, input side first.

    Returns:
        ``(receptive_field, jump)`` in input pixels.

    Raises:
        ValueError: a layer with a non-positive kernel, stride or dilation.
    """
    r, j = 1, 1
    for layer in layers:
        if len(layer) != 3 or min(layer) < 1:
            raise ValueError(f"each layer must be (kernel_size, stride, dilation) of positive ints, got {layer!r}")
        k, s, d = (int(v) for v in layer)
        r += (k - 1) * d * j
        j *= s
    return r, j


def conv_layers(module: nn.Module) -> list[tuple[int, int, int]]:
    """``(kernel, stride, dilation)`` of the convolutions and pools of a *sequential* module, in registration order.

    Only meaningful for plain stacks (VGG-like); in a ResNet the shortcut's 1×1 convolutions
    are listed too, although they are parallel to the main path.
    """
    out = []
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            as_pair = lambda v: v if isinstance(v, int) else v[0]
            k, s = as_pair(m.kernel_size), as_pair(m.stride)
            d = as_pair(getattr(m, "dilation", 1))
            out.append((k, s, d))
    return out


def effective_receptive_field(model: nn.Module, size: int | tuple[int, int] = 96, *, output: str | int = "logits",
                              samples: int = 4, seed: int = 0) -> torch.Tensor:
    """Effective receptive field: how much each input pixel influences the centre output pixel.

    Luo et al., "Understanding the Effective Receptive Field in Deep Convolutional Neural
    Networks", NeurIPS 2016, https://arxiv.org/abs/1701.04128: back-propagate a gradient of
    1 from the centre pixel of the output (summed over channels) and look at
    ``|d output / d input|`` summed over the input channels, averaged over random inputs.
    The model is put in eval mode (BatchNorm uses running statistics, no dropout) and
    restored afterwards.

    Args:
        model: a segmentation model (or an encoder, with ``output`` an index into its feature list).
        size: input side (or ``(H, W)``).
        output: ``"logits"`` for a model returning a tensor; an int ``i`` to use feature map ``i``
            of an encoder that returns a list.
        samples: random inputs to average over.
        seed: seed of the random inputs.

    Returns:
        (H, W) float32 map, normalised to sum 1.
    """
    h, w = (size, size) if isinstance(size, int) else size
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    param = next(model.parameters())
    total = torch.zeros(h, w)
    try:
        for _ in range(samples):
            x = torch.randn(1, 3, h, w, generator=gen).to(param.device, param.dtype).requires_grad_(True)
            y = model(x)
            if output != "logits":
                y = y[int(output)]
            cy, cx = y.shape[-2] // 2, y.shape[-1] // 2
            y[0, :, cy, cx].sum().backward()
            total += x.grad[0].abs().sum(0).detach().float().cpu()
            model.zero_grad(set_to_none=True)
    finally:
        model.train(was_training)
    return total / total.sum().clamp_min(1e-12)


def erf_radius(erf: torch.Tensor, mass: float = 0.9) -> float:
    """Radius (pixels, Chebyshev distance from the centre) of the smallest centred square holding ``mass`` of an ERF map.

    Args:
        erf: (H, W) non-negative map (e.g. from :func:`effective_receptive_field`).
        mass: fraction of the total to enclose, in (0, 1].
    """
    if not 0 < mass <= 1:
        raise ValueError(f"mass must be in (0, 1], got {mass}")
    h, w = erf.shape
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    dist = torch.maximum((yy - h // 2).abs(), (xx - w // 2).abs()).flatten()
    order = torch.argsort(dist, stable=True)
    cum = torch.cumsum(erf.flatten()[order], 0) / erf.sum().clamp_min(1e-12)
    idx = int(torch.searchsorted(cum, torch.tensor(mass, dtype=cum.dtype)).clamp(max=len(cum) - 1))
    return float(dist[order][idx])


def lattice_period(erf: torch.Tensor) -> float:
    """The strongest repeating period, in pixels, of an effective receptive field's column profile.

    A strided or dilated network reads its input through a lattice of spots (gridding, lesson 05); the
    lattice shows as a peak in the Fourier spectrum of ``sqrt(erf)`` summed over rows. Frequencies below
    ``W // 24`` cycles per image (periods longer than ``W / (W // 24)``, about 24 px) are left out: the smooth,
    roughly Gaussian envelope of every ERF would win there.

    Args:
        erf: (H, W) non-negative map (e.g. from :func:`effective_receptive_field`), ``W >= 4``.

    Returns:
        The period ``W / f`` of the strongest remaining frequency ``f`` (in pixels).

    Raises:
        ValueError: ``erf`` is not 2-D or is narrower than 4 pixels.
    """
    if erf.ndim != 2 or erf.shape[1] < 4:
        raise ValueError(f"erf must be a 2-D (H, W) map with W >= 4, got shape {tuple(erf.shape)}")
    profile = erf.clamp_min(0).sqrt().sum(0)
    spectrum = torch.fft.rfft(profile - profile.mean()).abs()
    low = max(1, len(profile) // 24)
    return len(profile) / (int(spectrum[low:].argmax()) + low)
