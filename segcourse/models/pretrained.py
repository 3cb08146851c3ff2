"""ImageNet weights for the backbones -- from the local cache only, never from the network.

The course runs offline, so ``pretrained=True`` must never start a download (which
would hang or crash on a machine without internet). torchvision keeps the files it
downloaded in ``<torch hub dir>/checkpoints/`` (``torch.hub.get_dir()``, by default
``~/.cache/torch/hub``; ``$TORCH_HOME`` moves it). This module looks there for the
file torchvision *would* download and loads it if present; otherwise it warns::

    UserWarning: no pretrained weights cached at /root/.cache/torch/hub/checkpoints/resnet50-0676ba61.pth;
    training from scratch (to use them, download them once on a machine with internet ...)

and the caller continues with randomly initialised weights. torchvision's ``weights=``
argument is never used, because it downloads when the file is missing.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from urllib.parse import urlparse

import torch

__all__ = ["WEIGHTS", "weights_url", "cached_weights_path", "load_cached_weights"]

#: backbone name -> (torchvision weights enum class, member) whose file we look for.
WEIGHTS: dict[str, tuple[str, str]] = {
    "resnet18": ("ResNet18_Weights", "IMAGENET1K_V1"),
    "resnet34": ("ResNet34_Weights", "IMAGENET1K_V1"),
    "resnet50": ("ResNet50_Weights", "IMAGENET1K_V1"),
    "resnet101": ("ResNet101_Weights", "IMAGENET1K_V1"),
    "vgg16": ("VGG16_Weights", "IMAGENET1K_V1"),
    "vgg16_bn": ("VGG16_BN_Weights", "IMAGENET1K_V1"),
}


def weights_url(name: str) -> str:
    """The URL torchvision downloads ``name``'s ImageNet weights from (read from its weights enum, no network).

    Raises:
        ValueError: no ImageNet weights are known for ``name``.
    """
    if name not in WEIGHTS:
        raise ValueError(f"no pretrained weights known for backbone {name!r}; known: {', '.join(WEIGHTS)}")
    import torchvision

    enum_name, member = WEIGHTS[name]
    return getattr(getattr(torchvision.models, enum_name), member).url


def cached_weights_path(name: str, hub_dir: str | os.PathLike | None = None) -> Path:
    """Where torchvision's cache would hold ``name``'s weights: ``<hub_dir>/checkpoints/<file name of the URL>``.

    Args:
        name: a backbone name from :data:`WEIGHTS`, e.g. ``"resnet50"``.
        hub_dir: the torch hub directory (default ``torch.hub.get_dir()``).
    """
    hub = Path(hub_dir) if hub_dir is not None else Path(torch.hub.get_dir())
    return hub / "checkpoints" / os.path.basename(urlparse(weights_url(name)).path)


def load_cached_weights(name: str, hub_dir: str | os.PathLike | None = None) -> dict | None:
    """Load ``name``'s ImageNet state dict from the local cache, or warn and return ``None``.

    Never downloads and never raises for a missing or unreadable file: the caller trains
    from scratch instead.

    Args:
        name: a backbone name from :data:`WEIGHTS`.
        hub_dir: the torch hub directory (default ``torch.hub.get_dir()``).

    Returns:
        The state dict (to pass to ``load_state_dict``), or ``None`` when there is none cached.

    Raises:
        ValueError: ``name`` has no known ImageNet weights (a programming error, not a missing file).
    """
    path = cached_weights_path(name, hub_dir)
    if not path.is_file():
        warnings.warn(
            f"no pretrained weights cached at {path}; training from scratch "
            f"(to use them, download them once on a machine with internet: "
            f"torchvision.models.{WEIGHTS[name][0]}.{WEIGHTS[name][1]}.get_state_dict(), then copy the file there)",
            UserWarning, stacklevel=3,
        )
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a truncated download, a file from another model ...
        warnings.warn(f"could not read pretrained weights at {path} ({type(exc).__name__}: {exc}); training from scratch",
                      UserWarning, stacklevel=3)
        return None
