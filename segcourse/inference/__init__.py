"""Inference on whole images: sliding windows, test-time augmentation, post-processing.

* :func:`sliding_window` -- windows that cover every pixel of an image of any size, blended with
  constant or Gaussian weights (equal to MONAI's ``sliding_window_inference``);
* :func:`tta_predict` -- flips and scales, each undone, averaging probabilities;
* :mod:`~segcourse.inference.postprocess` -- small components removed, holes filled, opening and
  closing of binary masks.
"""

from .postprocess import close_mask, fill_holes, open_mask, postprocess, remove_small_components
from .sliding import importance_map, sliding_window, window_starts
from .tta import tta_predict

__all__ = ["close_mask", "fill_holes", "importance_map", "open_mask", "postprocess", "remove_small_components",
           "sliding_window", "tta_predict", "window_starts"]
