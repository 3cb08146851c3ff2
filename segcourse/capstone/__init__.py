"""The capstone (lesson 11): a small project from data to a served model, with a checkable rubric.

Three modules, one job each:

* :mod:`~segcourse.capstone.crossval` -- a held-out test split, k-fold cross-validation folds of the
  rest, and the fold summary (mean ± standard deviation, min-max) per metric;
* :mod:`~segcourse.capstone.report` -- the metrics report folder (``report.md``, ``results.json``,
  figures, the exported model), written atomically;
* :mod:`~segcourse.capstone.checks` -- the rubric: one ``check_*`` per deliverable and
  :func:`~segcourse.capstone.checks.grade`, which runs them all on a report folder.

The brief a learner gets is ``docs/capstone.md``.
"""

from .checks import grade
from .crossval import format_summary, holdout_split, kfold_indices, make_split, summarize
from .report import write_report

__all__ = ["format_summary", "grade", "holdout_split", "kfold_indices", "make_split", "summarize", "write_report"]
