"""The exact pins (``name==version``) of a requirements file, a lock file or ``environment.yml``: one parser.

Used by the set-up check (``doctor``: is the installed torch the pinned one?), the offline wheelhouse
and the tests that keep ``requirements/*.txt``, ``lock.txt`` and ``environment.yml`` in agreement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["normalize", "parse_pins"]

# a requirement line (``torch==2.14.1  # comment``) or a conda pip entry (``  - torch==2.14.1``)
_PIN = re.compile(r"^\s*(?:-\s+)?([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")


def normalize(name: str) -> str:
    """PEP 503 name: ``Scikit_Image`` -> ``scikit-image``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pins(lines: Iterable[str]) -> dict[str, str]:
    """``{normalized name: version}`` of the exact ``name==version`` lines.

    Comments, options (``-r``, ``-c``, ``--index-url``), ranges (``>=``) and conda packages
    (``python=3.11``) are skipped; a conda file's pip entries (``- torch==2.14.1``) count.
    """
    pins = {}
    for line in lines:
        match = _PIN.match(line)
        if match:
            pins[normalize(match.group(1))] = match.group(2)
    return pins
