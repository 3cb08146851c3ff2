"""Inference on whole images: sliding windows, test-time augmentation, post-processing.

* :func:`sliding_window` -- windows that cover every pixel of an image of any size, blended with
  constant or Gaussian weights (equal to MONAI's ``sliding_window_inference``);
* :func:`tta_predict` -- flips and scales, each undone, averaging probabilities;
* :func:`postprocess` -- lesson 01's morphology on a network's masks: small components removed, holes
  filled, opening and closing.
"""

from .postprocess import postprocess
from .sliding import importance_map, sliding_window, window_starts
from .tta import tta_predict

__all__ = ["importance_map", "postprocess", "sliding_window", "tta_predict", "window_starts"]
