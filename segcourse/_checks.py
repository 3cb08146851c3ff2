"""Argument checks shared by the whole package: one rule each, one exception type per kind of mistake.

* a value of the wrong *type* (a float where an int is needed, a float mask where a binary one is)
  raises :class:`TypeError`;
* a value of the right type that is *out of range* (``num_classes=0``, a mask holding a 2) raises
  :class:`ValueError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_binary_mask", "check_int"]


def check_int(value: Any, name: str, minimum: int | None = 1) -> int:
    """``value`` as a Python int, checked to be an integer ``>= minimum``.

    Args:
        value: a Python or NumPy integer (``bool`` is refused: ``True`` is not a count).
        name: the argument's name, for the message.
        minimum: the smallest allowed value (default 1: a positive int; ``None``: no bound).

    Returns:
        ``int(value)``.

    Raises:
        TypeError: ``value`` is not an integer (a float, a string, a bool).
        ValueError: ``value < minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        bound = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return int(value)


def as_binary_mask(mask: Any, name: str = "mask", ndim: int | None = 2) -> np.ndarray:
    """A binary mask as a NumPy bool array (a new array only where a conversion is needed).

    The one dtype policy of the package: a mask is ``bool``, or numbers that are all 0 or 1
    (``uint8`` 0/1 from a PNG, ``float`` 0./1. from ``mask.float()``); anything else -- probabilities,
    a mask scaled to 0/255, class ids -- is refused with a hint.

    Args:
        mask: a NumPy array, a torch tensor (moved to the CPU) or a nested list.
        name: the argument's name, for the message.
        ndim: the number of dimensions required (default 2, ``(H, W)``; ``None``: any).

    Returns:
        A bool array of the same shape.

    Raises:
        TypeError: a dtype that is not bool, integer or float (strings, objects, complex numbers).
        ValueError: the wrong number of dimensions, or values other than 0 and 1.
    """
    if hasattr(mask, "detach"):  # a torch tensor
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.dtype == bool:
        values_ok = True
    elif np.issubdtype(mask.dtype, np.integer) or np.issubdtype(mask.dtype, np.floating):
        values_ok = not mask.size or bool(((mask == 0) | (mask == 1)).all())
    else:
        raise TypeError(f"{name} must be a binary mask (bool or numbers 0/1), got dtype {mask.dtype}")
    if ndim is not None and mask.ndim != ndim:
        shape = " (H, W)" if ndim == 2 else ""
        raise ValueError(f"{name} must be {ndim}-D{shape}, got shape {mask.shape}")
    if not values_ok:
        values = np.unique(mask)
        hint = ("threshold it first, e.g. `probs > 0.5`" if np.issubdtype(mask.dtype, np.floating)
                else "select one class first, e.g. `labels == class_id`, or write `mask > 0`")
        raise ValueError(f"{name} must be a binary mask (bool or values 0/1), got values {values[:8].tolist()}; {hint}")
    return mask if mask.dtype == bool else mask.astype(bool)
