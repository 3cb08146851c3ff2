"""The capstone (lesson 11): a small project from data to a served model, with a rubric that recomputes what it grades.

Five modules, one job each:

* :mod:`~segcourse.capstone.task` -- the brief as code: the pool, the fixed held-out test images (regenerated
  deterministically), the Otsu baseline and the targets relative to it;
* :mod:`~segcourse.capstone.crossval` -- cross-validation folds (shuffled, contiguous blocks for the slices of a
  volume, whole groups), the fold summary (mean ± standard deviation, min-max) and the paired comparison by fold;
* :mod:`~segcourse.capstone.scoring` -- a model's scores on a set of images, and where its errors are;
* :mod:`~segcourse.capstone.report` -- the metrics report folder (``report.md``, ``results.json``,
  figures, the exported model), written atomically;
* :mod:`~segcourse.capstone.checks` -- the rubric: one ``check_*`` per deliverable, 100 points, and
  :func:`~segcourse.capstone.checks.grade`, which runs them all on a report folder.

The brief a learner gets is ``docs/capstone.md``; the learner's notebook ``notebooks/11_capstone.ipynb`` is a scaffold.
"""

from . import task
from .checks import grade
from .crossval import compare_folds, format_summary, holdout_split, kfold_indices, make_folds, make_split, summarize
from .report import write_report

__all__ = ["compare_folds", "format_summary", "grade", "holdout_split", "kfold_indices", "make_folds", "make_split",
           "summarize", "task", "write_report"]
