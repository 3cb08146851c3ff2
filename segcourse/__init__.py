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

Repository tooling (run from a checkout, ``python -m segcourse ...``; no lesson imports it, and
it finds the repository from the working directory or the folders it is given, never from where
the package is installed): ``segcourse.course`` (``make course``), ``segcourse.notebooks``
(headless execution), ``segcourse.stored`` (stored outputs and stamps), ``segcourse.coursemap``
and ``segcourse.coursesite`` (the README map and the site), ``segcourse.exercises.build`` and
``segcourse.exercises.cli`` (the learner-notebook builder). (``segcourse.doctor``, the set-up
check, serves both: lesson 00 calls it.)
"""

from .config import describe, get_device, get_mode, pick, seed_everything, set_mode
from .constants import IGNORE_INDEX

__version__ = "0.1.0"

__all__ = ["IGNORE_INDEX", "describe", "get_device", "get_mode", "pick", "seed_everything", "set_mode", "__version__"]
