"""ipywidgets explorers used in the lessons.

Each explorer is a thin user interface over pure, unit-tested functions (in
``segcourse.metrics``, ``segcourse.losses``, ``segcourse.classical``); import the one a
lesson needs from its module, e.g. ``from segcourse.widgets.metrics import threshold_explorer``.
"""
