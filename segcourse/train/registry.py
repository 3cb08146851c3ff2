"""Model builders by name, for the ``train`` command and for rebuilding a model from a checkpoint.

The builders live in :mod:`segcourse.models`; they are looked up only when asked for, so
this module imports nothing heavy and a name whose builder does not exist yet gives a
clear error instead of breaking every import. Lessons and tests can add their own::

    register_model("tiny", lambda num_classes=2: MyTinyNet(num_classes))
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from torch import nn

#: name -> "module:attribute" of the builder (a function ``builder(num_classes=..., **kwargs) -> nn.Module``)
MODELS: dict[str, str | Callable[..., nn.Module]] = {
    "unet": "segcourse.models:unet",
    "fcn": "segcourse.models:fcn",
    "deeplabv3": "segcourse.models:deeplabv3",
    "deeplabv3plus": "segcourse.models:deeplabv3plus",
}


def register_model(name: str, builder: Callable[..., nn.Module] | str) -> None:
    """Make ``build_model(name, ...)`` call ``builder`` (a callable or a ``"module:attribute"`` string)."""
    if not callable(builder) and not (isinstance(builder, str) and ":" in builder):
        raise TypeError(f"builder must be callable or a 'module:attribute' string, got {builder!r}")
    MODELS[name] = builder


def get_builder(name: str) -> Callable[..., nn.Module]:
    """The builder registered as ``name``.

    Raises:
        ValueError: unknown name, or its module/function does not exist (yet).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(sorted(MODELS))}")
    builder = MODELS[name]
    if callable(builder):
        return builder
    module_name, attr = builder.split(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"model {name!r} is registered as {builder!r}, which cannot be imported: {err}") from None


def build_model(name: str, **kwargs) -> nn.Module:
    """Build the model registered as ``name`` with ``kwargs`` (e.g. ``num_classes=2``)."""
    return get_builder(name)(**kwargs)


def available_models() -> list[str]:
    """Names whose builders can be imported right now."""
    names = []
    for name in MODELS:
        try:
            get_builder(name)
        except ValueError:
            continue
        names.append(name)
    return names
