"""Run mode, device selection and seeding.

The course runs in one of three modes (see ``docs/design.md``):

* ``smoke`` -- CI and ``make test``: tiny data, a handful of iterations, seconds per notebook;
* ``quick`` -- a learner's laptop CPU: about two minutes per lesson, real quality;
* ``full``  -- a GPU: longer training on larger data and images.

The mode is chosen automatically (``full`` when CUDA is available, ``quick`` otherwise)
and overridden with the environment variable ``SEGCOURSE_MODE``; notebooks never
need editing. Lessons read mode-dependent sizes with :func:`pick`::

    epochs = pick(smoke=1, quick=8, full=40)
"""

from __future__ import annotations

import os
import random
from typing import Literal, TypeVar

import numpy as np

from .constants import MODE_ENV, SEED_OFFSET_ENV

Mode = Literal["smoke", "quick", "full"]
MODES: tuple[str, ...] = ("smoke", "quick", "full")
T = TypeVar("T")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    return torch.cuda.is_available()


def get_mode() -> Mode:
    """Return the current run mode.

    Returns:
        ``"smoke"``, ``"quick"`` or ``"full"``: the value of ``$SEGCOURSE_MODE`` when set,
        otherwise ``"full"`` on a machine with CUDA and ``"quick"`` elsewhere.

    Raises:
        ValueError: ``$SEGCOURSE_MODE`` holds something other than the three modes.
    """
    value = os.environ.get(MODE_ENV, "").strip().lower()
    if not value or value == "auto":
        return "full" if _cuda_available() else "quick"
    if value not in MODES:
        raise ValueError(
            f"{MODE_ENV}={value!r} is not a mode; expected one of {', '.join(MODES)} "
            f"(or unset it / set it to 'auto' to choose automatically)"
        )
    return value  # type: ignore[return-value]


def set_mode(mode: str) -> None:
    """Set the mode for this process (and the processes it starts).

    Args:
        mode: ``"smoke"``, ``"quick"``, ``"full"`` or ``"auto"``.
    """
    mode = mode.strip().lower()
    if mode not in (*MODES, "auto"):
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)} or 'auto'")
    os.environ[MODE_ENV] = mode


def pick(*, smoke: T, quick: T, full: T) -> T:
    """Return the value for the current mode: ``pick(smoke=1, quick=8, full=40)``."""
    return (smoke, quick, full)[mode_index()]


def mode_index(mode: str | None = None) -> int:
    """The position of ``mode`` (default: the current one) in :data:`MODES`: the index into a
    ``(smoke, quick, full)`` table such as ``DEFAULT_SIZE[name]``."""
    mode = get_mode() if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    return MODES.index(mode)


def get_device(prefer: str = "auto"):
    """Choose the device to compute on: CUDA, then Apple's MPS, then the CPU.

    Args:
        prefer: ``"auto"`` or an explicit device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).

    Returns:
        A ``torch.device``.

    Raises:
        ValueError: an explicit device was asked for that this machine does not have.
    """
    import torch

    if prefer != "auto":
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {prefer!r} was requested but CUDA is not available on this machine; use 'auto' or 'cpu'")
        if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(f"device {prefer!r} was requested but MPS is not available on this machine; use 'auto' or 'cpu'")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0, *, deterministic: bool = True, offset: bool = True) -> int:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) so that a run repeats exactly.

    Args:
        seed: the seed.
        deterministic: also ask PyTorch for deterministic algorithms where they exist
            (cuDNN autotuning off; ``warn_only`` so that ops without a deterministic
            version still run on the GPU).

    Returns:
        The seed, so a cell can end on it. ``$SEGCOURSE_SEED_OFFSET`` (set only by the spread
        measurement of ``python -m coursetools course --spread``) is added to what is seeded,
        not to the returned value, so that the lesson's printed seeds stay 0, 1, 2.
    """
    import torch

    returned = seed
    shift = os.environ.get(SEED_OFFSET_ENV, "").strip() if offset else ""
    if shift:
        try:
            seed = seed + int(shift)
        except ValueError:
            raise ValueError(f"{SEED_OFFSET_ENV}={shift!r} is not an integer") from None

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return returned


def describe() -> str:
    """One line naming the mode, the device and the torch build, for the top of a lesson."""
    import torch

    device = get_device()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return f"mode={get_mode()}  device={name}  torch={torch.__version__}  threads={torch.get_num_threads()}"
