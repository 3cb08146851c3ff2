"""The progress bar every loop of :mod:`segcourse.train` draws (training, validation, detection, Mask2Former)."""

from __future__ import annotations


def progress_bar(loader, *, desc: str, progress: bool = True):
    """A tqdm bar (a widget in JupyterLab, text elsewhere) over ``loader`` that iterates it exactly once.

    ``tqdm.auto``'s class calls ``iter()`` on a plain iterable in its constructor and the ``for`` loop
    calls it again, so ``tqdm(loader)`` would make a DataLoader start its worker processes, and draw
    its shuffling seed, twice per pass. Handing tqdm the iterator (and the length) avoids that.
    """
    from tqdm.auto import tqdm

    try:
        total = len(loader)
    except TypeError:  # an iterable without a length
        total = None
    return tqdm(iter(loader), total=total, desc=desc, leave=False, disable=not progress, dynamic_ncols=True)
