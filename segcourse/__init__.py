"""segcourse: the helper package of the segcourse image-segmentation course.

Submodules (import what a lesson needs):

* ``segcourse.config``    -- run mode (smoke/quick/full), device, seeding
* ``segcourse.data``      -- synthetic datasets, folder datasets, converters, real-dataset recipes
* ``segcourse.models``    -- FCN, U-Net, DeepLabV3/V3+ and friends
* ``segcourse.losses``    -- segmentation losses
* ``segcourse.metrics``   -- confusion matrix, IoU/Dice, boundary and surface metrics, mask AP, PQ
* ``segcourse.train``     -- the training engine
* ``segcourse.plotting``  -- overlays, grids, training curves
* ``segcourse.widgets``   -- ipywidgets explorers
* ``segcourse.exercises`` -- exercise checks and the learner-notebook builder
* ``segcourse.report``    -- key results for ``make course``
"""

from .config import describe, get_device, get_mode, pick, seed_everything, set_mode
from .constants import IGNORE_INDEX

__version__ = "0.1.0"

__all__ = ["IGNORE_INDEX", "describe", "get_device", "get_mode", "pick", "seed_everything", "set_mode", "__version__"]
