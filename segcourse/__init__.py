"""segcourse: the helper package of the segcourse image-segmentation course.

Submodules (import what a lesson needs):

* ``segcourse.config``    -- run mode (smoke/quick/full), device, seeding
* ``segcourse.data``      -- synthetic datasets, folder datasets, converters, real-dataset recipes
* ``segcourse.classical`` -- thresholds, morphology, region growing, watershed (lesson 01)
* ``segcourse.models``    -- FCN, U-Net, DeepLabV3/V3+, Mask R-CNN, Mask2Former
* ``segcourse.losses``    -- segmentation losses
* ``segcourse.metrics``   -- confusion matrix, IoU/Dice, boundary and surface metrics, mask AP, PQ
* ``segcourse.detection`` -- boxes, anchors, NMS, RoIAlign: the pieces of Mask R-CNN
* ``segcourse.train``     -- the training engine
* ``segcourse.inference`` -- sliding windows, test-time augmentation, post-processing
* ``segcourse.deploy``    -- ONNX export and the prediction service
* ``segcourse.plotting``  -- overlays, grids, training curves
* ``segcourse.widgets``   -- ipywidgets explorers
* ``segcourse.exercises`` -- the exercise checks a lesson calls
* ``segcourse.capstone``  -- the capstone project's checks, scoring and report
* ``segcourse.teaching``  -- what lessons call that is not segmentation: key results, seed comparisons,
  the set-up check, demonstration scenarios
"""

from __future__ import annotations

import importlib

from .constants import IGNORE_INDEX

__version__ = "0.1.0"

__all__ = ["IGNORE_INDEX", "describe", "get_device", "get_mode", "pick", "seed_everything", "set_mode", "__version__"]

#: re-exported from ``segcourse.config``, imported on first use: ``import segcourse`` itself needs only the
#: standard library, so the stdlib-only modules (``segcourse.pins``, ``segcourse.files``) serve the offline
#: installer on a bare Python
_FROM_CONFIG = ("describe", "get_device", "get_mode", "pick", "seed_everything", "set_mode")


def __getattr__(name: str):
    if name in _FROM_CONFIG:
        return getattr(importlib.import_module(".config", __name__), name)
    try:  # ``segcourse.metrics`` after a bare ``import segcourse``, as with an eager package
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_FROM_CONFIG))
