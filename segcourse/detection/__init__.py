"""The pieces of Mask R-CNN written by hand once, each equal to its torchvision counterpart.

* :mod:`~segcourse.detection.boxes` -- box conventions (``xyxy``, ``xywh``, ``cxcywh``, ``yxyx``),
  areas and the IoU matrix (``torchvision.ops.box_convert`` / ``box_area`` / ``box_iou``);
* :mod:`~segcourse.detection.anchors` -- anchors at several scales and aspect ratios
  (``torchvision.models.detection.anchor_utils.AnchorGenerator``);
* :mod:`~segcourse.detection.nms` -- greedy non-maximum suppression (``torchvision.ops.nms``,
  ``batched_nms``);
* :mod:`~segcourse.detection.coder` -- box encoding and decoding (``torchvision.models.detection._utils.BoxCoder``);
* :mod:`~segcourse.detection.roi` -- RoIAlign's bilinear sampling for one box (``torchvision.ops.roi_align``)
  and RoIPool's quantisation (``torchvision.ops.roi_pool``);
* :mod:`~segcourse.detection.masks` -- the mask head's ``M x M`` training targets and the pasting of
  predicted masks back into the image (``roi_heads.project_masks_on_boxes``, ``paste_masks_in_image``).

The tests in ``tests/detection/`` compare every function with torchvision. Boxes are torchvision's
``xyxy`` (``[x1, y1, x2, y2]`` in pixels, ``0 <= x1 < x2 <= W``) unless a name says otherwise.

References:
    * Ren et al., "Faster R-CNN", NeurIPS 2015, https://arxiv.org/abs/1506.01497
    * He et al., "Mask R-CNN", ICCV 2017, https://arxiv.org/abs/1703.06870
"""

from .anchors import cell_anchors, grid_anchors
from .boxes import box_area, box_convert, box_iou, clip_boxes
from .coder import decode_boxes, encode_boxes
from .masks import mask_target, paste_mask
from .nms import batched_nms, nms
from .roi import bilinear, roi_align_one, roi_pool_one, roi_pool_quantisation

__all__ = [
           "batched_nms",
           "bilinear",
           "box_area",
           "box_convert",
           "box_iou",
           "cell_anchors",
           "clip_boxes",
           "decode_boxes",
           "encode_boxes",
           "grid_anchors",
           "mask_target",
           "nms",
           "paste_mask",
           "roi_align_one",
           "roi_pool_one",
           "roi_pool_quantisation",
]
