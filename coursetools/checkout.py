"""Where the course checkout is: the one answer every ``coursetools`` command uses.

The checkout is the folder given with ``python -m coursetools --root DIR ...`` (:func:`use`), or
else the working directory or the nearest folder above it that holds ``solutions/`` with lesson
notebooks (``NN_*.ipynb``). It is never derived from where a package is installed: a non-editable
install has no ``solutions/`` beside it.
"""

from __future__ import annotations

from pathlib import Path

#: The checkout chosen with ``--root`` (:func:`use`); ``None``: search from the working directory.
_chosen: Path | None = None


class CheckoutNotFound(FileNotFoundError):
    """No course checkout where one was looked for (the message says where)."""


def is_checkout(folder: Path) -> bool:
    """Whether ``folder`` holds ``solutions/`` with at least one ``NN_*.ipynb`` lesson notebook."""
    solutions = Path(folder) / "solutions"
    return solutions.is_dir() and any(solutions.glob("[0-9][0-9]_*.ipynb"))


def use(folder: Path | str | None) -> None:
    """Make ``folder`` the checkout for this process (``None``: search from the working directory again).

    Raises:
        CheckoutNotFound: ``folder`` is not a checkout (no ``solutions/NN_*.ipynb`` in it).
    """
    global _chosen
    if folder is None:
        _chosen = None
        return
    folder = Path(folder).expanduser().resolve()
    if not is_checkout(folder):
        raise CheckoutNotFound(f"--root {folder} is not a course checkout: expected {folder / 'solutions'} "
                                "with NN_*.ipynb lesson notebooks")
    _chosen = folder


def root(start: Path | str | None = None) -> Path:
    """The course checkout (absolute): ``start`` (default: the ``--root`` folder if one was given, else the
    working directory) or the nearest folder above it that :func:`is_checkout`.

    Raises:
        CheckoutNotFound: none found; the message names every folder searched.
    """
    if start is None and _chosen is not None:
        return _chosen
    start = (Path.cwd() if start is None else Path(start)).resolve()
    searched = (start, *start.parents)
    for folder in searched:
        if is_checkout(folder):
            return folder
    raise CheckoutNotFound(f"no course checkout at or above {start} (looked for solutions/NN_*.ipynb in "
                            f"{', '.join(str(f) for f in searched)}); run from the repository or pass "
                            "--root DIR (python -m coursetools --root DIR COMMAND ...)")


__all__ = ["CheckoutNotFound", "is_checkout", "root", "use"]
