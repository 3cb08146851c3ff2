"""torchvision's Mask R-CNN on a small backbone + FPN, built offline (``weights=None``), for a CPU.

:func:`mask_rcnn` assembles ``torchvision.models.detection.MaskRCNN`` from parts sized for small
images with small objects (the course's ``cells``: nuclei about 14-22 px across):

* backbone: the course's :func:`~segcourse.models.backbones.resnet_tiny` (randomly initialised), its
  stride-4, 8 and 16 features fed to ``torchvision.ops.FeaturePyramidNetwork``;
* RPN: one anchor size per FPN level (``anchor_sizes``, matched to the objects: a 16 px nucleus is
  best covered by a 16 px anchor at stride 4), aspect ratios ``(0.5, 1, 2)``, and far fewer proposals
  than torchvision's defaults for 800 px photos (``rpn_pre_nms_top_n``, ``rpn_post_nms_top_n``);
* heads: ``MultiScaleRoIAlign`` 7 x 7 (boxes) and 14 x 14 (masks, predicted at 28 x 28), a small
  two-layer MLP box head and a two-convolution mask head;
* sized for a CPU: 32 sampled RoIs per image for the box and mask losses (torchvision: 512; at its
  positive fraction 0.25 that is up to 8 positive RoIs per image for the mask head, about one per
  nucleus) and adaptive RoIAlign sampling (``sampling_ratio=0``: ``ceil(bin size)`` samples per bin
  and axis: one on the 7 x 7 grid for a RoI up to 7 feature cells, 28 px at stride 4, the size of
  these nuclei; torchvision's Mask R-CNN uses 2). On a CPU, ``roi_align``'s backward pass and the mask
  head cost in proportion to the sampled RoIs and samples, and with 128 RoIs they took most of a step;
* the transform keeps the image size (``min_size = max_size = image_size``): torchvision would
  otherwise upscale a 96 px image to 800 px.

No weights are ever downloaded: nothing here asks torchvision for pretrained weights. What a source
article runs, ``maskrcnn_resnet50_fpn(weights="DEFAULT")``, needs a download (or a cached file); the
course's offline equivalent is ``maskrcnn_resnet50_fpn(weights=None, weights_backbone=None)``, see
:func:`mask_rcnn_resnet50`.

References:
    He et al., "Mask R-CNN", ICCV 2017, https://arxiv.org/abs/1703.06870;
    Lin et al., "Feature Pyramid Networks for Object Detection", CVPR 2017, https://arxiv.org/abs/1612.03144
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from .backbones import resnet_tiny


class TinyFPNBackbone(nn.Module):
    """``resnet_tiny`` features at strides 4, 8, 16 (or the first ``levels`` of them) -> FPN with ``out_channels``.

    ``forward(x)`` returns an ``OrderedDict`` ``{"0": stride 4, "1": stride 8, ...}`` of
    ``(N, out_channels, H / s, W / s)`` maps, the contract torchvision's detection heads expect.
    """

    def __init__(self, width: int = 16, out_channels: int = 64, levels: int = 3, blocks: Sequence[int] = (1, 1, 1, 1)):
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork

        if not 1 <= levels <= 3:
            raise ValueError(f"levels must be 1, 2 or 3 (strides 4, 8, 16), got {levels}")
        self.body = resnet_tiny(width=width, blocks=blocks, output_stride=32, deep_stem=False)
        self.levels = levels
        in_channels = list(self.body.out_channels[1:1 + levels])
        self.fpn = FeaturePyramidNetwork(in_channels, out_channels)
        self.out_channels = out_channels
        self.strides = tuple(self.body.strides[1:1 + levels])

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        b = self.body
        x = b.stem(x)
        feats = []
        for layer in (b.layer1, b.layer2, b.layer3)[:self.levels]:
            x = layer(x)
            feats.append(x)
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats)))


def mask_rcnn(num_classes: int = 2, image_size: int = 96, width: int = 16, fpn_channels: int = 64, levels: int = 2,
              anchor_sizes: Sequence[int] = (16, 32), aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
              rpn_pre_nms_top_n: tuple[int, int] = (600, 300), rpn_post_nms_top_n: tuple[int, int] = (300, 150),
              box_batch_size_per_image: int = 32, sampling_ratio: int = 0, representation: int = 128,
              mask_layers: Sequence[int] = (64, 64), detections_per_img: int = 100, score_thresh: float = 0.05):
    """A small ``torchvision.models.detection.MaskRCNN``, randomly initialised (nothing downloaded).

    Args:
        num_classes: including background (cells: 2).
        image_size: the images' side; the model's transform keeps it (no resize).
        width: ``resnet_tiny`` width (stages w, 2w, 4w, ...).
        fpn_channels: channels of every FPN level.
        levels: FPN levels, strides 4, 8, 16 (``len(anchor_sizes)`` must equal it).
        anchor_sizes: one anchor side (pixels) per level.
        aspect_ratios: anchor ``h / w`` ratios at every level.
        rpn_pre_nms_top_n, rpn_post_nms_top_n: proposals per level before NMS / per image after, ``(train, test)``.
        box_batch_size_per_image: sampled RoIs per image for the box and mask losses (a quarter of them at
            most positive: the mask head's RoIs).
        sampling_ratio: RoIAlign samples per bin and axis for both heads (``0``: adaptive, ``ceil(bin size)``).
        representation: width of the two-layer MLP box head.
        mask_layers: channels of the mask head's 3 x 3 convolutions.
        detections_per_img, score_thresh: inference limits.
    """
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    if len(anchor_sizes) != levels:
        raise ValueError(f"one anchor size per FPN level: got {len(anchor_sizes)} sizes for {levels} levels")
    backbone = TinyFPNBackbone(width=width, out_channels=fpn_channels, levels=levels)
    names = [str(i) for i in range(levels)]
    anchors = AnchorGenerator(sizes=tuple((int(s),) for s in anchor_sizes),
                              aspect_ratios=(tuple(float(r) for r in aspect_ratios),) * levels)
    model = MaskRCNN(
        backbone, num_classes=None, min_size=image_size, max_size=image_size,
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=rpn_pre_nms_top_n[0], rpn_pre_nms_top_n_test=rpn_pre_nms_top_n[1],
        rpn_post_nms_top_n_train=rpn_post_nms_top_n[0], rpn_post_nms_top_n_test=rpn_post_nms_top_n[1],
        rpn_batch_size_per_image=128,
        box_roi_pool=MultiScaleRoIAlign(names, output_size=7, sampling_ratio=sampling_ratio),
        box_head=TwoMLPHead(fpn_channels * 7 * 7, representation),
        box_predictor=FastRCNNPredictor(representation, num_classes),
        box_batch_size_per_image=box_batch_size_per_image,
        box_detections_per_img=detections_per_img, box_score_thresh=score_thresh,
        mask_roi_pool=MultiScaleRoIAlign(names, output_size=14, sampling_ratio=sampling_ratio),
        mask_head=MaskRCNNHeads(fpn_channels, tuple(mask_layers), 1),
        mask_predictor=MaskRCNNPredictor(mask_layers[-1], mask_layers[-1], num_classes),
    )
    model.image_size = image_size
    return model


def replace_predictors(model: nn.Module, num_classes: int) -> nn.Module:
    """Fine-tuning recipe: new box and mask predictors for ``num_classes`` (background included), in place.

    torchvision's recipe (its "TorchVision Object Detection Finetuning Tutorial"): keep the backbone, the
    RPN, the box head and the mask head's convolutions, and replace only the two layers whose size is
    the number of classes -- ``roi_heads.box_predictor`` by a new ``FastRCNNPredictor(in_features,
    num_classes)`` and ``roi_heads.mask_predictor`` by a new ``MaskRCNNPredictor(in_channels, hidden,
    num_classes)``, both randomly initialised. Works for :func:`mask_rcnn` and torchvision's
    ``maskrcnn_resnet50_fpn``.

    Returns:
        the same model, for chaining.
    """
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor

    if num_classes < 2:
        raise ValueError(f"num_classes counts the background too: at least 2, got {num_classes}")
    heads = model.roi_heads
    in_features = heads.box_predictor.cls_score.in_features
    heads.box_predictor = FastRCNNPredictor(in_features, num_classes)
    in_channels = heads.mask_predictor.conv5_mask.in_channels
    hidden = heads.mask_predictor.conv5_mask.out_channels
    heads.mask_predictor = MaskRCNNPredictor(in_channels, hidden, num_classes)
    return model


def mask_rcnn_resnet50(num_classes: int = 91, **kwargs):
    """torchvision's ``maskrcnn_resnet50_fpn`` with ``weights=None, weights_backbone=None`` (offline, random init).

    A GPU-sized model (about 44 M parameters). With pretrained COCO weights in the local torch hub
    cache, ``maskrcnn_resnet50_fpn(weights="DEFAULT")`` would load them; the course never downloads.
    """
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    return maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_classes, **kwargs)


@torch.no_grad()
def predict(model: nn.Module, images, device=None, batch_size: int = 8) -> list[dict]:
    """``model.eval()`` predictions for a list of ``(3, H, W)`` images, moved to the CPU."""
    model.eval()
    device = device or next(model.parameters()).device
    out = []
    for i in range(0, len(images), batch_size):
        batch = [img.to(device) for img in images[i:i + batch_size]]
        out += [{k: v.cpu() for k, v in p.items()} for p in model(batch)]
    return out
