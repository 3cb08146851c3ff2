"""Where the course keeps its datasets.

:func:`data_root` is, in order of preference:

1. ``$SEGCOURSE_DATA`` when it is set (tests point it at a temporary folder; an instructor can
   point it at a shared drive);
2. ``<repository>/datasets`` when ``segcourse`` is imported from a source checkout (the editable install
   the course's ``make lab`` / ``make test`` make; see :func:`repo_root`), so generated data sits beside
   the dataset cards;
3. ``~/.cache/segcourse/datasets`` otherwise (a wheel installed with ``pip install segcourse``, wherever
   the working directory is).

Generated folders are named by everything that determines their content (see
:func:`variant_name`), so a smoke-mode split never hides a quick-mode one.
"""

from __future__ import annotations

import os
from pathlib import Path

from segcourse.constants import DATA_ENV

#: The manifest every dataset folder holds (written last: a folder without it is incomplete).
MANIFEST = "dataset.json"


def repo_root() -> Path | None:
    """The source checkout ``segcourse`` is imported from, or ``None`` for an installed package.

    This is the only place ``segcourse`` looks for a repository, and it looks where the package's own files
    are, never at the working directory: the folder above the package is a checkout when it holds a
    ``pyproject.toml`` and a ``datasets/`` folder (an installed wheel sits in ``site-packages``, which has
    neither). The course's own tools find the checkout from the working directory instead
    (``coursetools.checkout``).
    """
    candidate = Path(__file__).resolve().parents[2]
    if (candidate / "pyproject.toml").is_file() and (candidate / "datasets").is_dir():
        return candidate
    return None


def data_root() -> Path:
    """The folder generated and downloaded datasets live in (see the module docstring).

    Returns:
        An absolute :class:`~pathlib.Path`; it is not created here.
    """
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        return Path(env).expanduser().resolve()
    repo = repo_root()
    if repo is not None:
        return repo / "datasets"
    return Path.home() / ".cache" / "segcourse" / "datasets"


def variant_name(split: str, height: int, width: int, count: int, seed: int, tag: str = "") -> str:
    """Folder name of one generated split: ``train-96x96-n192-seed0`` (``-TAG`` appended when given).

    Everything that changes the content is in the name, so two different requests never share a folder.
    """
    name = f"{split}-{int(height)}x{int(width)}-n{int(count)}-seed{int(seed)}"
    return f"{name}-{tag}" if tag else name


__all__ = ["MANIFEST", "data_root", "repo_root", "variant_name"]
