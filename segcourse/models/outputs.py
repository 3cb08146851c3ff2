"""What a model returns, as the logits tensor the losses, metrics and the training engine use.

A neutral module (it imports nothing of ``segcourse``): the engine, the TensorBoard logger and
the inference code read model outputs through :func:`model_logits` without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def model_logits(output) -> torch.Tensor:
    """The logits tensor of a model's output: the tensor itself, or ``output["out"]`` for models that
    return a dict (torchvision's ``fcn_resnet50``, ``deeplabv3_resnet50``, ``lraspp``).

    Args:
        output: a tensor ``(N, C, H, W)`` float, or a mapping with an ``"out"`` entry of that shape.

    Returns:
        ``(N, C, H, W)`` float logits (the same tensor object, not a copy).

    Raises:
        TypeError: neither a tensor nor a mapping with ``"out"``.

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 2, 4, 4)
        >>> model_logits({"out": x, "aux": x}) is x
        True
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) and "out" in output:
        return output["out"]
    raise TypeError(f"the model returned {type(output).__name__}"
                    f"{' with keys ' + str(list(output)) if isinstance(output, Mapping) else ''}; expected logits "
                    "(N, C, H, W) or a dict with an 'out' entry")
