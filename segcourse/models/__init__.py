"""Segmentation models of the course, each composed as ``encoder -> decoder -> head``.

* :func:`fcn` / :class:`FCN` -- FCN-32s/16s/8s (Long et al. 2015, https://arxiv.org/abs/1411.4038); :func:`grow_fcn` for the paper's staged training
* :func:`unet` / :class:`UNet` -- U-Net (Ronneberger et al. 2015, https://arxiv.org/abs/1505.04597)
* :func:`deeplabv3` / :class:`DeepLabV3` -- DeepLabV3 (Chen et al. 2017, https://arxiv.org/abs/1706.05587)
* :func:`deeplabv3plus` / :class:`DeepLabV3Plus` -- DeepLabV3+ (Chen et al. 2018, https://arxiv.org/abs/1802.02611)
* :mod:`segcourse.models.mask2former` -- a small Mask2Former (Cheng et al. 2022, https://arxiv.org/abs/2112.01527)
  for panoptic and semantic segmentation by mask classification (its own output contract: query class and mask logits)
* backbones (:mod:`segcourse.models.backbones`): tiny VGG/ResNet for a CPU, torchvision's
  ResNet/VGG (``weights=None``) for a GPU; ``pretrained=True`` reads ImageNet weights from the
  local torch hub cache only (:mod:`segcourse.models.pretrained`) and never downloads.

Every model takes images ``(N, 3, H, W)`` float with ``H, W >= model.min_size`` (any size
above, odd included: 32 for FCN and DeepLab, ``2**depth`` for U-Net, 16 at its default depth)
and returns logits ``(N, num_classes, H, W)`` float at the input resolution. The builders share
their conventions: ``num_classes`` first (``fcn(4, "8s")``, ``unet(2, depth=3)``,
``deeplabv3(4)``; U-Net's ``in_channels`` is a keyword), and the upsampling of FCN and U-Net is
chosen with the same option, ``up="transpose"`` (learned) or ``up="bilinear"`` (fixed).
"""

from .backbones import (
                        BACKBONES,
                        BasicBlock,
                        Encoder,
                        ResNetEncoder,
                        TorchvisionResNetEncoder,
                        VGGEncoder,
                        conv_layers,
                        dilation_for_output_stride,
                        effective_receptive_field,
                        erf_radius,
                        get_backbone,
                        lattice_period,
                        receptive_field,
                        resnet18,
                        resnet34,
                        resnet50,
                        resnet101,
                        resnet_tiny,
                        vgg16,
                        vgg_tiny,
)
from .deeplab import ASPP, ASPPPooling, DeepLabV3, DeepLabV3Plus, DeepLabV3PlusDecoder, deeplabv3, deeplabv3plus
from .fcn import FCN, BilinearUpsample, FCNHead, TorchvisionFCNHead, bilinear_kernel, fcn, grow_fcn
from .outputs import model_logits
from .parameters import count_flops, count_parameters
from .pretrained import cached_weights_path, load_cached_weights
from .unet import UNet, unet

__all__ = [
    "UNet", "unet",
    "FCN", "fcn", "grow_fcn", "FCNHead", "TorchvisionFCNHead", "BilinearUpsample", "bilinear_kernel",
    "DeepLabV3", "DeepLabV3Plus", "DeepLabV3PlusDecoder", "ASPP", "ASPPPooling", "deeplabv3", "deeplabv3plus",
    "Encoder", "VGGEncoder", "ResNetEncoder", "TorchvisionResNetEncoder", "BasicBlock", "BACKBONES", "get_backbone",
    "vgg_tiny", "vgg16", "resnet_tiny", "resnet18", "resnet34", "resnet50", "resnet101",
    "cached_weights_path", "load_cached_weights",
    "receptive_field", "conv_layers", "dilation_for_output_stride", "effective_receptive_field", "erf_radius", "lattice_period", "count_parameters", "count_flops",
    "model_logits",
]
