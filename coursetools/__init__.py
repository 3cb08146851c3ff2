"""coursetools: the course's own machinery, kept apart from the library a learner reads.

Everything here works on a checkout of the course repository (found by
:func:`coursetools.checkout.root`) and is run by the ``make`` targets as
``python -m coursetools COMMAND``: running every lesson and the quality gate (``course``),
executing notebooks (``notebooks``), storing outputs with their stamps (``stored``), generating
the learner notebooks from the solutions (``exercises``), the README course map (``coursemap``),
the course site (``site``), the instructor pack (``instructor``) and the offline wheelhouse
(``wheelhouse``). It imports ``segcourse``; ``segcourse`` never imports it. It is not part of the
``segcourse`` wheel, and its extra dependencies (nbclient, nbval, Sphinx) are in
``requirements/test.txt`` and ``requirements/site.txt``.
"""
