"""What the lessons call that is not segmentation: recording results, comparing by seed, checking the set-up,
staging demonstrations.

* :mod:`~segcourse.teaching.results` -- ``record``: a lesson's key result, printed and (under
  ``make course``) written for the course report, with its quality target;
* :mod:`~segcourse.teaching.compare` -- ``seeds``, ``verdict``, ``seed_table``: "A beats B" claims that
  rest on several seeds compared paired by seed, and say "noise" when that is all the difference is;
* :mod:`~segcourse.teaching.doctor` -- ``collect``: is this machine ready (``python -m segcourse doctor``);
* :mod:`~segcourse.teaching.demos` -- fake predictions for the explorers and deliberately wrong formulas
  shown beside the right ones (never metrics to use: those are in :mod:`segcourse.metrics`).

Import from the module: ``from segcourse.teaching.results import record``.
"""
